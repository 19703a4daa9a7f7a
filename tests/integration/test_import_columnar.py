"""Differential tests: the columnar fast path and the row-at-a-time path must give identical imports.

``run_pipeline(columnar=True)`` maps, validates and loads column by column and hands any row it has a
doubt about to the row path; ``columnar=False`` sends every row through the row path. Each case writes
one file and imports it into two organisations seeded alike, org A with the fast path and org B with
the row path, with the same mode, on_error, chunk_size and dry_run, then compares what a user or undo
could observe: the summary counts, every error in order, what ``on_chunk`` received (the undo data) and
the stored records. Ids differ between the organisations, so every id is compared as the natural key of
the record it points at. A failure names the first differing item.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, select

from app.extensions import db
from app.importers import ENTITY_SPECS, EntitySpec, open_reader, run_pipeline
from app.importers.pipeline import ChunkOutcome
from app.models import Organization
from tests.factories import (
    ClientFactory,
    OrganizationFactory,
    PersonFactory,
    ProjectFactory,
    TaskFactory,
    TimeEntryFactory,
)

MODES = ("upsert", "create", "update")
IGNORED_COLUMNS = frozenset({"id", "organization_id", "created_at", "updated_at"})
# Table name → (table, natural key column): how an id is shown in a comparison.
KEY_COLUMNS: dict[str, tuple[Table, str]] = {
    spec.model.__table__.name: (spec.model.__table__, spec.key_field.column) for spec in ENTITY_SPECS.values()
}
EXAMPLES = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

Rows = list[list[str]]


# --- running one file through both paths -------------------------------------------------------------


@dataclass
class Observed:
    """Everything of one import that the two paths must agree on, ids replaced by natural keys."""

    summary: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple] = field(default_factory=list)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    records: list[tuple] = field(default_factory=list)
    raised: str | None = None


def _referenced_table(column: Any) -> str | None:
    """The table a foreign key column points at (tenant references only, not the organisation)."""
    for foreign_key in column.foreign_keys:
        name = foreign_key.column.table.name
        if name in KEY_COLUMNS:
            return name
    return None


def _keys(table_name: str, org_id: int, ids: Sequence[int] | None = None) -> dict[int, Any]:
    """id → natural key for records of ``org_id``; an id of another organisation stays unmapped."""
    table, key = KEY_COLUMNS[table_name]
    query = select(table.c.id, table.c[key]).where(table.c.organization_id == org_id)
    if ids is not None:
        query = query.where(table.c.id.in_(list(ids)))
    return dict(db.session.execute(query).all())


def _as_key(keys: dict[int, Any], record_id: Any) -> str:
    if record_id is None:
        return "None"
    return repr(keys[record_id]) if record_id in keys else f"<id {record_id} not in this organisation>"


def _stored(spec: EntitySpec, org_id: int) -> list[tuple]:
    """Every record of the entity in the organisation, all columns but ids and timestamps, sorted."""
    table = spec.model.__table__
    columns = [c for c in table.columns if c.name not in IGNORED_COLUMNS]
    references = {c.name: _keys(target, org_id) for c in columns if (target := _referenced_table(c))}
    records = []
    for row in db.session.execute(select(table).where(table.c.organization_id == org_id)).mappings():
        records.append(tuple(
            (c.name, _as_key(references[c.name], row[c.name]) if c.name in references else repr(row[c.name]))
            for c in columns
        ))
    return sorted(records)


def _chunk_view(spec: EntitySpec, org_id: int, outcome: ChunkOutcome) -> dict[str, Any]:
    """What undo and progress take from one chunk; queried inside the chunk's transaction, as undo is."""
    counts = outcome.counts
    own = spec.model.__table__.name
    own_keys = _keys(own, org_id, counts.created_ids + [rid for rid, _, _ in counts.previous])
    table = spec.model.__table__
    previous = []
    for record_id, before, version_after in counts.previous:
        values = []
        for column, value in before.items():
            target = _referenced_table(table.c[column])
            shown = _as_key(_keys(target, org_id, [value]) if value is not None else {}, value) if target \
                else repr(value)
            values.append((column, shown))
        previous.append((_as_key(own_keys, record_id), tuple(values), version_after))
    return {
        "rows": outcome.rows, "done": outcome.done, "total": outcome.total, "failed": outcome.failed,
        "written": outcome.written, "created": counts.created, "updated": counts.updated,
        "unchanged": counts.unchanged, "error rows": sorted(e.row for e in outcome.errors),
        "created ids": len(counts.created_ids),
        "created records": sorted(_as_key(own_keys, rid) for rid in counts.created_ids),
        "previous": sorted(previous),
    }


