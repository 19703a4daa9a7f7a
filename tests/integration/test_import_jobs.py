"""Import jobs end to end on the real database, Redis and RQ workers (burst mode), with real files.

Upload refusals store nothing; validation is the run's pipeline as a dry run and counts the same way;
a second run of the same file is all "unchanged"; undo puts the data back or refuses and says why;
the error file holds the original rows plus what was wrong with them.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from flask import Flask
from sqlalchemy import func, select

from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.importers import template_headers
from app.models import (
    AuditEvent,
    BackgroundJob,
    ImportJob,
    ImportRowChange,
    ImportStatus,
    JobStatus,
    MappingPreset,
    Organization,
    Person,
    Role,
    User,
)
from app.services import import_jobs
from app.services.import_jobs import ImportFileRefused, UndoRefused
from tests.factories import OrganizationFactory, PersonFactory, TimeEntryFactory

HEADER = ["Email", "Name", "Department", "Hourly rate"]


def csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def admin(make_member) -> User:
    return make_member(Role.ADMIN)


@pytest.fixture
def org(admin: User) -> Organization:
    return admin.memberships[0].organization


@pytest.fixture
def upload(org: Organization, admin: User) -> Callable[..., ImportJob]:
    """Upload bytes as ``admin`` of ``org`` (reloaded by id: a burst worker detaches what the test held)."""
    org_id, user_id = org.id, admin.id

    def send(content: bytes, filename: str = "people.csv", entity: str = "people") -> ImportJob:
        return import_jobs.upload(db.session.get(Organization, org_id), db.session.get(User, user_id), entity,
                                  filename, io.BytesIO(content))

    return send


def stored_files(app: Flask) -> list[Path]:
    root = Path(app.config["INTERCHANGE_STORAGE"]) / "imports"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def import_count() -> int:
    return db.session.scalar(select(func.count()).select_from(ImportJob))


def refresh(job: ImportJob | int) -> ImportJob:
    """The job read again (the worker's ``session.remove()`` detaches what the test held)."""
    db.session.expire_all()
    return db.session.get(ImportJob, job if isinstance(job, int) else db.inspect(job).identity[0])


def people(org: Organization | int) -> dict[str, Person]:
    db.session.expire_all()
    org_id = org if isinstance(org, int) else db.inspect(org).identity[0]
    return {p.email: p for p in db.session.scalars(Person.for_org(org_id))}


# --------------------------------------------------------------------------------------------- upload


def test_upload_stores_file_and_reports_overview(app, upload):
    job = upload(csv_bytes([["Report of people"], [], HEADER, ["ada@example.com", "Ada", "R&D", "10"]]))

    assert job.status == ImportStatus.UPLOADED
    assert job.file_type == "csv"
    assert job.header_row == 3  # the title row and the blank row above the table are skipped
    assert import_jobs.file_path(job).read_bytes().startswith(b"Report of people")
    view = import_jobs.overview(job)
    assert view.headers == HEADER
    assert [(r.row, r.cells) for r in view.rows] == [(4, ["ada@example.com", "Ada", "R&D", "10"])]
    assert view.detected_header_row == 3


@pytest.mark.parametrize(("filename", "content", "message"), [
    ("people.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "'people.csv' is named like a CSV/TSV text file but its "
                                                       "content is a PNG image"),
    ("people.xlsx", b"email,name\nada@example.com,Ada\n", "named like an Excel workbook (.xlsx) but its content is "
                                                          "a CSV/TSV text file"),
    ("people.xml", b'<?xml version="1.0"?>\n<!DOCTYPE people [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
                   b"<people><person><email>&xxe;</email></person></people>", "DOCTYPE"),
    ("people.pdf", b"%PDF-1.4", "unsupported extension"),
    ("people.csv", b"", "the file is empty"),
])
def test_hostile_or_wrong_files_are_refused_and_nothing_is_stored(app, upload, filename, content, message):
    before = stored_files(app)

    with pytest.raises(ImportFileRefused) as refused:
        upload(content, filename)

    assert message in refused.value.errors["file"][0]
    assert import_count() == 0
    assert stored_files(app) == before


def test_decompression_bomb_is_refused(app, upload):
    before = stored_files(app)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", "0" * (50 * 1024 * 1024))

    with pytest.raises(ImportFileRefused) as refused:
        upload(bomb.getvalue(), "people.xlsx")

    assert "decompression bomb" in refused.value.message
    assert import_count() == 0 and stored_files(app) == before


def test_file_over_the_size_limit_is_refused_while_streaming(app, upload, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", 2 * 1024 * 1024)
    before = stored_files(app)

    with pytest.raises(ImportFileRefused) as refused:
        upload(csv_bytes([HEADER] + [["a@example.com", "A" * 100, "x", "1"]] * 30_000))

    assert refused.value.errors["file"] == ["the file is larger than the limit of 2 MB"]
    assert import_count() == 0 and stored_files(app) == before


def test_unknown_entity_is_refused(upload):
    with pytest.raises(ValidationFailed) as refused:
        upload(csv_bytes([HEADER]), entity="spaceships")
    assert "Unknown entity 'spaceships'" in refused.value.errors["entity"][0]


def test_another_organisations_import_is_not_found(upload):
    job = upload(csv_bytes([HEADER, ["ada@example.com", "Ada", "", ""]]))
    with pytest.raises(NotFound):
        import_jobs.get_import(OrganizationFactory(), job.id)
    assert import_jobs.get_import(db.session.get(Organization, job.organization_id), job.id) is job


# --------------------------------------------------------------------------------------------- mapping


def test_suggestion_says_why_and_flags_missing_required(upload):
    job = upload(csv_bytes([["E-mail address", "Dept", "Hourly ratee", "Shoe size"], ["a@example.com", "x", "1", "9"]]))

    suggestion = import_jobs.suggest_mapping(job)

    assert suggestion.mapping == {"E-mail address": "email", "Dept": "department", "Hourly ratee": "hourly_rate",
                                  "Shoe size": None}
    assert suggestion.reasons == {"E-mail address": "synonym", "Dept": "synonym", "Hourly ratee": "fuzzy",
                                  "Shoe size": None}
    assert suggestion.required_missing == ["name"]
    assert suggestion.matches_template is False
    with pytest.raises(ValidationFailed) as refused:
        import_jobs.save_mapping(job, suggestion.mapping)
    assert refused.value.errors["mapping"] == ["required fields not mapped to any column: name"]


def test_template_headers_skip_the_mapping_step(upload):
    headers = template_headers("people")
    job = upload(csv_bytes([headers]))

    suggestion = import_jobs.suggest_mapping(job)

    assert suggestion.matches_template is True
    assert all(reason == "exact" for reason in suggestion.reasons.values())


def test_saved_preset_is_suggested_for_a_similar_file(org, upload):
    first = upload(csv_bytes([["Mail", "Who", "Team"], ["a@example.com", "A", "x"]]))
    import_jobs.save_mapping(first, {"Mail": "email", "Who": "name", "Team": "title"}, preset_name="HR export")
    assert [p.name for p in import_jobs.presets(org, "people")] == ["HR export"]

    second = upload(csv_bytes([["team", "WHO", "mail"], ["b@example.com", "B", "y"]]))
    suggestion = import_jobs.suggest_mapping(second)

    assert suggestion.preset == "HR export"
    assert suggestion.mapping == {"team": "title", "WHO": "name", "mail": "email"}
    assert set(suggestion.reasons.values()) == {"preset"}
    assert db.session.scalar(select(func.count()).select_from(MappingPreset)) == 1


def test_layout_change_picks_another_header_row(upload):
    job = upload(csv_bytes([["Report"], HEADER, ["ada@example.com", "Ada", "R&D", "10"]]))
    assert job.header_row == 2

    view = import_jobs.set_layout(job, None, 3)

    assert view.header_row == 3 and view.detected_header_row == 2
    assert view.headers == ["ada@example.com", "Ada", "R&D", "10"]
    with pytest.raises(ValidationFailed) as refused:
        import_jobs.set_layout(job, None, 50)
    assert refused.value.errors["header_row"] == ["Row 50 cannot be the header row: row 50: the file has no header row"]
    assert refresh(job).header_row == 3
    with pytest.raises(ValidationFailed) as refused:
        import_jobs.set_layout(job, None, 0)
    assert refused.value.errors["header_row"] == ["The header row is a row number from 1 to 1000."]


# --------------------------------------------------------------------------------------------- validate and run

FILE = [
    HEADER,
    ["same@example.com", "Same Person", "Ops", "50"],        # unchanged
    ["changed@example.com", "Changed Person", "Sales", "60"],  # updated (department was Ops)
    ["new1@example.com", "New One", "R&D", "70"],            # created
    ["new2@example.com", "New Two", "R&D", "abc"],           # failed: rate is not a number
    ["twice@example.com", "Twice A", "R&D", "1"],            # failed: duplicate in the file
    ["twice@example.com", "Twice B", "R&D", "2"],            # failed: duplicate in the file
    ["new3@example.com", "New Three", "", ""],               # created
]


@pytest.fixture
def existing(org: Organization) -> dict[str, Person]:
    return {
        "same": PersonFactory(organization=org, email="same@example.com", name="Same Person", department="Ops",
                              hourly_rate=Decimal("50")),
        "changed": PersonFactory(organization=org, email="changed@example.com", name="Changed Person",
                                 department="Ops", hourly_rate=Decimal("60")),
    }


def validated(job: ImportJob, rq_burst) -> ImportJob:
    import_jobs.start_validation(job)
    assert refresh(job).status == ImportStatus.VALIDATING
    rq_burst()
    return refresh(job)


def ran(job: ImportJob, rq_burst, mode: str = "upsert", on_error: str = "skip") -> ImportJob:
    import_jobs.start_run(job, mode, on_error)
    rq_burst()
    return refresh(job)


def test_validation_counts_and_errors_without_writing(org, existing, upload, rq_burst):
    job = validated(upload(csv_bytes(FILE)), rq_burst)

    assert job.status == ImportStatus.VALIDATED
    assert job.validated_counts == {"total": 7, "created": 2, "updated": 1, "unchanged": 1, "failed": 3}
    errors = [e.as_dict() for e in import_jobs.first_errors(job)]
    assert [(e["row"], e["column"], e["value"]) for e in errors] == [
        (5, "Hourly rate", "abc"), (6, "Email", "twice@example.com"), (7, "Email", "twice@example.com"),
    ]
    assert "is not a number such as 12.5" in errors[0]["message"]
    assert "appears more than once in the file (rows 6, 7)" in errors[1]["message"]
    assert set(people(org)) == {"same@example.com", "changed@example.com"}  # a dry run writes nothing
    assert import_jobs.progress(job)["counts"] == {"created": 2, "updated": 1, "unchanged": 1, "failed": 3}
    assert db.session.get(BackgroundJob, job.background_job_id).status == JobStatus.COMPLETED


def test_run_counts_match_validation_and_second_run_is_all_unchanged(org, existing, upload, rq_burst):
    job = ran(validated(upload(csv_bytes(FILE)), rq_burst), rq_burst)

    assert job.status == ImportStatus.COMPLETED
    assert job.counts == {"created": 2, "updated": 1, "unchanged": 1, "failed": 3}
    assert job.total_rows == job.rows_done == 7
    stored = people(org)
    assert set(stored) == {"same@example.com", "changed@example.com", "new1@example.com", "new3@example.com"}
    assert stored["changed@example.com"].department == "Sales"
    assert stored["changed@example.com"].version == 2
    state = import_jobs.progress(job)
    assert (state["status"], state["rows_done"], state["total"], state["percent"]) == ("completed", 7, 7, 100.0)
    changes = db.session.scalars(select(ImportRowChange).where(ImportRowChange.import_job_id == job.id)).all()
    assert sorted(c.action for c in changes) == ["created", "created", "updated"]
    assert [c.previous["department"] for c in changes if c.action == "updated"] == ["Ops"]
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "import.completed")) == 1

    again = ran(upload(csv_bytes(FILE)), rq_burst)

    assert again.counts == {"created": 0, "updated": 0, "unchanged": 4, "failed": 3}
    assert people(org)["changed@example.com"].version == 2


