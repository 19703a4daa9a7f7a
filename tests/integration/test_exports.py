"""Exports end to end: the service starts a job, a real RQ worker writes the file, the file is parsed back."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from openpyxl import load_workbook

from app.errors import ValidationFailed
from app.extensions import db
from app.models import BackgroundJob, ExportJob, JobStatus
from app.services import exports
from app.services.audit import Actor
from app.services.entities import ENTITIES
from app.services.imports import run_import_file
from tests.factories import (
    AssignmentFactory,
    ClientFactory,
    CommentFactory,
    OrganizationFactory,
    PersonFactory,
    ProjectFactory,
    TaskFactory,
    TimeEntryFactory,
    UserFactory,
)

FORMULA = "=HYPERLINK(\"http://evil.example\",\"x\")"


@pytest.fixture
def org():
    return OrganizationFactory(slug="acme", name="Acme")


@pytest.fixture
def actor():
    return Actor(user=UserFactory(email="exporter@example.com"))


@pytest.fixture
def world(org):
    """One record of every entity (two people), with values that test the writers' edges."""
    boss = PersonFactory(organization=org, email="boss@example.com", name="Boss", department="Board",
                         external_id="p-1", hourly_rate=Decimal("120.50"), skills=["leading", "sql"])
    ada = PersonFactory(organization=org, email="ada@example.com", name=FORMULA, department="Engineering",
                        external_id="p-2", manager_id=boss.id, weekly_capacity=Decimal("37.5"), active=False,
                        title="-leads +things @home")
    client = ClientFactory(organization=org, name="Acme Client", phone="+44 20 7946 0000", external_id="c-1",
                           notes="multi\nline, \"quoted\" <tag> & 'apostrophe'")
    project = ProjectFactory(organization=org, code="PRJ-1", name="Bridge", client_id=client.id,
                             start_date=date(2026, 1, 5), end_date=date(2026, 6, 30), budget=Decimal("1234567.89"),
                             external_id="pr-1")
    task = TaskFactory(organization=org, project_id=project.id, title="Design", assignee_id=ada.id,
                       estimate_hours=Decimal("12.25"), due_date=date(2026, 2, 1), external_id="t-1")
    AssignmentFactory(organization=org, person_id=ada.id, project_id=project.id, task_id=task.id,
                      external_id="a-1")
    TimeEntryFactory(organization=org, person_id=ada.id, project_id=project.id, task_id=task.id, note="@SUM(A1)",
                     external_id="te-1")
    TimeEntryFactory(organization=org, person_id=boss.id, project_id=project.id, billable=False,
                     spent_on=date(2026, 3, 4), external_id="te-2")
    CommentFactory(organization=org, task_id=task.id, author_id=ada.id, body="+1 from me", external_id="co-1")
    return {"boss": boss, "ada": ada, "project": project}


def run_export(org, actor, rq_burst, entity="people", fmt="csv", **kwargs) -> tuple[ExportJob, Path]:
    export_id = exports.start_export(org, actor, entity, fmt, **kwargs).id
    rq_burst()
    # The worker ran in this process and removed the session: bring the test's objects back.
    for obj in (org, actor.user):
        db.session.add(obj)
    export = db.session.get(ExportJob, export_id)
    assert export.status == JobStatus.COMPLETED.value, export.error
    return export, exports.download(org, actor, export.id).path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_export_csv_writes_rows_and_neutralises_formulas(org, actor, world, rq_burst):
    export, path = run_export(org, actor, rq_burst)

    rows = read_csv(path)
    assert [r["email"] for r in rows] == ["boss@example.com", "ada@example.com"]
    ada = rows[1]
    assert ada["name"] == "'" + FORMULA
    assert ada["title"] == "'-leads +things @home"
    assert ada["manager"] == "boss@example.com"
    assert ada["weekly_capacity"] == "37.50"
    assert ada["active"] == "false"
    assert rows[0]["skills"] == "leading, sql"
    assert rows[0]["hourly_rate"] == "120.50"
    assert export.row_count == 2 and export.file_size == path.stat().st_size