def _import(path: Path, spec: EntitySpec, mapping: dict[str, str], org: Organization, *, columnar: bool,
            **options: Any) -> Observed:
    observed = Observed()
    reader = open_reader(path, path.name)
    try:
        summary = run_pipeline(reader, None, mapping, spec, org, columnar=columnar,
                               on_chunk=lambda outcome: observed.chunks.append(_chunk_view(spec, org.id, outcome)),
                               **options)
    except Exception as exc:  # compared below: both paths must fail alike, and neither should fail
        db.session.rollback()
        # The first line only: the rest repeats the SQL and its parameters, which hold the org's id.
        observed.raised = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    else:
        observed.summary = {name: getattr(summary, name) for name in
                            ("created", "updated", "unchanged", "failed", "rows_total", "aborted",
                             "errors_total", "dry_run")}
        observed.errors = [(e.row, e.column, e.field, e.value, e.code, e.message) for e in summary.errors]
    db.session.expire_all()
    observed.records = _stored(spec, org.id)
    return observed


def _first_difference(fast: Any, slow: Any) -> str:
    if isinstance(fast, dict) and isinstance(slow, dict):
        keys = [k for k in {**fast, **slow} if fast.get(k, "<missing>") != slow.get(k, "<missing>")]
        key = keys[0]
        return (f"first differing key {key!r}:\n  columnar: {fast.get(key, '<missing>')!r}\n"
                f"  row path: {slow.get(key, '<missing>')!r}")
    if isinstance(fast, list) and isinstance(slow, list):
        for index, (a, b) in enumerate(zip(fast, slow, strict=False)):
            if a != b:
                return f"first difference at item {index}:\n  columnar: {a!r}\n  row path: {b!r}\n" + (
                    f"  within it: {_first_difference(a, b)}" if type(a) is type(b) and isinstance(a, dict) else "")
        longer, name = (fast, "columnar") if len(fast) > len(slow) else (slow, "row path")
        return (f"lengths differ (columnar {len(fast)}, row path {len(slow)}); first extra item, "
                f"from the {name}: {longer[min(len(fast), len(slow))]!r}")
    return f"\n  columnar: {fast!r}\n  row path: {slow!r}"


def _shown(path: Path) -> str:
    """The file, for a failure message."""
    if path.suffix == ".xlsx":
        from openpyxl import load_workbook

        text = repr([[c.value for c in row] for row in load_workbook(path, read_only=True).active.iter_rows()])
    else:
        text = path.read_text(encoding="utf-8")
    return f"\n  file {path.name}: {text[:3000]!r}" + (" ..." if len(text) > 3000 else "")


def _assert_same(case: str, fast: Observed, slow: Observed, path: Path) -> None:
    for part in ("raised", "summary", "errors", "chunks", "records"):
        a, b = getattr(fast, part), getattr(slow, part)
        assert a == b, f"{case}: the two paths differ in {part}; {_first_difference(a, b)}{_shown(path)}"
    assert fast.raised is None, f"{case}: both paths raised {fast.raised}{_shown(path)}"


def _write_csv(path: Path, rows: Rows) -> Path:
    # With a single quote but no double quote in the sample, the reader asks csv.Sniffer for the quote
    # character, which then takes the formula quote of ``'=q@…`` for a quote: quote every cell then.
    quoting = csv.QUOTE_ALL if any("'" in cell for row in rows for cell in row) else csv.QUOTE_MINIMAL
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=quoting).writerows(rows)
    return path


def _write(directory: Path, stem: str, rows: Rows) -> Path:
    """A CSV, or JSON when a cell holds NUL: a NUL byte makes any text file "binary" to the upload check."""
    if not any("\x00" in cell for row in rows for cell in row):
        return _write_csv(directory / f"{stem}.csv", rows)
    path = directory / f"{stem}.json"
    path.write_text(json.dumps([dict(zip(rows[0], row, strict=True)) for row in rows[1:]]), encoding="utf-8")
    return path


def compare(path: Path, entity: str, mapping: dict[str, str], orgs: tuple[Organization, Organization],
            case: str, **options: Any) -> Observed:
    """Import ``path`` into org A on the fast path and org B on the row path; assert they agree."""
    spec = ENTITY_SPECS[entity]
    headers = open_reader(path, path.name).headers(None)
    assert headers == list(mapping), f"{case}: the reader saw headers {headers}, the test wrote {list(mapping)}"
    fast = _import(path, spec, mapping, orgs[0], columnar=True, **options)
    slow = _import(path, spec, mapping, orgs[1], columnar=False, **options)
    _assert_same(f"{case} {options}", fast, slow, path)
    return fast


def two_orgs(seed) -> tuple[Organization, Organization]:
    """Two fresh organisations holding the same seed records."""
    orgs = (OrganizationFactory(), OrganizationFactory())
    for org in orgs:
        seed(org)
    return orgs


# --- cell pools: what real files contain ---------------------------------------------------------------

# Characters that trip up stripping, splitting, looking up and storing: Unicode spaces, a file separator,
# a formula quote, NUL.
FUZZ = st.text(st.sampled_from(["a", "A", "1", ",", ".", " ", "@", "-", "=", "'", "é", "\u00a0", "\u2003", "\x1c",
                                "\x00"]), max_size=6)
