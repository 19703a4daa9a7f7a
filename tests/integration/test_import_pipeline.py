"""The import pipeline on the real database: counts, idempotence, modes, references, tenancy and formats."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select, update

from app.errors import ValidationFailed
from app.extensions import db
from app.importers import ENTITY_SPECS, ImportSummary, open_reader, run_pipeline, suggest_mapping
from app.importers.loading import COPY_SLICE, stored_records
from app.models import AuditEvent, Organization, Person, Project, Task, TimeEntry, utcnow
from app.services.audit import Actor
from app.services.imports import run_import_file
from tests.factories import OrganizationFactory, PersonFactory, ProjectFactory, TaskFactory, TimeEntryFactory

ACTOR = Actor(user=None, label_override="test")
PEOPLE_HEADER = ["E-mail", "Full name", "Department", "Hourly rate", "Skills", "Active"]
PEOPLE = [
    ["ada@example.com", "Ada Lovelace", "Research", "120.50", "maths, poetry", "yes"],
    ["alan@example.com", "Alan Turing", "Research", "110", "maths", "no"],
    ["grace@example.com", "Grace Hopper", "Navy", "99,5", "", ""],
]

Table = list[list[str]]


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory(slug="acme")


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[[Table, str], Path]:
    def write(rows: Table, name: str = "data.csv") -> Path:
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
        return path

    return write


@pytest.fixture
def run(org: Organization, write_csv) -> Callable[..., ImportSummary]:
    """Write ``rows`` (header first) as a CSV and import it into ``org`` with the suggested mapping."""

    def run_rows(entity: str, rows: Table, into: Organization | None = None, **kwargs) -> ImportSummary:
        path = write_csv(rows)
        return run_import_file(into or org, ACTOR, path, path.name, entity, **kwargs)

    return run_rows


def people(org: Organization) -> dict[str, Person]:
    return {p.email: p for p in db.session.scalars(select(Person).where(Person.organization_id == org.id))}


def counts(summary: ImportSummary) -> tuple[int, int, int, int]:
    return summary.created, summary.updated, summary.unchanged, summary.failed


def test_import_people_creates_typed_records(run, org):
    summary = run("people", [PEOPLE_HEADER, *PEOPLE])
    assert counts(summary) == (3, 0, 0, 0)
    stored = people(org)
    assert stored["ada@example.com"].skills == ["maths", "poetry"]
    assert stored["ada@example.com"].hourly_rate == Decimal("120.50")
    assert stored["grace@example.com"].hourly_rate == Decimal("99.50")
    assert (stored["alan@example.com"].active, stored["grace@example.com"].active) == (False, True)


def test_import_people_twice_leaves_everything_unchanged(run, org):
    run("people", [PEOPLE_HEADER, *PEOPLE])
    versions = {email: p.version for email, p in people(org).items()}
    summary = run("people", [PEOPLE_HEADER, *PEOPLE])
    db.session.expire_all()
    assert counts(summary) == (0, 0, 3, 0)
    assert {email: p.version for email, p in people(org).items()} == versions


def test_import_people_modified_file_updates_only_changed_rows(run, org):
    run("people", [PEOPLE_HEADER, *PEOPLE])
    changed = [list(row) for row in PEOPLE] + [["linus@example.com", "Linus", "", "", "", ""]]
    changed[1][2] = "Bletchley"
    changed[2][0] = "GRACE@example.com"  # same key, another case: still the same person
    summary = run("people", [PEOPLE_HEADER, *changed])
    db.session.expire_all()
    stored = people(org)
    assert counts(summary) == (1, 1, 2, 0)
    assert (stored["alan@example.com"].department, stored["alan@example.com"].version) == ("Bletchley", 2)
    assert stored["ada@example.com"].version == 1


@pytest.mark.parametrize("chunk_size", [5000, 2], ids=["same-chunk", "across-chunks"])
def test_pipeline_in_file_duplicate_keys_fail_every_copy(org, write_csv, chunk_size):
    path = write_csv([PEOPLE_HEADER, PEOPLE[0], PEOPLE[1], PEOPLE[2], ["ADA@example.com", "Ada again", "", "", "", ""]])
    reader = open_reader(path, path.name)
    spec = ENTITY_SPECS["people"]
    summary = run_pipeline(reader, None, suggest_mapping(reader.headers(None), spec), spec, org,
                           chunk_size=chunk_size)
    assert counts(summary) == (2, 0, 0, 2)
    assert {(e.row, e.column, e.code) for e in summary.errors} == {(2, "E-mail", "duplicate"),
                                                                   (5, "E-mail", "duplicate")}
    assert set(people(org)) == {"alan@example.com", "grace@example.com"}


def test_import_tasks_resolve_project_by_code(run, org):
    project = ProjectFactory(organization=org, code="WEB-1")
    summary = run("tasks", [["Project code", "Title", "External id"], ["web-1", "Design", "T-1"]])
    task = db.session.scalars(select(Task)).one()
    assert counts(summary) == (1, 0, 0, 0)
    assert (task.project_id, task.title, task.status) == (project.id, "Design", "todo")


def test_import_tasks_unknown_project_code_names_column_and_value(run, org):
    ProjectFactory(organization=org, code="WEB-1")
    summary = run("tasks", [["Project code", "Title", "External id"], ["NOPE-9", "Design", "T-1"]])
    [error] = summary.errors
    assert (summary.failed, error.row, error.column, error.value) == (1, 2, "Project code", "NOPE-9")
    assert "no project with code 'NOPE-9'" in error.message
    assert db.session.scalar(select(func.count(Task.id))) == 0


def test_import_reference_longer_than_the_column_matches_nothing(run, org):
    """The batched lookup must compare the whole key: no cut to the column's length (varchar(50))."""
    ProjectFactory(organization=org, code="C" * 50)
    summary = run("tasks", [["Project code", "Title", "External id"], ["C" * 51, "Design", "T-1"]])
    [error] = summary.errors
    assert (summary.failed, error.column, error.code) == (1, "Project code", "unknown")
    assert db.session.scalar(select(func.count(Task.id))) == 0


