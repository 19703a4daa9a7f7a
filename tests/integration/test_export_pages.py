"""The console's Exports page: start from the form, watch the history, download; the list pages' Export link."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from flask import g
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, ExportJob, Role
from tests.factories import OrganizationFactory, PersonFactory


@pytest.fixture
def member(make_member, login_as):
    user = make_member(Role.VIEWER, email="viewer@example.com")
    login_as(user)
    return user


@pytest.fixture
def org(member):
    return member.memberships[0].organization


@pytest.fixture
def burst(rq_burst):
    """Run the worker; it removes the shared session, so drop Flask-Login's cached (now detached) user."""
    def run() -> None:
        rq_burst()
        g.pop("_login_user", None)

    return run


def test_export_page_start_then_download_from_history(client, org, burst):
    PersonFactory(organization=org, email="ada@example.com", name="Ada", department="Eng")
    PersonFactory(organization=org, email="bob@example.com", name="-Bob", department="Ops")

    response = client.post("/exports/", data={"entity": "people", "format": "csv", "columns": ["email", "name"],
                                              "filter_department": "Ops", "filter_q": ""})
    assert response.status_code == 302
    burst()

    page = client.get("/exports/").get_data(as_text=True)
    assert "viewer@example.com" in page and "department: Ops" in page and "completed" in page
    [download_url] = re.findall(r'href="(/exports/\d+/download)"', page)
    download = client.get(download_url)
    assert download.status_code == 200
    assert download.headers["X-Export-Filters"] == '{"department": "Ops"}'
    assert download.headers["X-Export-Row-Count"] == "1"
    assert re.fullmatch(r'attachment; filename=people-\d{8}-\d{6}-\d+\.csv', download.headers["Content-Disposition"])
    rows = list(csv.reader(io.StringIO(download.get_data().decode("utf-8-sig"))))
    assert rows == [["email", "name"], ["bob@example.com", "'-Bob"]]
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-1] == "export.downloaded" and "export.started" in actions


def test_export_page_status_json_reports_progress(client, org, burst):
    PersonFactory(organization=org)
    client.post("/exports/", data={"entity": "people", "format": "json", "columns": ["email"]})
    export_id = db.session.query(ExportJob.id).scalar()

    queued = client.get(f"/exports/{export_id}/status").json
    burst()
    done = client.get(f"/exports/{export_id}/status").json

    assert queued["status"] == "queued"
    assert (done["status"], done["processed"], done["total"]) == ("completed", 1, 1)


def test_export_page_running_export_has_a_polled_progress_bar(client, org):
    client.post("/exports/", data={"entity": "clients", "format": "xml", "columns": ["name"]})

    page = client.get("/exports/").get_data(as_text=True)

    assert re.search(r'data-export-status-url="/exports/\d+/status"', page)
    assert "js/exports.js" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"entity": "people", "format": "csv", "columns": ["email"], "filter_active": "perhaps"},
         "filters: filter &#39;active&#39;: &#39;perhaps&#39; is not yes or no"),
        ({"entity": "people", "format": "pdf", "columns": ["email"]}, "Unknown format &#39;pdf&#39;"),
        ({"entity": "people", "format": "csv", "columns": ["salary"]}, "people has no column &#39;salary&#39;"),
        ({"entity": "people", "format": "csv"}, "choose at least one column"),
    ],
)
def test_export_page_bad_input_is_422_with_the_reason(client, org, data, message):
    response = client.post("/exports/", data=data)

    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.query(ExportJob).count() == 0


def test_export_page_other_organisations_export_is_404(client, org, burst):
    from tests.exports_for_tests import finished_export

    other = finished_export(OrganizationFactory())

    for url in (f"/exports/{other.id}/status", f"/exports/{other.id}/download"):
        assert client.get(url).status_code == 404, url


def test_list_page_export_link_carries_the_filters_into_the_form(client, org):
    page = client.get("/people/?department=Ops&active=1&q=bo&sort=name").get_data(as_text=True)
    [link] = re.findall(r'data-testid="export-link" href="([^"]+)"', page)

    form = client.get(html.unescape(link)).get_data(as_text=True)

    assert "entity=people" in html.unescape(link)
    assert 'name="filter_department" value="Ops"' in form
    assert 'name="filter_q" value="bo"' in form
    assert re.search(r'<option value="1"\s+selected>Yes</option>', form)