Column = tuple[st.SearchStrategy[str], st.SearchStrategy[str]]


def column(good: Sequence[str], bad: Sequence[str]) -> Column:
    """Cells for a clean row (accepted values, however oddly written) and for a dirty one (anything)."""
    clean = st.sampled_from(good)
    return clean, st.one_of(clean, clean, clean, clean, st.sampled_from(bad), FUZZ)


def table_of(columns: dict[str, Column], max_rows: int = 10) -> st.SearchStrategy[Rows]:
    """Rows all clean (the fast path's share, two in three) or dirty (most fail, some on one cell only)."""
    clean = st.tuples(*(good for good, _ in columns.values()))
    dirty = st.tuples(*(anything for _, anything in columns.values()))
    return st.lists(st.one_of(clean, clean, dirty).map(list), min_size=1, max_size=max_rows)


OPTIONS = st.fixed_dictionaries({
    "mode": st.sampled_from(("upsert", "upsert", "create", "update")),
    "on_error": st.sampled_from(("skip", "skip", "abort")),
    "dry_run": st.booleans(),
    "chunk_size": st.sampled_from((2, 3, 5000)),
})


# --- people -------------------------------------------------------------------------------------------

PEOPLE_MAPPING = {"Email": "email", "Name": "name", "Department": "department", "Manager": "manager",
                  "Skills": "skills", "Rate": "hourly_rate", "Capacity": "weekly_capacity", "Active": "active",
                  "External id": "external_id"}
PEOPLE_CELLS = {
    "Email": column(["ada@example.com", " ADA@example.com", "Ada@Example.com\u00a0", "\u2003bob@example.com",
                     "bob@example.com\x1c", "old@example.com", "OLD@EXAMPLE.COM ", "boss@example.com",
                     "new@example.com", "zoë@example.com", "'=q@example.com", "=q@example.com",
                     *(f"p{n}@example.com" for n in range(12))],
                    ["", "   ", "not-an-email", "a b@example.com", "@example.com", "x@", "e\x00@example.com",
                     "x" * 320 + "@example.com"]),
    "Name": column(["Ada", "  Ada Lovelace ", "N" * 200, "Zoë", "\u2003Bob\u2003", "x\x1cy", "Old", "'=1+1", "''=x"],
                   ["", " ", "\u00a0", "N" * 201, "Nul\x00name"]),
    "Department": column(["", "R&D", "Research", "Engineering"], ["D" * 201, "d\x00"]),
    "Manager": column(["", "", "", "boss@example.com", "BOSS@example.com ", "old@example.com", "ada@example.com",
                       "p1@example.com"], ["ghost@example.com", "not-an-email", "P2@example.com", "m\x00@example.com"]),
    "Skills": column(["", "b, A, a,,", "python", "Python, python", " , ", "sql,go", "a\x00b"], ["s" * 40]),
    "Rate": column(["", "50.25", "50,25", "1.234,50", "1,234.50", " 12 ", "1e3", "99999999.99", "0", "12.345",
                    "1 234,5", "\u00a012", "10", "-0", "0,000"], ["abc", "-1", "NaN", "inf", "100000000", "1,2,3"]),
    "Capacity": column(["", "40", "168", "37,5", "0"], ["168.01", "-0.5", "200", "x"]),
    "Active": column(["", "yes", "no", "TRUE", "0", "1", "Off", " y "], ["maybe"]),
    "External id": column(["", "", "", "", "HR-1", " HR-10 ", "hr-1", "'=E-1", "=E-1",
                           *(f"EXT-{n}" for n in range(12))], ["X" * 256, "HR-2", "x\x00"]),
}


def import_twice(tmp_path: Path, entity: str, mapping: dict[str, str], seed: Any, first: Rows,
                 second: Rows | None, first_options: dict[str, Any], second_options: dict[str, Any]) -> None:
    """Import ``first`` on both paths, then ``second`` (or ``first`` again when it is ``None``) on top."""
    orgs = two_orgs(seed)
    header = list(mapping)
    label = entity.replace("_", " ")
    path = _write(tmp_path, f"{entity}-{orgs[0].id}-1", [header, *first])
    compare(path, entity, mapping, orgs, f"{label}, first import", **first_options)
    if second is not None:
        path = _write(tmp_path, f"{entity}-{orgs[0].id}-2", [header, *second])
    compare(path, entity, mapping, orgs, f"{label}, second import", **second_options)


def seed_people(org: Organization) -> None:
    boss = PersonFactory(organization=org, email="boss@example.com", name="Boss", external_id="HR-2")
    PersonFactory(organization=org, email="old@example.com", name="Old", external_id="HR-1", manager_id=boss.id,
                  hourly_rate=Decimal("10.00"), weekly_capacity=Decimal("40"), skills=["a", "b"], active=True)