def test_import_time_entry_task_of_another_project_is_an_error(run, org):
    person = PersonFactory(organization=org, email="ada@example.com")
    ProjectFactory(organization=org, code="A")
    TaskFactory(organization=org, project=ProjectFactory(organization=org, code="B"), external_id="T-B")
    summary = run("time_entries", [["Person", "Project", "Task", "Date", "Hours", "External id"],
                                   [person.email, "A", "T-B", "2026-03-02", "2", "E-1"]])
    assert [(e.column, e.code) for e in summary.errors] == [("Task", "mismatch")]


@pytest.mark.parametrize(("mode", "expected", "code"), [
    ("create", (1, 0, 0, 1), "exists"),
    ("update", (0, 1, 0, 1), "missing"),
    ("upsert", (1, 1, 0, 0), None),
])
def test_import_modes_decide_create_and_update(run, org, mode, expected, code):
    run("people", [PEOPLE_HEADER, PEOPLE[0]])
    summary = run("people", [PEOPLE_HEADER, [*PEOPLE[0][:2], "Elsewhere", *PEOPLE[0][3:]], PEOPLE[1]], mode=mode)
    assert counts(summary) == expected
    assert [e.code for e in summary.errors] == ([code] if code else [])


def test_import_abort_mode_writes_nothing_when_a_row_fails(run, org):
    rows = [PEOPLE_HEADER, *PEOPLE, ["not-an-email", "Broken", "", "", "", ""]]
    summary = run("people", rows, on_error="abort")
    assert (summary.aborted, summary.failed, summary.created) == (True, 1, 0)
    assert people(org) == {}


def test_import_skip_mode_loads_the_valid_rows(run, org):
    summary = run("people", [PEOPLE_HEADER, *PEOPLE, ["not-an-email", "Broken", "", "", "", ""]])
    [error] = summary.errors
    assert (summary.created, summary.failed, error.row, error.column) == (3, 1, 5, "E-mail")
    assert "valid email address" in error.message


def test_import_never_matches_or_changes_another_orgs_records(run, org):
    other = OrganizationFactory()
    theirs = PersonFactory(organization=other, email="ada@example.com", name="Theirs")
    ProjectFactory(organization=other, code="THEIRS")
    people_summary = run("people", [PEOPLE_HEADER, PEOPLE[0]])
    task_summary = run("tasks", [["Project", "Title", "External id"], ["THEIRS", "x", "T-1"]])
    db.session.expire_all()
    assert counts(people_summary) == (1, 0, 0, 0)
    assert (db.session.get(Person, theirs.id).name, db.session.get(Person, theirs.id).version) == ("Theirs", 1)
    assert [e.code for e in task_summary.errors] == ["unknown"]


