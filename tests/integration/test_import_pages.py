"""The import wizard's pages through the Flask test client: every step, refusals shown inline, CSRF, roles, tenancy.

Background work (validation, the run, undo) runs on a real RQ worker in burst mode (``rq_burst``); files are real
bytes posted as multipart uploads.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import pytest
from flask import g
from sqlalchemy import func, select

from app.extensions import db
from app.importers.specs import ENTITY_SPECS
from app.models import ImportJob, MappingPreset, Person, Role
from tests.factories import PersonFactory

# Headers that are not the template's ("E-mail", "Full name"), plus one column nobody maps.
PEOPLE_CSV = (
    "E-mail,Full name,Dept,Favourite colour\n"
    "ada@example.com,Ada Lovelace,Engineering,green\n"
    "grace@example.com,Grace Hopper,Navy,blue\n"
    "not-an-email,Broken Row,Nowhere,red\n"
)
MAPPING = {"map-0": "email", "map-1": "name", "map-2": "department", "map-3": ""}


def upload(client, content: str | bytes, filename: str = "staff.csv", entity: str = "people", json: bool = False):
    body = content.encode() if isinstance(content, str) else content
    headers = {"Accept": "application/json"} if json else {}
    return client.post(f"/imports/new?entity={entity}", data={"file": (io.BytesIO(body), filename)},
                       content_type="multipart/form-data", headers=headers)


def job_id_from(response) -> int:
    return int(re.search(r"/imports/(\d+)/", response.headers["Location"]).group(1))


def job_row(job_id: int) -> ImportJob:
    db.session.expire_all()
    return db.session.get(ImportJob, job_id)


def people_count(org_id: int) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(Person.id)).where(Person.organization_id == org_id))


@dataclass(frozen=True)
class Member:
    """Who is signed in, as plain values: background work ends the session the User row came from."""

    id: int
    email: str
    org_id: int


@pytest.fixture
def editor(make_member, login_as) -> Member:
    user = login_as(make_member(Role.EDITOR))
    return Member(user.id, user.email, user.memberships[0].organization_id)


@pytest.fixture
def org_id(editor: Member) -> int:
    return editor.org_id


@pytest.fixture
def work(rq_burst):
    """Run the queued background work; the job runner ends the session, so the client reloads its user."""

    def run() -> None:
        rq_burst()
        g.pop("_login_user", None)

    return run


@pytest.fixture
def validated(client, editor, work) -> int:
    """An upload of PEOPLE_CSV, laid out, mapped and validated; returns the import id."""
    job_id = job_id_from(upload(client, PEOPLE_CSV))
    assert client.post(f"/imports/{job_id}/layout", data={"header_row": "1"}).status_code == 302
    assert client.post(f"/imports/{job_id}/mapping", data=MAPPING).status_code == 302
    work()
    return job_id


@pytest.fixture
def imported(client, validated, work) -> int:
    response = client.post(f"/imports/{validated}/run", data={"mode": "upsert", "on_error": "skip"})
    assert response.status_code == 302
    work()
    return validated


# --- steps 1 and 2 --------------------------------------------------------------------------------------------------

def test_import_choose_page_offers_every_entity_with_its_upload_step(client, editor):
    html = client.get("/imports/new").get_data(as_text=True)
    for entity in ("people", "clients", "projects", "tasks", "assignments", "time_entries", "comments"):
        assert f'href="/imports/new?entity={entity}"' in html
    assert "Matched on <strong>email</strong>" in html


def test_import_upload_page_states_the_size_limit_and_has_a_drop_zone(app, client, editor):
    html = client.get("/imports/new?entity=people").get_data(as_text=True)
    limit_mb = app.config["IMPORT_MAX_BYTES"] // 1048576
    assert f"up to {limit_mb} MB" in html
    assert f'data-max-bytes="{app.config["IMPORT_MAX_BYTES"]}"' in html
    assert 'data-testid="drop-zone"' in html and 'type="file"' in html
    assert "js/import_wizard.js" in html


def test_import_upload_stores_the_file_and_goes_to_the_layout_step(client, editor, org_id):
    response = upload(client, PEOPLE_CSV)
    assert response.status_code == 302
    job = job_row(job_id_from(response))
    assert (job.organization_id, job.entity, job.original_filename, job.status) == (
        org_id, "people", "staff.csv", "uploaded")
    assert response.headers["Location"].endswith(f"/imports/{job.id}/layout")


def test_import_upload_by_script_answers_json_with_the_next_step(client, editor):
    response = upload(client, PEOPLE_CSV, json=True)
    assert response.status_code == 201
    body = response.get_json()
    assert body["next"] == f"/imports/{body['id']}/layout"


@pytest.mark.parametrize("content,filename", [
    (b"", "empty.csv"),
    (b"PK\x03\x04 this is no spreadsheet", "fake.xlsx"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "picture.csv"),
])
def test_import_upload_refuses_bad_files_inline_and_stores_nothing(client, editor, content, filename):
    response = upload(client, content, filename)
    assert response.status_code == 422
    shown = re.search(r'class="alert alert-danger "[^>]*data-testid="upload-errors">\s*<div>([^<]{10,})</div>',
                      response.get_data(as_text=True))
    assert shown is not None
    json_response = upload(client, content, filename, json=True)
    assert json_response.status_code == 422
    messages = json_response.get_json()["errors"]
    assert messages and all(len(m) > 10 for m in messages)
    assert db.session.scalar(select(func.count(ImportJob.id))) == 0


def test_import_upload_without_a_file_or_an_entity_says_so(client, editor):
    no_file = client.post("/imports/new?entity=people", data={}, headers={"Accept": "application/json"})
    assert (no_file.status_code, no_file.get_json()) == (422, {"errors": ["Choose a file to upload."]})
    no_entity = upload(client, PEOPLE_CSV, entity="spaceships")
    assert no_entity.status_code == 422
    assert "Choose what to import: one of people, clients" in no_entity.get_data(as_text=True)


def test_import_upload_over_the_size_limit_is_refused_with_the_limit(app, client, editor, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", 1024)
    response = upload(client, "email,name\n" + "a@example.com,A\n" * 200, json=True)
    assert response.status_code == 422
    assert any("1 KB" in m or "1024" in m or "limit" in m for m in response.get_json()["errors"]), response.get_json()
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    assert upload(client, "email,name\n" + "a@example.com,A\n" * 200, json=True).status_code == 413
    assert db.session.scalar(select(func.count(ImportJob.id))) == 0


# --- step 3: layout -------------------------------------------------------------------------------------------------

def test_import_layout_previews_the_first_rows_with_the_detected_header(client, editor):
    title_on_top = "Staff list 2026,,\n,,\nE-mail,Full name,Dept\nada@example.com,Ada Lovelace,Engineering\n"
    job_id = job_id_from(upload(client, title_on_top))
    html = client.get(f"/imports/{job_id}/layout").get_data(as_text=True)
    assert re.search(r'id="header_row"[^>]*value="3"', html) or re.search(r'value="3"[^>]*id="header_row"', html)
    assert "Column names on row <strong>3</strong> (detected)" in html
    preview = re.search(r'data-testid="preview">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r'<th scope="col">([^<]*)</th>', preview) == ["E-mail", "Full name", "Dept"]
    assert re.search(r'<th scope="row" class="text-muted">4</th>\s*<td>ada@example.com</td>\s*<td>Ada Lovelace</td>',
                     preview)
    assert "Staff list 2026" not in preview


def test_import_layout_refuses_a_header_row_outside_the_range(client, editor):
    job_id = job_id_from(upload(client, PEOPLE_CSV))
    response = client.post(f"/imports/{job_id}/layout", data={"header_row": "0"})
    assert response.status_code == 422
    assert "Number must be between 1 and 1000" in response.get_data(as_text=True)


def test_import_layout_goes_to_mapping_for_headers_unlike_the_template(client, editor):
    job_id = job_id_from(upload(client, PEOPLE_CSV))
    response = client.post(f"/imports/{job_id}/layout", data={"header_row": "1"})
    assert response.headers["Location"].endswith(f"/imports/{job_id}/mapping")


def test_import_template_headers_skip_the_mapping_step(client, editor, work):
    fields = [f.name for f in ENTITY_SPECS["people"].fields]
    row = {"email": "ada@example.com", "name": "Ada", "active": "yes"}
    template_file = ",".join(fields) + "\n" + ",".join(row.get(name, "") for name in fields) + "\n"
    job_id = job_id_from(upload(client, template_file))
    response = client.post(f"/imports/{job_id}/layout", data={"header_row": "1"})
    assert response.headers["Location"].endswith(f"/imports/{job_id}/review")
    assert job_row(job_id).mapping == {name: name for name in fields}
    work()
    html = client.get(f"/imports/{job_id}/review").get_data(as_text=True)
    assert "The columns match the import template" in html
    assert 'data-testid="count-created">1<' in html


def test_import_layout_offers_the_sheets_of_a_workbook_and_switches_sheet(client, editor):
    from openpyxl import Workbook

    book = Workbook()
    notes = book.active
    notes.title = "Notes"
    notes.append(["Read me first"])
    staff = book.create_sheet("Staff")
    staff.append(["Exported 2026-11-01"])
    staff.append([])
    staff.append(["E-mail", "Full name"])
    staff.append(["ada@example.com", "Ada Lovelace"])
    content = io.BytesIO()
    book.save(content)
    job_id = job_id_from(upload(client, content.getvalue(), filename="staff.xlsx"))

    html = client.get(f"/imports/{job_id}/layout").get_data(as_text=True)
    assert re.findall(r'<option[^>]*value="([^"]+)"', html) == ["Notes", "Staff"]
    response = client.post(f"/imports/{job_id}/layout", data={"sheet": "Staff", "header_row": "3"})
    assert response.headers["Location"].endswith(f"/imports/{job_id}/mapping")
    job = job_row(job_id)
    assert (job.sheet, job.header_row) == ("Staff", 3)
    html = client.get(f"/imports/{job_id}/layout").get_data(as_text=True)
    preview = re.search(r'data-testid="preview">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r'<th scope="col">([^<]*)</th>', preview) == ["E-mail", "Full name"]
    assert "Ada Lovelace" in preview
    refused = client.post(f"/imports/{job_id}/layout", data={"sheet": "Payroll", "header_row": "1"})
    assert refused.status_code == 422 and "Not a valid choice" in refused.get_data(as_text=True)


def test_import_layout_of_a_json_file_has_no_header_row_to_choose(client, editor):
    records = '[{"Mail": "ada@example.com", "Name": "Ada"}, {"Mail": "grace@example.com", "Name": "Grace"}]'
    job_id = job_id_from(upload(client, records, filename="people.json"))
    html = client.get(f"/imports/{job_id}/layout").get_data(as_text=True)
    assert 'id="header_row"' not in html
    assert "JSON file, 2 columns." in html and "grace@example.com" in html
    response = client.post(f"/imports/{job_id}/layout", data={})
    assert response.headers["Location"].endswith(f"/imports/{job_id}/mapping")


# --- step 4: mapping ------------------------------------------------------------------------------------------------

def test_import_mapping_prefills_suggestions_with_reasons_and_shows_ignored_columns(client, editor):
    job_id = job_id_from(upload(client, PEOPLE_CSV))
    html = client.get(f"/imports/{job_id}/mapping").get_data(as_text=True)
    selected = dict(re.findall(r'id="map-(\d)".*?<option value="([a-z_]*)" selected', html, re.S))
    assert selected == {"0": "email", "1": "name", "2": "department", "3": ""}
    reason_of = dict(re.findall(r'data-testid="reason-(\d)">\s*(.*?)\s*</td>', html, re.S))
    assert "ignored" in reason_of["3"]
    assert reason_of["1"] and reason_of["2"]
    assert "email (required)" in html and "name (required)" in html


def test_import_mapping_without_a_required_field_is_refused_with_its_name(client, editor):
    job_id = job_id_from(upload(client, PEOPLE_CSV))
    response = client.post(f"/imports/{job_id}/mapping", data={**MAPPING, "map-0": ""})
    assert response.status_code == 422
    assert "required fields not mapped to any column: email" in response.get_data(as_text=True)
    assert job_row(job_id).status == "uploaded"


def test_import_mapping_saved_as_a_preset_is_offered_and_applied_next_time(client, editor, org_id):
    first = job_id_from(upload(client, PEOPLE_CSV))
    mapping = {**MAPPING, "map-2": ""}
    client.post(f"/imports/{first}/mapping", data={**mapping, "preset_name": "HR export"})
    preset = db.session.scalars(select(MappingPreset).where(MappingPreset.organization_id == org_id)).one()
    assert (preset.name, preset.entity) == ("HR export", "people")
    second = job_id_from(upload(client, PEOPLE_CSV, filename="again.csv"))
    html = client.get(f"/imports/{second}/mapping?preset={preset.id}").get_data(as_text=True)
    assert "Mapping “HR export” applied" in html
    selected = dict(re.findall(r'id="map-(\d)".*?<option value="([a-z_]*)" selected', html, re.S))
    assert selected == {"0": "email", "1": "name", "2": "", "3": ""}


# --- step 5: review -------------------------------------------------------------------------------------------------

def test_import_review_shows_counts_first_errors_and_the_run_choices(client, validated):
    html = client.get(f"/imports/{validated}/review").get_data(as_text=True)
    assert 'data-testid="count-created">2<' in html
    assert 'data-testid="count-failed">1<' in html
    errors = re.search(r'data-testid="row-errors">(.*?)</table>', html, re.S).group(1)
    assert "<td>4</td>" in errors and "E-mail" in errors and "not-an-email" in errors
    assert f'href="/imports/{validated}/errors.csv"' in html and f'href="/imports/{validated}/errors.xlsx"' in html
    for value in ("upsert", "create", "update", "skip", "abort"):
        assert f'value="{value}"' in html


def test_import_review_while_validating_polls_the_status_url(client, editor):
    job_id = job_id_from(upload(client, PEOPLE_CSV))
    client.post(f"/imports/{job_id}/layout", data={"header_row": "1"})
    client.post(f"/imports/{job_id}/mapping", data=MAPPING)
    html = client.get(f"/imports/{job_id}/review").get_data(as_text=True)
    assert f'data-poll-url="/imports/{job_id}/status"' in html
    assert client.get(f"/imports/{job_id}/status").get_json()["status"] == "validating"


def test_import_error_file_holds_the_original_rows_and_their_errors(client, validated):
    response = client.get(f"/imports/{validated}/errors.csv")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:4] == ["E-mail", "Full name", "Dept", "Favourite colour"]
    assert any(r[0] == "not-an-email" and "email" in r[-1].lower() for r in rows[1:])
    xlsx = client.get(f"/imports/{validated}/errors.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


# --- steps 6 and 7: run, result, undo -------------------------------------------------------------------------------

def test_import_run_shows_live_progress_then_the_result_counts(client, validated, work, org_id):
    response = client.post(f"/imports/{validated}/run", data={"mode": "upsert", "on_error": "skip"})
    assert response.headers["Location"].endswith(f"/imports/{validated}/run")
    html = client.get(f"/imports/{validated}/run").get_data(as_text=True)
    assert f'data-poll-url="/imports/{validated}/status"' in html
    assert f'data-poll-done="/imports/{validated}"' in html
    assert "Cancel the import" in html
    work()
    status = client.get(f"/imports/{validated}/status").get_json()
    assert (status["status"], status["rows_done"], status["total"]) == ("completed", 3, 3)
    html = client.get(f"/imports/{validated}").get_data(as_text=True)
    assert 'data-testid="count-created">2<' in html and 'data-testid="count-failed">1<' in html
    assert 'href="/people/"' in html
    assert "Undo this import" in html
    assert people_count(org_id) == 2


def test_import_run_with_abort_imports_nothing_and_says_why(client, validated, work, org_id):
    client.post(f"/imports/{validated}/run", data={"mode": "upsert", "on_error": "abort"})
    work()
    job = job_row(validated)
    assert job.status == "failed" and job.error_message
    assert people_count(org_id) == 0
    html = client.get("/imports/").get_data(as_text=True)
    assert job.error_message in html.replace("&#39;", "'").replace("&#34;", '"').replace("&quot;", '"')


def test_import_run_refuses_an_unknown_mode(client, validated):
    response = client.post(f"/imports/{validated}/run", data={"mode": "merge", "on_error": "skip"},
                           follow_redirects=True)
    assert "Choose what to do with the rows" in response.get_data(as_text=True)
    assert job_row(validated).status == "validated"


def test_import_cancelled_before_a_worker_starts_writes_nothing(client, validated, work, org_id):
    client.post(f"/imports/{validated}/run", data={"mode": "upsert", "on_error": "skip"})
    response = client.post(f"/imports/{validated}/cancel", follow_redirects=True)
    assert "Cancelled." in response.get_data(as_text=True)
    assert job_row(validated).status == "cancelled"
    work()
    assert job_row(validated).status == "cancelled"
    assert people_count(org_id) == 0
    again = client.post(f"/imports/{validated}/cancel", follow_redirects=True)
    assert "it cannot be cancelled now" in again.get_data(as_text=True)


def test_import_undo_removes_what_the_import_created(client, imported, org_id, work):
    response = client.post(f"/imports/{imported}/undo", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Undoing the import" in html and f'data-poll-url="/imports/{imported}/status"' in html
    work()
    html = client.get(f"/imports/{imported}").get_data(as_text=True)
    assert 'data-testid="undone">The import was undone' in html
    assert "Undo this import" not in html
    assert people_count(org_id) == 0
    assert job_row(imported).status == "undone"


def test_import_undo_refuses_when_a_record_changed_since_and_lists_it(client, imported, org_id):
    person = db.session.scalars(select(Person).where(Person.email == "ada@example.com")).one()
    client.post(f"/people/{person.id}/edit", data={"email": "ada@example.com", "name": "Ada King", "active": "y"})
    db.session.expire_all()
    assert db.session.get(Person, person.id).name == "Ada King"
    response = client.post(f"/imports/{imported}/undo")
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    refusal = re.search(r'data-testid="undo-refused">(.*?)</div>', html, re.S).group(1)
    assert "ada@example.com" in refusal or str(person.id) in refusal
    assert people_count(org_id) == 2


def test_import_history_lists_who_when_file_counts_and_status(client, imported, editor):
    html = client.get("/imports/").get_data(as_text=True)
    table = re.search(r'data-testid="imports">(.*?)</table>', html, re.S).group(1)
    assert "staff.csv" in table and editor.email in table and "completed" in table
    assert re.search(r'<td class="text-end">2</td>\s*<td class="text-end">0</td>\s*<td class="text-end">0</td>'
                     r'\s*<td class="text-end">1</td>', table)


# --- guards ---------------------------------------------------------------------------------------------------------

def test_import_posts_need_the_csrf_token(app, client, editor, monkeypatch):
    job_id = job_id_from(upload(client, PEOPLE_CSV))
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    for url, data in ((f"/imports/{job_id}/layout", {"header_row": "1"}),
                      (f"/imports/{job_id}/mapping", MAPPING),
                      (f"/imports/{job_id}/run", {"mode": "upsert", "on_error": "skip"}),
                      (f"/imports/{job_id}/cancel", {}),
                      (f"/imports/{job_id}/undo", {})):
        assert client.post(url, data=data).status_code == 400, url
    refused = upload(client, PEOPLE_CSV)
    assert refused.status_code == 400
    assert db.session.scalar(select(func.count(ImportJob.id))) == 1
    assert job_row(job_id).status == "uploaded"


def test_import_viewer_sees_the_history_but_cannot_import(client, make_member, login_as):
    login_as(make_member(Role.VIEWER))
    history = client.get("/imports/")
    assert history.status_code == 200 and "New import" not in history.get_data(as_text=True)
    assert client.get("/imports/new").status_code == 403
    assert upload(client, PEOPLE_CSV).status_code == 403
    assert db.session.scalar(select(func.count(ImportJob.id))) == 0


def test_import_of_another_organisation_is_not_found(client, imported, other_client, make_member, login_as):
    outsider = make_member(Role.ADMIN)
    PersonFactory(organization=outsider.memberships[0].organization)
    login_as(outsider)
    for url in (f"/imports/{imported}", f"/imports/{imported}/status", f"/imports/{imported}/layout",
                f"/imports/{imported}/errors.csv"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/imports/{imported}/undo").status_code == 404
    assert "staff.csv" not in client.get("/imports/").get_data(as_text=True)
    assert job_row(imported).status == "completed"