@EXAMPLES
@given(first=table_of(PEOPLE_CELLS), second=st.one_of(st.none(), table_of(PEOPLE_CELLS)),
       first_options=OPTIONS, second_options=OPTIONS)
def test_people_messy_cells_import_alike_on_both_paths(tmp_path, first, second, first_options, second_options):
    import_twice(tmp_path, "people", PEOPLE_MAPPING, seed_people, first, second, first_options, second_options)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sample=table_of(PEOPLE_CELLS), seed=st.integers(0, 2**32), options=OPTIONS,
       chunk_size=st.sampled_from([97, 500, 5000]))
def test_people_many_rows_alike_on_both_paths(tmp_path, sample, seed, options, chunk_size):
    """1,200 rows made of a few drawn ones: each distinct cell is shared by many rows, clean and doubtful,
    in several chunks, and managers point at rows earlier, later and in the same chunk."""
    rnd = random.Random(seed)
    rows = []
    for i in range(1200):
        row = list(rnd.choice(sample))
        if rnd.random() < 0.97:  # otherwise the drawn email and external id: repeats across the file
            row[0], row[8] = f"bulk{i}@example.com", rnd.choice(["", f"B-{i}"])
        if rnd.random() < 0.3:
            row[3] = f"BULK{rnd.randrange(1200)}@example.com"
        rows.append(row)
    orgs = two_orgs(seed_people)
    path = _write(tmp_path, f"many-{orgs[0].id}", [list(PEOPLE_MAPPING), *rows])
    compare(path, "people", PEOPLE_MAPPING, orgs, "people, many rows", **(options | {"chunk_size": chunk_size}))

# Each row exercises one rule; with chunk_size 3 the references and duplicates also cross chunks.
PEOPLE_SCENARIO = [
    ["Email", "Name", "Manager", "External id", "Rate", "Skills"],
    ["emp1@example.com", "E1", "boss@example.com", "", "50.25", "b, A, a,,"],     # existing manager
    ["emp2@example.com", "E2", "lead@example.com", "", "50,25", ""],             # manager later, same chunk
    ["lead@example.com", "Lead", "EMP1@example.com", "", "1.234,50", "x"],       # manager earlier in the file
    ["self@example.com", "Self", " SELF@example.com", "", "", ""],               # own email
    ["lost@example.com", "Lost", "ghost@example.com", "", "", ""],               # unknown manager
    ["emp3@example.com", "E3", "late@example.com", "", "-1", ""],                # manager in a later chunk; bad rate
    ["dup@example.com", "D1", "", "", "", ""],                                   # duplicate (row 10)
    ["x@example.com", "X", "", "HR-1", "", ""],                                  # external id of another person
    ["late@example.com", "Late", "", "", "1e3", ""],
    [" DUP@example.com ", "D2", "", "", "", ""],                                 # duplicate (row 8), next chunk
    ["old@example.com", "Old renamed", "boss@example.com", "HR-1", "11", "c"],   # update: undo keeps the old values
    ["broken@example.com", "B", "dup@example.com", "", "", ""],                  # manager is a failed row
    ["boss@example.com", "Boss", "", "HR-2", "", ""],                            # unchanged
]


@pytest.mark.parametrize("chunk_size", [3, 5000])
@pytest.mark.parametrize("dry_run", [False, True], ids=["write", "dry-run"])
@pytest.mark.parametrize("on_error", ["skip", "abort"])
@pytest.mark.parametrize("mode", MODES)
def test_people_references_duplicates_and_modes_alike_on_both_paths(tmp_path, mode, on_error, dry_run, chunk_size):
    orgs = two_orgs(seed_people)
    mapping = {"Email": "email", "Name": "name", "Manager": "manager", "External id": "external_id",
               "Rate": "hourly_rate", "Skills": "skills"}
    path = _write_csv(tmp_path / "people.csv", PEOPLE_SCENARIO)
    options = {"mode": mode, "on_error": on_error, "dry_run": dry_run, "chunk_size": chunk_size}
    compare(path, "people", mapping, orgs, "people scenario", **options)
    compare(path, "people", mapping, orgs, "people scenario, same file again", **options)


def test_people_update_with_changed_values_keeps_the_same_undo_data(tmp_path):
    orgs = two_orgs(seed_people)
    header = list(PEOPLE_MAPPING)
    before = [["ada@example.com", "Ada", "R&D", "boss@example.com", "python, sql", "50", "40", "yes", "HR-7"],
              ["bob@example.com", "Bob", "", "ada@example.com", "", "", "", "", ""]]
    after = [["ADA@example.com ", "Ada L.", "", "bob@example.com", "SQL", "50,5", "", "no", "HR-8"],
             ["bob@example.com", "Bob", "", "ada@example.com", "", "", "", "", ""],
             ["old@example.com", "Old", "", "", "", "10", "40", "TRUE", "HR-1"]]
    compare(_write(tmp_path, "a", [header, *before]), "people", PEOPLE_MAPPING, orgs, "people, create")
    changed = compare(_write(tmp_path, "b", [header, *after]), "people", PEOPLE_MAPPING, orgs,
                      "people, update", chunk_size=2)
    # The comparison is only meaningful if the case did produce undo data (bob is unchanged).
    updated = [record for chunk in changed.chunks for record, _, _ in chunk["previous"]]
    assert updated == ["'ada@example.com'", "'old@example.com'"], changed.chunks