def test_import_manager_later_in_the_same_file_is_linked(run, org):
    rows = [["Email", "Name", "Manager"], ["ada@example.com", "Ada", "boss@example.com"],
            ["boss@example.com", "Boss", ""]]
    summary = run("people", rows)
    stored = people(org)
    assert counts(summary) == (2, 0, 0, 0)
    assert stored["ada@example.com"].manager_id == stored["boss@example.com"].id


def test_import_dry_run_counts_without_writing(run, org):
    summary = run("people", [PEOPLE_HEADER, *PEOPLE], dry_run=True)
    assert (summary.dry_run, counts(summary)) == (True, (3, 0, 0, 0))
    assert people(org) == {}
    assert db.session.scalar(select(func.count(AuditEvent.id))) == 0


def test_import_records_one_audit_event_per_run(run, org):
    run("people", [PEOPLE_HEADER, *PEOPLE])
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.organization_id == org.id))
    assert (event.action, event.details["created"], event.details["entity"]) == ("import.completed", 3, "people")


def test_import_projects_reads_excel_serial_dates_and_client_by_name(run, org):
    summary = run("projects", [["Code", "Name", "Start", "End", "Status"],
                               ["web-1", "Web", "46093", "2026-12-31", "On hold"]])
    project = db.session.scalars(select(Project)).one()
    assert counts(summary) == (1, 0, 0, 0)
    assert (project.code, project.start_date, project.end_date, project.status) == (
        "WEB-1", date(2026, 3, 12), date(2026, 12, 31), "on_hold")


def test_import_person_external_id_used_by_another_person_is_an_error(run, org):
    PersonFactory(organization=org, email="first@example.com", external_id="HR-1")
    summary = run("people", [["Email", "Name", "External id"], ["second@example.com", "Second", "HR-1"]])
    assert [(e.column, e.code) for e in summary.errors] == [("External id", "taken")]


def test_import_mapping_missing_a_required_field_lists_it(run):
    with pytest.raises(ValidationFailed) as caught:
        run("people", [["Email", "Department"], ["ada@example.com", "R"]])
    assert caught.value.errors["mapping"] == ["required fields not mapped to any column: name"]


def _xlsx(path: Path, rows: Table) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("People")
    for index, row in enumerate(rows):
        sheet.write_row(index, 0, row)
    book.close()


def _json(path: Path, rows: Table) -> None:
    path.write_text(json.dumps({"people": [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]}))


@pytest.mark.parametrize("fmt", ["xlsx", "json"])
def test_import_people_from_other_formats_matches_csv(org, tmp_path, fmt):
    path = tmp_path / f"people.{fmt}"
    {"xlsx": _xlsx, "json": _json}[fmt](path, [PEOPLE_HEADER, *PEOPLE])
    summary = run_import_file(org, ACTOR, path, path.name, "people")
    assert counts(summary) == (3, 0, 0, 0)
    assert people(org)["ada@example.com"].skills == ["maths", "poetry"]


def test_import_time_entries_resolve_person_and_project(run, org):
    person = PersonFactory(organization=org, email="ada@example.com")
    project = ProjectFactory(organization=org, code="WEB")
    summary = run("time_entries", [["Person", "Project", "Date", "Hours", "Billable", "External id"],
                                   ["ADA@example.com", "web", "2026-03-02", "7,5", "n", "E-1"]])
    entry = db.session.scalars(select(TimeEntry)).one()
    assert counts(summary) == (1, 0, 0, 0)
    assert (entry.person_id, entry.project_id, entry.hours, entry.billable) == (
        person.id, project.id, Decimal("7.50"), False)


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40)
person_rows = st.lists(
    st.tuples(names.filter(lambda s: s.strip() == s and s), st.decimals(0, 9999, places=2),
              st.lists(st.sampled_from(["python", "sql", "go", "rust"]), unique=True), st.booleans()),
    min_size=1, max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=person_rows)