def test_export_job_reports_progress_on_its_background_job(org, actor, world, rq_burst):
    export, _ = run_export(org, actor, rq_burst)

    job = db.session.get(BackgroundJob, export.background_job_id)
    assert (job.kind, job.queue, job.status) == ("export", "exports", JobStatus.COMPLETED.value)
    assert (job.progress_done, job.progress_total) == (2, 2)
    assert job.result == {"rows": 2, "bytes": export.file_size}
    assert exports.serialize_export(export)["processed"] == 2


def test_export_xlsx_has_data_and_metadata_sheets(org, actor, world, rq_burst):
    _, path = run_export(org, actor, rq_burst, fmt="xlsx")

    book = load_workbook(path, read_only=True)
    assert book.sheetnames == ["people", "Metadata"]
    rows = list(book["people"].iter_rows(values_only=True))
    header = rows[0]
    ada = dict(zip(header, rows[2], strict=True))
    assert ada["name"] == "'" + FORMULA  # text, not a formula
    assert ada["weekly_capacity"] == 37.5  # a number cell
    assert ada["active"] is False
    meta = {k: v for k, v in book["Metadata"].iter_rows(values_only=True)}
    assert meta["entity"] == "people"
    assert meta["organization"] == "acme"
    assert meta["exported_by"] == "exporter@example.com"
    assert meta["row_count"] == 2
    assert meta["schema_version"] == "1"
    assert json.loads(meta["filters"]) == {}
    book.close()


def test_export_json_envelope_holds_metadata_and_typed_rows(org, actor, world, rq_burst):
    _, path = run_export(org, actor, rq_burst, entity="time_entries", fmt="json", filters={"billable": "1"})

    document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    assert list(document) == ["metadata", "time_entries"]
    assert document["metadata"]["row_count"] == 1
    assert document["metadata"]["filters"] == {"billable": "1"}
    assert document["metadata"]["entity"] == "time_entries"
    [entry] = document["time_entries"]
    assert entry["person"] == "ada@example.com" and entry["task"] == "t-1" and entry["project"] == "PRJ-1"
    assert entry["hours"] == Decimal("7.50") and entry["billable"] is True and entry["spent_on"] == "2026-02-03"
    assert entry["note"] == "@SUM(A1)"  # JSON is not a spreadsheet: values as stored


def test_export_xml_root_attributes_carry_metadata(org, actor, world, rq_burst):
    _, path = run_export(org, actor, rq_burst, entity="clients", fmt="xml")

    root = etree.parse(str(path)).getroot()
    assert root.tag == "clients"
    assert root.get("entity") == "clients" and root.get("row_count") == "1"
    assert root.get("organization") == "acme" and root.get("schema_version") == "1"
    [client] = root
    assert client.tag == "client"
    assert client.findtext("notes") == "multi\nline, \"quoted\" <tag> & 'apostrophe'"
    assert client.findtext("phone") == "+44 20 7946 0000"
    assert client.find("website").text is None


def test_export_filters_and_columns_are_honoured(org, actor, world, rq_burst):
    _, path = run_export(org, actor, rq_burst, filters={"department": "Engineering", "active": "0"},
                         columns=["name", "email"])

    rows = read_csv(path)
    assert rows == [{"email": "ada@example.com", "name": "'" + FORMULA}]  # columns in template order


def test_export_search_filter_is_the_list_pages(org, actor, world, rq_burst):
    _, path = run_export(org, actor, rq_burst, filters={"q": "boss"})

    assert [r["email"] for r in read_csv(path)] == ["boss@example.com"]