# --- projects -----------------------------------------------------------------------------------------

PROJECT_MAPPING = {"Code": "code", "Name": "name", "Client": "client", "Status": "status", "Priority": "priority",
                   "Start": "start_date", "End": "end_date", "Budget": "budget", "External id": "external_id"}
GOOD_DATES = ("", "2026-03-12", "2026-03-12T00:00:00", "2026-03-12 10:30:00", "2026/03/12", "12.03.2026",
              "12 Mar 2026", "12 March 2026", "Mar 12, 2026", "March 12, 2026", "Mar 12 2026", "46093", "46093.5",
              "59", "61", "1", "2958465", "1e3", "2025-01-01", "2027-12-31", " 2026-03-12 ")
BAD_DATES = ("60", "0", "2958466", "03/12/2026", "2026-02-30", "2026-13-01", "soon", "-5", "NaN")
PROJECT_CELLS = {
    "Code": column(["web-1", "WEB-1", " Web-1 ", "old-1", "OLD-1", "C" * 50, "new\u00a0", "p-2", "P-3", "x-4",
                    "'-P", "-p"],
                   ["WEB 1", "a\u2003b", "", "C" * 51, "x\x00"]),
    "Name": column(["Web", "Zoë", "Old"], ["", "N" * 201, "x\x00"]),
    "Client": column(["", "Acme", " Acme ", "Globex"], ["acme", "Nobody", "Acme\x00"]),
    "Status": column(["", "On hold", "on-hold", "ON_HOLD", "active", "Planned", "completed", "  Cancelled "],
                     ["nope"]),
    "Priority": column(["", "HIGH", "low", "Critical", "medium"], ["urgent"]),
    "Start": column(GOOD_DATES, BAD_DATES),
    "End": column(GOOD_DATES, BAD_DATES),
    "Budget": column(["", "1000", "1.000,50", "999999999999.99", "1e2"], ["-1", "1000000000000", "abc"]),
    "External id": column(["", "P-1", "P-2", "p-1", "P-3", "'+P", "+P"], ["E" * 256]),
}


def seed_projects(org: Organization) -> None:
    acme = ClientFactory(organization=org, name="Acme")
    ClientFactory(organization=org, name="Globex")
    ProjectFactory(organization=org, code="OLD-1", name="Old", client_id=acme.id, external_id="P-1",
                   start_date=date(2026, 1, 1), end_date=date(2026, 12, 31), budget=Decimal("1000.00"))


@EXAMPLES
@given(first=table_of(PROJECT_CELLS), second=st.one_of(st.none(), table_of(PROJECT_CELLS)),
       first_options=OPTIONS, second_options=OPTIONS)
def test_projects_messy_cells_import_alike_on_both_paths(tmp_path, first, second, first_options, second_options):
    import_twice(tmp_path, "projects", PROJECT_MAPPING, seed_projects, first, second, first_options, second_options)


@pytest.mark.parametrize("text", [d for d in GOOD_DATES + BAD_DATES if d])
def test_projects_every_date_form_alike_on_both_paths(tmp_path, text):
    orgs = two_orgs(seed_projects)
    rows = [list(PROJECT_MAPPING), ["D-1", "Dates", "", "", "", text, "", "", ""],
            ["D-2", "Dates", "", "", "", "2026-03-12", text, "", ""]]
    compare(_write_csv(tmp_path / "dates.csv", rows), "projects", PROJECT_MAPPING, orgs, f"date {text!r}")


# --- tasks and time entries ---------------------------------------------------------------------------


def seed_work(org: Organization) -> None:
    ada = PersonFactory(organization=org, email="ada@example.com", name="Ada")
    PersonFactory(organization=org, email="bob@example.com", name="Bob")
    a = ProjectFactory(organization=org, code="A", name="A")
    b = ProjectFactory(organization=org, code="B", name="B")
    t_a = TaskFactory(organization=org, project_id=a.id, title="Task A", external_id="T-A")
    TaskFactory(organization=org, project_id=b.id, title="Task B", external_id="T-B")
    TimeEntryFactory(organization=org, person_id=ada.id, project_id=a.id, task_id=t_a.id, external_id="E-old",
                     spent_on=date(2026, 3, 1), hours=Decimal("2.00"), billable=True)