def test_abort_mode_writes_nothing_when_a_row_fails(org, existing, upload, rq_burst):
    job = ran(upload(csv_bytes(FILE)), rq_burst, on_error="abort")

    assert job.status == ImportStatus.FAILED
    assert job.counts["created"] == 0 and job.counts["updated"] == 0 and job.counts["failed"] == 3
    assert "Nothing was imported: 3 row(s) failed" in job.error_message
    assert set(people(org)) == {"same@example.com", "changed@example.com"}
    assert [e.row for e in import_jobs.first_errors(job)] == [5, 6, 7]


def test_create_only_mode_reports_existing_keys(org, existing, upload, rq_burst):
    job = ran(upload(csv_bytes(FILE[:4])), rq_burst, mode="create")

    assert job.counts == {"created": 1, "updated": 0, "unchanged": 0, "failed": 2}
    assert "create mode only adds new records" in import_jobs.first_errors(job)[0].message


def test_cancel_before_a_worker_claims_it(org, upload, rq_burst):
    job = upload(csv_bytes(FILE))
    import_jobs.start_run(job)

    import_jobs.cancel(job)
    rq_burst()

    job = refresh(job)
    assert job.status == ImportStatus.CANCELLED
    assert db.session.get(BackgroundJob, job.background_job_id).status == JobStatus.CANCELLED
    assert people(org) == {}
    with pytest.raises(Conflict):
        import_jobs.cancel(job)