def test_export_never_includes_another_organisations_rows(org, actor, world, rq_burst):
    PersonFactory(organization=OrganizationFactory(), email="stranger@example.com")

    _, path = run_export(org, actor, rq_burst)

    assert "stranger" not in path.read_text(encoding="utf-8-sig")


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "xml"])
def test_export_of_every_entity_reimports_unchanged(org, actor, world, rq_burst, fmt):
    for entity in ENTITIES:
        export, path = run_export(org, actor, rq_burst, entity=entity, fmt=fmt)

        summary = run_import_file(org, actor, path, path.name, entity)

        assert summary.failed == 0, (entity, [e.as_dict() for e in summary.errors])
        assert (summary.created, summary.updated, summary.unchanged) == (0, 0, export.row_count), entity
        assert export.row_count > 0


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"entity": "planets"}, "entity", "Unknown entity 'planets'; choose one of people, clients"),
        ({"fmt": "pdf"}, "format", "Unknown format 'pdf'; choose one of xlsx, csv, json, xml."),
        ({"columns": ["email", "salary"]}, "columns", "people has no column 'salary'; its columns are email, name"),
        ({"filters": {"colour": "red"}}, "filters", "people has no filter 'colour'; its filters are q, department"),
        ({"filters": {"active": "maybe"}}, "filters", "filter 'active': 'maybe' is not yes or no"),
        ({"entity": "time_entries", "filters": {"from": "03/12/2026"}}, "filters",
         "filter 'from': '03/12/2026' is not a date as YYYY-MM-DD"),
        ({"entity": "projects", "filters": {"status": "lost"}}, "filters", "filter 'status': 'lost' is not one of"),
        ({"filters": {"manager": "abc"}}, "filters", "filter 'manager': 'abc' is not a record id"),
    ],
)
def test_export_bad_request_names_the_problem_and_stores_nothing(org, actor, kwargs, field, message):
    args = {"entity": "people", "fmt": "csv"} | kwargs

    with pytest.raises(ValidationFailed) as caught:
        exports.start_export(org, actor, args.pop("entity"), args.pop("fmt"), **args)

    assert field in caught.value.errors
    assert message in caught.value.errors[field][0]
    assert db.session.query(ExportJob).count() == 0
    assert db.session.query(BackgroundJob).count() == 0


def test_export_of_another_organisation_is_not_found(org, actor, world, rq_burst):
    export, _ = run_export(org, actor, rq_burst)

    with pytest.raises(exports.NotFound):
        exports.download(OrganizationFactory(), actor, export.id)


def test_export_expired_file_says_so(org, actor, world, rq_burst):
    export, path = run_export(org, actor, rq_burst)
    export.created_at -= timedelta(days=exports.RETENTION_DAYS + 1)
    db.session.commit()

    assert exports.purge_expired(org) == 1

    assert not path.exists()
    with pytest.raises(exports.ExportGone, match="no longer available"):
        exports.download(org, actor, export.id)
    assert db.session.get(ExportJob, export.id).expired_at is not None


def test_export_xlsx_over_a_sheets_rows_is_refused_with_the_reason():
    assert exports.row_limit_problem("xlsx", 1_048_575) is None
    assert exports.row_limit_problem("csv", 5_000_000) is None
    assert "at most 1,048,575 rows of data and this export has 1,048,576; export to CSV" in (
        exports.row_limit_problem("xlsx", 1_048_576))


def test_export_that_cannot_write_its_file_is_errored_with_a_reference(app, org, actor, world, rq_burst):
    blocker = Path(app.config["INTERCHANGE_STORAGE"]) / "exports" / str(org.id)
    shutil.rmtree(blocker, ignore_errors=True)  # an earlier test's files (ids repeat between tests)
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the organisation's export folder should be")
    try:
        export_id = exports.start_export(org, actor, "people", "csv").id
        rq_burst()
    finally:
        blocker.unlink()

    export = db.session.get(ExportJob, export_id)
    assert export.status == JobStatus.ERRORED.value
    assert export.error == f"The export stopped on an internal error (reference export-{export_id})."
    assert db.session.get(BackgroundJob, export.background_job_id).status == JobStatus.ERRORED.value