TASK_MAPPING = {"Project": "project", "Title": "title", "Status": "status", "Priority": "priority",
                "Assignee": "assignee", "Estimate": "estimate_hours", "Due": "due_date", "External id": "external_id"}
TASK_CELLS = {
    "Project": column(["A", "a", " b ", "B"], ["NOPE", ""]),
    "Title": column(["Design", "T" * 300], ["", "T" * 301, "x\x00"]),
    "Status": column(["", "In progress", "DONE", "blocked"], ["nah"]),
    "Priority": column(["", "HIGH", "low"], ["urgent"]),
    "Assignee": column(["", "ada@example.com", "ADA@EXAMPLE.COM"], ["ghost@example.com"]),
    "Estimate": column(["", "1,5", "3", "2.555", "100000"], ["-1", "100001"]),
    "Due": column(["", "2026-03-12", "46093"], ["03/12/2026"]),
    "External id": column(["T-A", "T-B", "T-new", "t-a", " T-new ", "T-2", "T-3", "'@T", "@T"], [""]),
}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=table_of(TASK_CELLS), options=OPTIONS)
def test_tasks_messy_cells_import_alike_on_both_paths(tmp_path, rows, options):
    import_twice(tmp_path, "tasks", TASK_MAPPING, seed_work, rows, None, options, options)


ENTRY_MAPPING = {"Person": "person", "Project": "project", "Task": "task", "Date": "spent_on", "Hours": "hours",
                 "Billable": "billable", "Note": "note", "External id": "external_id"}
ENTRY_CELLS = {
    "Person": column(["ada@example.com", "ADA@Example.com ", "bob@example.com"], ["ghost@example.com", ""]),
    "Project": column(["A", "a", "B"], ["NOPE", ""]),
    "Task": column(["", "T-A", "T-B"], ["t-a", "T-X", "T-A\x00"]),
    "Date": column(["2026-03-02", "46083", "2.3.2026", "Mar 2, 2026"], ["", "03/02/2026"]),
    "Hours": column(["0.01", "24", "1,5", "7.5", "0.015", "23.999"],
                    ["", "0", "24.01", "-1", "abc", "1.234,5", "0.005"]),
    "Billable": column(["", "yes", "N", "0"], ["maybe"]),
    "Note": column(["", "note", "n" * 5000], ["n" * 5001, "x\x00"]),
    "External id": column(["E-1", "E-2", "E-old", " E-1", "e-1", "E-3", "E-4", "'=E-5", "=E-5"], [""]),
}


@EXAMPLES
@given(first=table_of(ENTRY_CELLS), second=st.one_of(st.none(), table_of(ENTRY_CELLS)),
       first_options=OPTIONS, second_options=OPTIONS)
def test_time_entries_messy_cells_import_alike_on_both_paths(tmp_path, first, second, first_options,
                                                             second_options):
    import_twice(tmp_path, "time_entries", ENTRY_MAPPING, seed_work, first, second, first_options, second_options)



ASSIGNMENT_MAPPING = {"Person": "person", "Project": "project", "Task": "task", "Hours": "hours",
                      "Start": "start_date", "End": "end_date", "External id": "external_id"}
ASSIGNMENT_CELLS = {
    "Person": ENTRY_CELLS["Person"],
    "Project": ENTRY_CELLS["Project"],
    "Task": ENTRY_CELLS["Task"],
    "Hours": column(["0.01", "20", "100000", "1,5", "0.015"], ["", "0", "100000.01", "-1"]),
    "Start": column(["", "2026-03-02", "46083", "2.3.2026"], ["03/02/2026", "60"]),
    "End": column(["", "2026-03-01", "2026-12-31", "46100"], ["2026-13-01"]),
    "External id": column(["A-1", "A-2", " A-1", "a-1", "A-3", "'=A-4", "=A-4"], [""]),
}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=table_of(ASSIGNMENT_CELLS), options=OPTIONS)
def test_assignments_messy_cells_import_alike_on_both_paths(tmp_path, rows, options):
    import_twice(tmp_path, "assignments", ASSIGNMENT_MAPPING, seed_work, rows, None, options, options)


COMMENT_MAPPING = {"Task": "task", "Author": "author", "Body": "body", "External id": "external_id"}
COMMENT_CELLS = {
    "Task": column(["T-A", "T-B", " T-A "], ["t-a", "T-X", ""]),
    "Author": column(["", "ada@example.com", " BOB@example.com"], ["ghost@example.com"]),
    "Body": column(["Looks good", "'=1+1", "b" * 20000, "\u2003x\u2003"], ["", "b" * 20001, "x\x00"]),
    "External id": column(["C-1", "C-2", "c-1", " C-3 "], [""]),
}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=table_of(COMMENT_CELLS), options=OPTIONS)
def test_comments_messy_cells_import_alike_on_both_paths(tmp_path, rows, options):
    import_twice(tmp_path, "comments", COMMENT_MAPPING, seed_work, rows, None, options, options)