def test_import_people_reads_back_what_was_written(tmp_path, rows):
    org = OrganizationFactory()
    table = [["email", "name", "hourly_rate", "skills", "active"]] + [
        [f"p{i}@example.com", name, str(rate), ", ".join(skills), "yes" if active else "no"]
        for i, (name, rate, skills, active) in enumerate(rows)
    ]
    path = tmp_path / f"people-{org.id}.json"
    path.write_text(json.dumps([dict(zip(table[0], row, strict=True)) for row in table[1:]]))
    summary = run_import_file(org, ACTOR, path, path.name, "people")
    stored = people(org)
    assert summary.created == len(rows)
    assert [(stored[f"p{i}@example.com"].name, stored[f"p{i}@example.com"].hourly_rate,
             stored[f"p{i}@example.com"].skills, stored[f"p{i}@example.com"].active) for i in range(len(rows))] == [
        (name, rate, sorted(skills, key=str.lower), active) for name, rate, skills, active in rows]


def test_import_stores_texts_with_copy_format_characters_verbatim(run, org):
    """Tabs, newlines, backslashes and a literal ``\\N`` are data, not COPY's separators or its NULL."""
    PersonFactory(organization=org, email="ada@example.com")
    ProjectFactory(organization=org, code="WEB")
    notes = ["tab\there", "two\nlines", "carriage\r\nreturn", "back\\slash \\N", "\\N", "\\.", "naïve café ☕"]
    rows = [["ada@example.com", "WEB", "2026-03-02", "1", f"E-{i}", note] for i, note in enumerate(notes)]
    summary = run("time_entries", [["Person", "Project", "Date", "Hours", "External id", "Note"], *rows])
    stored = dict(db.session.execute(select(TimeEntry.external_id, TimeEntry.note)).all())
    assert counts(summary) == (len(notes), 0, 0, 0)
    assert stored == {f"E-{i}": note for i, note in enumerate(notes)}
    assert counts(run("time_entries", [["Person", "Project", "Date", "Hours", "External id", "Note"], *rows])) == (
        0, 0, len(notes), 0)


@pytest.mark.parametrize("stored_before", [False, True], ids=["first-import", "people-stored"])
def test_pipeline_takes_in_a_record_a_concurrent_writer_adds_mid_import(org, write_csv, stored_before):
    """Someone adds a person of a later chunk while the import runs (here: between its chunks).

    With no people stored when the import starts, no chunk looks its stored records up (a first import
    has none to find); otherwise, on PostgreSQL, the next chunk's were usually looked up ahead, before
    the write. Either way the INSERT fails on the unique key and the chunk is loaded again with fresh
    lookups, and the import ends with that person updated, not failed and not duplicated.
    """
    if stored_before:
        PersonFactory(organization=org, email="someone@example.com")
    path = write_csv([["Email", "Name"], *([f"p{i}@example.com", f"Person {i}"] for i in range(6))])
    reader = open_reader(path, path.name)
    spec = ENTITY_SPECS["people"]
    org_id = org.id

    def add_a_person_meanwhile(done: int, total: int) -> None:
        if done == 2:
            with db.engine.connect() as other:  # another session: its own connection and commit
                now = utcnow()
                other.execute(insert(Person).values(organization_id=org_id, email="p3@example.com", name="Meanwhile",
                                                    skills=[], active=True, version=1, created_at=now, updated_at=now))
                other.commit()

    summary = run_pipeline(reader, None, suggest_mapping(reader.headers(None), spec), spec, org, chunk_size=2,
                           progress=add_a_person_meanwhile)
    db.session.expire_all()
    stored = people(org)
    assert counts(summary) == (5, 1, 0, 0)
    assert len(stored) == 6 + stored_before
    assert (stored["p3@example.com"].name, stored["p3@example.com"].version) == ("Person 3", 2)


