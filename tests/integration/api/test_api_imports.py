"""The import API end to end: multipart upload, validate, execute, status, errors, undo; tenancy; OpenAPI."""

from __future__ import annotations

import csv
import io

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import Organization, Person
from tests.factories import OrganizationFactory
from tests.integration.api.conftest import ApiClient, new_api_key

PEOPLE = b"E-mail,Full name,Hourly rate\nada@example.com,Ada,10\nbob@example.com,Bob,abc\ncy@example.com,Cy,\n"


@pytest.fixture
def importer(client: FlaskClient, org: Organization) -> ApiClient:
    return ApiClient(client, new_api_key(org, scopes=("imports.run",))[1])


def send_file(api: ApiClient, content: bytes = PEOPLE, filename: str = "people.csv", entity: str = "people"):
    return api.post("/api/v1/import/upload", data={"entity": entity, "file": (io.BytesIO(content), filename)},
                    content_type="multipart/form-data")


def emails(org_id: int) -> set[str]:
    db.session.expire_all()
    return set(db.session.scalars(select(Person.email).where(Person.organization_id == org_id)))


def test_upload_validate_execute_status_errors_undo(importer, org, rq_burst):
    org_id = org.id
    uploaded = send_file(importer)
    assert uploaded.status_code == 201, uploaded.json
    body = uploaded.json
    assert body["status"] == "uploaded"
    assert body["overview"]["headers"] == ["E-mail", "Full name", "Hourly rate"]
    assert body["overview"]["rows"][0] == {"row": 2, "cells": ["ada@example.com", "Ada", "10"], "problem": None}
    assert body["suggestion"]["mapping"] == {"E-mail": "email", "Full name": "name", "Hourly rate": "hourly_rate"}
    import_id = body["id"]

    mapping = body["suggestion"]["mapping"]
    validating = importer.post("/api/v1/import/validate", json={"id": import_id, "mapping": mapping})
    assert validating.status_code == 202, validating.json
    assert validating.json["status"] == "validating"
    rq_burst()
    status = importer.get(f"/api/v1/import/{import_id}/status").json
    assert status["status"] == "validated"
    assert status["counts"] == {"created": 2, "updated": 0, "unchanged": 0, "failed": 1}
    assert status["first_errors"] == [{"row": 3, "column": "Hourly rate", "field": "hourly_rate", "value": "abc",
                                       "code": "type", "message": "'abc' is not a number such as 12.5 or 12,5."}]
    assert emails(org_id) == set()

    running = importer.post("/api/v1/import/execute", json={"id": import_id, "mode": "upsert", "on_error": "skip"})
    assert running.status_code == 202 and running.json["status"] == "queued"
    rq_burst()
    status = importer.get(f"/api/v1/import/{import_id}/status").json
    assert (status["status"], status["rows_done"], status["total"]) == ("completed", 3, 3)
    assert status["counts"] == {"created": 2, "updated": 0, "unchanged": 0, "failed": 1}
    assert emails(org_id) == {"ada@example.com", "cy@example.com"}

    errors = importer.get(f"/api/v1/import/{import_id}/errors?format=csv")
    assert errors.status_code == 200
    assert errors.headers["Content-Disposition"] == "attachment; filename=people-errors.csv"
    rows = list(csv.reader(io.StringIO(errors.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows == [["E-mail", "Full name", "Hourly rate", "errors"],
                    ["bob@example.com", "Bob", "abc", "Hourly rate: 'abc' is not a number such as 12.5 or 12,5."]]

    again = importer.post("/api/v1/import/execute", json={"id": import_id})
    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    assert "completed" in again.json["detail"]

    undoing = importer.post(f"/api/v1/import/{import_id}/undo")
    assert undoing.status_code == 202 and undoing.json["status"] == "undoing"
    rq_burst()
    assert importer.get(f"/api/v1/import/{import_id}/status").json["status"] == "undone"
    assert emails(org_id) == set()


def test_refused_upload_is_problem_json_naming_the_file(importer):
    response = send_file(importer, b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "people.csv")

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"] == {"file": ["'people.csv' is named like a CSV/TSV text file but its content is "
                                                "a PNG image"]}


def test_unknown_entity_and_unusable_mapping_are_422(importer):
    assert send_file(importer, entity="spaceships").status_code == 422
    import_id = send_file(importer).json["id"]

    response = importer.post("/api/v1/import/validate", json={"id": import_id, "mapping": {"E-mail": "email"}})

    assert response.status_code == 422
    assert response.json["errors"]["mapping"] == ["required fields not mapped to any column: name"]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/import/validate", {"id": 10**30}, "id"),
    ("/api/v1/import/validate", {"id": 2**31}, "id"),
    ("/api/v1/import/execute", {"id": 0}, "id"),
    ("/api/v1/import/execute", {"id": "12"}, "id"),
    ("/api/v1/import/validate", {"id": 1, "header_row": 10**6}, "header_row"),
])
def test_out_of_range_numbers_are_422_not_500(importer, path, body, field):
    response = importer.post(path, json=body)

    assert response.status_code == 422
    assert field in response.json["errors"], response.json


def test_nul_in_the_filename_and_preset_name_is_dropped_not_500(importer, org):
    response = send_file(importer, filename="st\x00aff.csv")
    assert response.status_code == 201
    assert response.json["filename"] == "staff.csv"

    validate = importer.post("/api/v1/import/validate", json={"id": response.json["id"]})
    assert validate.status_code == 202


def test_another_organisations_import_is_404(client, importer):
    import_id = send_file(importer).json["id"]
    intruder = ApiClient(client, new_api_key(OrganizationFactory(), scopes=("imports.run",))[1])

    assert intruder.get(f"/api/v1/import/{import_id}/status").status_code == 404
    assert intruder.post("/api/v1/import/validate", json={"id": import_id}).status_code == 404
    assert intruder.post("/api/v1/import/execute", json={"id": import_id}).status_code == 404


def test_openapi_documents_the_import_endpoints(client):
    spec = client.get("/api/v1/openapi.json").json
    upload = spec["paths"]["/api/v1/import/upload"]["post"]

    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert set(spec["paths"]) >= {"/api/v1/import/validate", "/api/v1/import/execute",
                                  "/api/v1/import/{import_id}/status", "/api/v1/import/{import_id}/undo"}
