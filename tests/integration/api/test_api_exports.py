"""The export endpoints: start → poll → download, with a real worker; tenancy and bad input."""

from __future__ import annotations

import csv
import io

import pytest

from app.extensions import db
from app.models import ExportJob
from tests.factories import OrganizationFactory, PersonFactory
from tests.integration.api.conftest import ApiClient, new_api_key


@pytest.fixture
def org():
    return OrganizationFactory(slug="acme")


@pytest.fixture
def api(client, org) -> ApiClient:
    _, secret = new_api_key(org, scopes=["data.read"], name="CI exporter")
    return ApiClient(client, secret)


def test_api_export_start_poll_and_download_csv(api, org, rq_burst):
    PersonFactory(organization=org, email="ada@example.com", name="Ada", department="Eng")
    PersonFactory(organization=org, email="bob@example.com", name="=cmd|' /C calc'!A0", department="Ops")

    started = api.post("/api/v1/export", json={"entity": "people", "format": "csv", "columns": ["email", "name"],
                                               "filters": {"department": "Ops"}})
    assert started.status_code == 202, started.json
    assert started.json["status"] == "queued"
    assert started.headers["Location"] == started.json["status_url"]
    rq_burst()

    status = api.get(started.json["status_url"])
    assert status.json["status"] == "completed"
    assert (status.json["processed"], status.json["total"], status.json["row_count"]) == (1, 1, 1)
    download = api.get(status.json["download_url"])
    assert download.status_code == 200
    assert download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"].startswith("attachment; filename=people-")
    assert download.headers["X-Export-Entity"] == "people"
    assert download.headers["X-Export-Row-Count"] == "1"
    assert download.headers["X-Export-Organization"] == "acme"
    assert download.headers["X-Export-Exported-By"].startswith("api-key:CI exporter (ick_")
    assert download.headers["X-Export-Filters"] == '{"department": "Ops"}'
    assert download.headers["X-Export-Schema-Version"] == "1"
    rows = list(csv.reader(io.StringIO(download.get_data().decode("utf-8-sig"))))
    assert rows == [["email", "name"], ["bob@example.com", "'=cmd|' /C calc'!A0"]]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"entity": "people"}, "format", "Missing data for required field."),
        ({"entity": "ships", "format": "csv"}, "entity", "Unknown entity 'ships'"),
        ({"entity": "people", "format": "docx"}, "format", "Unknown format 'docx'"),
        ({"entity": "people", "format": "csv", "columns": ["password"]}, "columns", "people has no column 'password'"),
        ({"entity": "people", "format": "csv", "filters": {"manager": "x"}}, "filters", "'x' is not a record id"),
    ],
)
def test_api_export_bad_input_is_422_naming_the_problem(api, body, field, message):
    response = api.post("/api/v1/export", json=body)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert message in response.json["errors"][field][0]
    assert db.session.query(ExportJob).count() == 0


def test_api_export_of_another_organisation_is_404(api, rq_burst, client):
    other = OrganizationFactory()
    _, other_secret = new_api_key(other, scopes=["data.read"])
    started = ApiClient(client, other_secret).post("/api/v1/export", json={"entity": "people", "format": "json"})
    rq_burst()
    export_id = started.json["id"]

    for url in (f"/api/v1/export/{export_id}", f"/api/v1/export/{export_id}/download"):
        response = api.get(url)
        assert response.status_code == 404, url
        assert response.mimetype == "application/problem+json"


def test_api_export_download_before_it_ran_is_410_with_reason(api):
    started = api.post("/api/v1/export", json={"entity": "clients", "format": "xml"})

    response = api.get(started.json["download_url"])

    assert response.status_code == 410
    assert "it is queued" in response.json["detail"]


def test_api_export_is_documented_in_openapi(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]

    assert set(paths["/api/v1/export"]) == {"post"}
    assert "/api/v1/export/{export_id}" in paths
    assert "text/csv" in paths["/api/v1/export/{export_id}/download"]["get"]["responses"]["200"]["content"]