def test_pipeline_never_overwrites_a_record_edited_after_its_lookup(org, write_csv):
    """Someone edits a person the file updates, while the import runs (here: between its chunks).

    On PostgreSQL the chunk's records were usually looked up ahead, before the edit: the UPDATE only
    applies to the version it compared, matches nothing, and the chunk goes again with fresh lookups.
    Either way the file's values land on top of the edit, and undo would restore the edit, not the
    values from before it.
    """
    edited = PersonFactory(organization=org, email="p2@example.com", name="Before")
    edited_id = edited.id
    path = write_csv([["Email", "Name"], *([f"p{i}@example.com", f"Person {i}"] for i in range(4))])
    reader = open_reader(path, path.name)
    spec = ENTITY_SPECS["people"]
    undo: list[tuple[int, dict, int]] = []

    def edit_meanwhile(done: int, total: int) -> None:
        if done == 2:
            with db.engine.connect() as other:  # another session: its own connection and commit
                other.execute(update(Person).where(Person.id == edited_id)
                              .values(name="Edited meanwhile", version=Person.version + 1))
                other.commit()

    summary = run_pipeline(reader, None, suggest_mapping(reader.headers(None), spec), spec, org, chunk_size=2,
                           progress=edit_meanwhile, on_chunk=lambda outcome: undo.extend(outcome.counts.previous))
    db.session.expire_all()
    person = db.session.get(Person, edited_id)
    assert counts(summary) == (3, 1, 0, 0)
    assert (person.name, person.version) == ("Person 2", 3)
    assert [(rid, before["name"], version) for rid, before, version in undo] == [(edited_id, "Edited meanwhile", 3)]


def test_pipeline_chunk_of_several_copy_writes_gives_every_row_its_own_id_in_order(org, write_csv):
    """On PostgreSQL a chunk goes to ``COPY`` in slices: the ids handed to undo must still follow the rows."""
    total = COPY_SLICE * 2 + 3
    path = write_csv([["Email", "Name"], *([f"p{i}@example.com", f"Person {i}"] for i in range(total))])
    reader = open_reader(path, path.name)
    spec = ENTITY_SPECS["people"]
    created: list[int] = []
    summary = run_pipeline(reader, None, suggest_mapping(reader.headers(None), spec), spec, org,
                           on_chunk=lambda outcome: created.extend(outcome.counts.created_ids))
    names = dict(db.session.execute(select(Person.id, Person.name).where(Person.organization_id == org.id)).all())
    assert counts(summary) == (total, 0, 0, 0)
    assert [names[record_id] for record_id in created] == [f"Person {i}" for i in range(total)]


def test_stored_records_hold_what_a_typed_select_reads(org):
    """The lookup reads the driver's values untyped and converts each distinct one once: the records must
    still equal, type for type, what the ORM's typed select reads, and no two may share a list."""
    boss = PersonFactory(organization=org, email="boss@example.com", skills=["go", "sql"], active=False,
                         hourly_rate=Decimal("12.50"), weekly_capacity=Decimal("37.5"), external_id="HR-1")
    PersonFactory(organization=org, email="ada@example.com", skills=["go", "sql"], manager_id=boss.id,
                  hourly_rate=Decimal("12.50"))
    PersonFactory(organization=org, email="bob@example.com")
    TimeEntryFactory(organization=org, external_id="E-1", spent_on=date(2026, 2, 3), hours=Decimal("7.5"))
    TimeEntryFactory(organization=org, external_id="E-2", spent_on=date(2026, 2, 3), hours=Decimal("7.5"),
                     billable=False, note="late")
    for entity, keys in (("people", ["boss@example.com", "ada@example.com", "bob@example.com", "nobody@x.y"]),
                         ("time_entries", ["E-1", "E-2", "E-3"])):
        spec = ENTITY_SPECS[entity]
        model = spec.model
        names = [f.column for f in spec.fields]
        typed = db.session.execute(select(model.id, model.version, *(getattr(model, c) for c in names))
                                   .where(model.organization_id == org.id)).all()
        key = 2 + names.index(spec.key_field.column)
        expected = {tuple(row)[key]: tuple(row) for row in typed if tuple(row)[key] in keys}
        records = stored_records(db.session, spec, org.id, names, keys)
        assert len(records) == len(keys) - 1
        assert records == expected
        assert {k: [type(v) for v in r] for k, r in records.items()} == {
            k: [type(v) for v in r] for k, r in expected.items()}
    people_records = stored_records(db.session, ENTITY_SPECS["people"], org.id,
                                    [f.column for f in ENTITY_SPECS["people"].fields], ["boss@example.com",
                                                                                        "ada@example.com"])
    skills = [record[2 + [f.column for f in ENTITY_SPECS["people"].fields].index("skills")]
              for record in people_records.values()]
    assert skills == [["go", "sql"], ["go", "sql"]] and skills[0] is not skills[1]