def seed_clients(org: Organization) -> None:
    ClientFactory(organization=org, name="Acme", external_id="C-1", contact_email="a@acme.example")


@pytest.mark.parametrize("chunk_size", [2, 5000])
def test_clients_single_mapped_column_alike_on_both_paths(tmp_path, chunk_size):
    """One mapped column (the columnar path then picks a cell, not a tuple, per row) and an ignored one."""
    orgs = two_orgs(seed_clients)
    rows = [["Name", "Notes"], ["Acme", "x"], ["acme", ""], [" Globex ", "y"], ["Globex", ""], ["", "only notes"],
            ["N" * 201, ""], ["'=Initech", ""], ["Umbrella", ""]]
    compare(_write_csv(tmp_path / "clients.csv", rows), "clients", {"Name": "name", "Notes": None}, orgs,
            "clients, one column", chunk_size=chunk_size)


@pytest.mark.parametrize("skip_rows", [1, 4, 7])
def test_people_resumed_import_alike_on_both_paths(tmp_path, skip_rows):
    """A resume after a crash (``skip_rows``) starts mid-file, in the middle of a chunk's references."""
    orgs = two_orgs(seed_people)
    mapping = {"Email": "email", "Name": "name", "Manager": "manager", "External id": "external_id",
               "Rate": "hourly_rate", "Skills": "skills"}
    path = _write_csv(tmp_path / "people.csv", PEOPLE_SCENARIO)
    compare(path, "people", mapping, orgs, "people scenario, resumed", chunk_size=3, skip_rows=skip_rows)


# Typed cells as spreadsheets and JSON hold them: numbers, booleans and dates, not only text.
TYPED_ENTRY_CELLS = {
    "Person": st.sampled_from(["ada@example.com", "ADA@example.com", "bob@example.com", "ghost@example.com"]),
    "Project": st.sampled_from(["A", "a", "B", "NOPE"]),
    "Task": st.sampled_from(["", "T-A", "T-B"]),
    "Date": st.one_of(st.dates(date(1899, 12, 1), date(2100, 1, 1)), st.sampled_from([46083, 60, 0, 46083.75]),
                      st.sampled_from(["2026-03-02", "2.3.2026", "03/02/2026"])),
    "Hours": st.one_of(st.sampled_from([0.01, 7.5, 24, 24.01, 0, 0.015, 1e-3, 23.999]),
                       st.decimals(0, 30, places=3).map(float), st.sampled_from(["1,5", ""])),
    "Billable": st.one_of(st.booleans(), st.sampled_from([0, 1, 2, "", "yes", "maybe"])),
    "Note": st.one_of(st.sampled_from(["", "'=SUM(A1)", "=x"]), st.integers(-5, 5)),
    "External id": st.one_of(st.sampled_from(["E-1", "E-2", "E-old", "e-1"]), st.integers(1, 4)),
}


def _write_typed(directory: Path, stem: str, fmt: str, header: list[str], rows: list[list[Any]]) -> Path:
    if fmt == "json":
        path = directory / f"{stem}.json"
        records = [{h: v.isoformat() if isinstance(v, date) else v for h, v in zip(header, row, strict=True)}
                   for row in rows]
        path.write_text(json.dumps(records), encoding="utf-8")
        return path
    import xlsxwriter

    path = directory / f"{stem}.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Data")
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, header)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if isinstance(value, date):
                sheet.write_datetime(r, c, value, date_format)
            elif isinstance(value, str):
                sheet.write_string(r, c, value)
            else:
                sheet.write(r, c, value)
    book.close()
    return path


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(*TYPED_ENTRY_CELLS.values()).map(list), min_size=1, max_size=8),
       fmt=st.sampled_from(["xlsx", "json"]), options=OPTIONS)
def test_time_entries_typed_cells_alike_on_both_paths(tmp_path, rows, fmt, options):
    orgs = two_orgs(seed_work)
    header = list(ENTRY_MAPPING)
    path = _write_typed(tmp_path, f"typed-{orgs[0].id}", fmt, header, rows)
    compare(path, "time_entries", ENTRY_MAPPING, orgs, f"time entries from {fmt}", **options)

# --- file shape ---------------------------------------------------------------------------------------


FILE_SHAPES = {
    "ragged": ("Email,Name,Department\n"
               "a@example.com,A,R&D\n"
               "b@example.com,B,R&D,surplus,more\n"     # too many cells
               "c@example.com\n"                        # too few: name is blank
               "d@example.com,D\n"                      # too few, but only an optional cell missing
               "e@example.com,E,,\n"),                  # trailing empty cells are padding, not surplus
    "values left of the table": (",Email,Name\n"
                                 ",a@example.com,A\n"
                                 "stray,b@example.com,B\n"
                                 ",c@example.com,C\n"),
}