def test_cancel_signal_stops_a_claimed_run_between_chunks(app, org, upload, rq_burst, monkeypatch):
    """A worker that has claimed the job sees the signal after its first chunk; that chunk stays."""
    monkeypatch.setitem(app.config, "IMPORT_CHUNK_SIZE", 2)
    job = upload(csv_bytes([HEADER] + [[f"p{i}@example.com", f"P {i}", "", ""] for i in range(10)]))
    import_jobs.start_run(job)
    background = db.session.get(BackgroundJob, job.background_job_id)
    background.status = JobStatus.RUNNING.value  # as if a worker had claimed it: cancel must signal, not stop it
    db.session.commit()

    import_jobs.cancel(job)
    background.status = JobStatus.QUEUED.value
    db.session.commit()
    rq_burst()

    job = refresh(job)
    assert job.status == ImportStatus.CANCELLED
    assert job.counts["created"] == 2 == len(people(org))
    assert "undo removes them" in job.error_message


# --------------------------------------------------------------------------------------------- undo


def test_undo_deletes_created_and_restores_updated(org, existing, upload, rq_burst):
    job = ran(upload(csv_bytes(FILE)), rq_burst)
    import_jobs.undo(job)
    assert refresh(job).status == ImportStatus.UNDOING
    rq_burst()

    job = refresh(job)
    assert job.status == ImportStatus.UNDONE
    stored = people(org)
    assert set(stored) == {"same@example.com", "changed@example.com"}
    assert stored["changed@example.com"].department == "Ops"
    assert stored["changed@example.com"].hourly_rate == Decimal("60")
    assert stored["changed@example.com"].version == 3  # undo is a change like any other
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "import.undone")) == 1
    with pytest.raises(Conflict):
        import_jobs.undo(job)


def test_undo_refuses_when_a_record_changed_since_and_says_which(org, existing, upload, rq_burst):
    job = ran(upload(csv_bytes(FILE)), rq_burst)
    edited = people(org)["new1@example.com"]
    edited.title = "Edited after the import"
    db.session.commit()

    with pytest.raises(UndoRefused) as refused:
        import_jobs.undo(job)

    assert refused.value.rows == [f"person 'new1@example.com' (id {edited.id}) was changed since (version 2; "
                                  "the import left version 1)"]
    assert "Undo refused: 1 record(s)" in refused.value.message
    assert refresh(job).status == ImportStatus.COMPLETED
    assert "new1@example.com" in people(org)


# --------------------------------------------------------------------------------------------- error file


def test_error_file_csv_and_xlsx_hold_the_failed_rows_and_why(existing, upload, rq_burst):
    job = validated(upload(csv_bytes(FILE + [["=cmd|' /C calc'!A0", "Evil", "", ""]])), rq_burst)

    with import_jobs.error_file(job, "csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [*HEADER, "errors"]
    assert [r[:4] for r in rows[1:]] == [FILE[4], FILE[5], FILE[6], ["'=cmd|' /C calc'!A0", "Evil", "", ""]]
    assert rows[1][4] == "Hourly rate: 'abc' is not a number such as 12.5 or 12,5."
    assert "email" in rows[4][4].lower()

    book = openpyxl.load_workbook(import_jobs.error_file(job, "xlsx"), read_only=True)
    sheet_rows = [[c if c is not None else "" for c in row] for row in book.active.iter_rows(values_only=True)]
    assert sheet_rows == rows
    with pytest.raises(ValidationFailed):
        import_jobs.error_file(job, "pdf")


def test_error_file_neutralises_formulas_in_headers_and_messages(upload, rq_burst):
    """A header a spreadsheet would run (it also starts every message about that column) stays text."""
    job = upload(csv_bytes([["=HYPERLINK(\"http://evil/\",\"x\")", "name"], ["not-an-email", "Ada"]]))
    import_jobs.save_mapping(job, {"=HYPERLINK(\"http://evil/\",\"x\")": "email", "name": "name"})
    job = validated(job, rq_burst)

    with import_jobs.error_file(job, "csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "'=HYPERLINK(\"http://evil/\",\"x\")"
    assert rows[1][2].startswith("'=HYPERLINK(")
    book = openpyxl.load_workbook(import_jobs.error_file(job, "xlsx"))
    cells = [cell for row in book.active.iter_rows() for cell in row]
    assert all(cell.data_type != "f" for cell in cells)
    assert cells[0].value.startswith("'=HYPERLINK(")


def test_error_file_without_errors_has_the_header_only(upload):
    job = upload(csv_bytes([HEADER, ["ada@example.com", "Ada", "", ""]]))
    with import_jobs.error_file(job, "csv").open(encoding="utf-8-sig") as handle:
        assert handle.read().splitlines() == [",".join([*HEADER, "errors"])]


def test_history_lists_the_organisations_imports_newest_first(org, upload):
    first, second = upload(csv_bytes([HEADER])), upload(csv_bytes([HEADER]))
    other = OrganizationFactory()
    import_jobs.upload(other, None, "people", "x.csv", io.BytesIO(csv_bytes([HEADER])))

    page = import_jobs.history(org)

    assert [job.id for job in page.items] == [second.id, first.id]


def test_undo_in_the_worker_refuses_when_other_data_uses_created_records(org, upload, rq_burst):
    """Deleting a created person would cascade to time entries made since: the worker refuses, nothing changes."""
    org_id = org.id
    job_id = ran(upload(csv_bytes([HEADER, ["new@example.com", "New", "", ""]])), rq_burst).id
    person = people(org_id)["new@example.com"]
    TimeEntryFactory(organization=db.session.get(Organization, org_id), person=person)
    import_jobs.undo(refresh(job_id))  # versions are unchanged, so the quick check lets it through

    rq_burst()

    job = refresh(job_id)
    assert job.status == ImportStatus.COMPLETED
    assert job.error_message == ("Undo refused: deleting the records this import created would also delete or "
                                 "unlink other data: 1 time entries row(s) refer to records this import created "
                                 "(through person_id).")
    assert "new@example.com" in people(org_id)
    assert db.session.get(BackgroundJob, job.background_job_id).status == JobStatus.FAILED