@pytest.mark.parametrize("on_error", ["skip", "abort"])
@pytest.mark.parametrize("shape", list(FILE_SHAPES))
def test_file_shapes_alike_on_both_paths(tmp_path, shape, on_error):
    orgs = two_orgs(seed_people)
    path = tmp_path / "shape.csv"
    path.write_text(FILE_SHAPES[shape], encoding="utf-8")
    mapping = {"Email": "email", "Name": "name", "Department": "department"}
    headers = next(csv.reader([FILE_SHAPES[shape].split("\n", 1)[0]]))
    compare(path, "people", {k: v for k, v in mapping.items() if k in headers}, orgs, shape, on_error=on_error)


# --- formula quotes and NUL in looked-up cells --------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [2, 5000], ids=["across-chunks", "same-chunk"])
def test_formula_quoted_keys_alike_on_both_paths(tmp_path, chunk_size):
    """``'=q@…`` is ``=q@…`` once the exports' formula quote is taken off: the same email twice."""
    orgs = two_orgs(seed_people)
    rows = [["Email", "Name", "External id"], ["'=q@example.com", "A", "'=E"], ["x@example.com", "X", ""],
            ["=q@example.com", "B", "=E"], ["y@example.com", "Y", "'=E"]]
    compare(_write_csv(tmp_path / "formulas.csv", rows), "people",
            {"Email": "email", "Name": "name", "External id": "external_id"}, orgs, "formula quotes",
            chunk_size=chunk_size)


@pytest.mark.parametrize("columnar", [True, False], ids=["columnar", "row-path"])
@pytest.mark.parametrize("chunk_size", [2, 5000], ids=["across-chunks", "same-chunk"])
def test_formula_quoted_duplicate_key_fails_every_copy(tmp_path, chunk_size, columnar):
    """Not a comparison: what both paths must do (the pipeline's docstring: every copy is an error)."""
    org = OrganizationFactory()
    path = _write_csv(tmp_path / "formulas.csv", [["Email", "Name"], ["'=q@example.com", "A"],
                                                  ["x@example.com", "X"], ["=q@example.com", "B"]])
    observed = _import(path, ENTITY_SPECS["people"], {"Email": "email", "Name": "name"}, org, columnar=columnar,
                       chunk_size=chunk_size)
    assert observed.raised is None, observed.raised
    assert [(e[0], e[4]) for e in observed.errors] == [(2, "duplicate"), (4, "duplicate")], observed.summary


NUL_LOOKUPS = {
    "people": ({"Email": "email", "Name": "name", "Manager": "manager", "External id": "external_id"},
               [["a@example.com", "A", "m\x00@example.com", ""], ["b@example.com", "B", "", "x\x00"]]),
    "time_entries": (ENTRY_MAPPING, [["a\x00@example.com", "A", "", "2026-03-02", "1", "", "", "E-1"],
                                     ["ada@example.com", "A\x00", "T-A\x00", "2026-03-02", "1", "", "", "E-2"]]),
}


@pytest.mark.parametrize("entity", list(NUL_LOOKUPS))
def test_nul_in_lookup_cells_alike_on_both_paths(tmp_path, entity):
    """A NUL in a reference or unique cell is a row error ("nul" or "unknown"), not a failed import: the
    lookups leave such texts out (PostgreSQL refuses them, and they can match nothing stored)."""
    orgs = two_orgs(seed_work if entity == "time_entries" else seed_people)
    mapping, rows = NUL_LOOKUPS[entity]
    path = _write(tmp_path, f"nul-{entity}", [list(mapping), *rows])
    compare(path, entity, mapping, orgs, f"NUL in {entity} lookups")


# --- columns of distinct texts, converted as whole columns -----------------------------------------------

UNIQUE_TEXT_FAULTS = {
    "over-long": ("N" * 201, "too_long"),
    "NUL": ("Nul\x00name", "nul"),
    "blank": ("  ", "required"),
}


@pytest.mark.parametrize("fault", list(UNIQUE_TEXT_FAULTS))
def test_one_bad_cell_in_a_column_of_distinct_texts_alike_on_both_paths(tmp_path, fault):
    """Emails and names differ on every row, so the columnar path converts them as whole columns; the one
    bad name is its row's only fault, and the row path must still be the one that finds and words it."""
    orgs = two_orgs(seed_people)
    name, code = UNIQUE_TEXT_FAULTS[fault]
    rows = [[f"p{i}@example.com", f"Person {i}"] for i in range(6)]
    rows[3][1] = name
    path = _write(tmp_path, f"distinct-{fault}", [["Email", "Name"], *rows])
    observed = compare(path, "people", {"Email": "email", "Name": "name"}, orgs, f"a {fault} name")
    row = 4 if path.suffix == ".json" else 5  # JSON numbers its records, CSV its lines (the header is line 1)
    assert [(e[0], e[2], e[4]) for e in observed.errors] == [(row, "name", code)]
    assert observed.summary["created"] == 5
