"""GET /api/v1/import/templates/{entity}: the template files over REST, their schema links and bad input."""

from __future__ import annotations

import io
import json

import pytest
from lxml import etree
from openpyxl import load_workbook

from app.importers import ENTITY_SPECS, TEMPLATE_FORMATS, build_template
from tests.integration.api.conftest import ApiClient, new_api_key
from tests.integration.test_import_templates import same_file

URL = "/api/v1/import/templates"
PROBLEM = "application/problem+json"


@pytest.fixture
def importer(client, org) -> ApiClient:
    """A key made for imports only: no data.read."""
    return ApiClient(client, new_api_key(org, scopes=["imports.run"])[1])


@pytest.mark.parametrize("fmt", TEMPLATE_FORMATS)
def test_api_import_template_sends_each_format_as_an_attachment(importer, fmt):
    response = importer.get(f"{URL}/projects?format={fmt}")

    template = build_template("projects", fmt)
    assert response.status_code == 200
    assert response.mimetype == template.mimetype
    assert response.headers["Content-Disposition"] == f"attachment; filename={template.filename}"
    if fmt not in ("xml", "json"):  # those two name their schema by URL, so differ from the default file
        assert same_file(fmt, response.data) == same_file(fmt, template.content)


def test_api_import_template_defaults_to_xlsx(importer):
    response = importer.get(f"{URL}/time_entries")

    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["Time entries", "Instructions"]
    assert [c.value for c in book.worksheets[0][1]] == [f.name for f in ENTITY_SPECS["time_entries"].fields]


def test_api_import_template_names_its_schema_by_this_endpoint(importer):
    xml = etree.fromstring(importer.get(f"{URL}/tasks?format=xml").data)
    document = json.loads(importer.get(f"{URL}/tasks?format=json").data)

    location = xml.get("{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation")
    assert location == f"http://localhost{URL}/tasks?format=xsd"
    assert document["$schema"] == f"http://localhost{URL}/tasks?format=schema"
    schema = etree.XMLSchema(etree.fromstring(importer.get(location.removeprefix("http://localhost")).data))
    schema.assertValid(xml)


def test_api_import_template_unknown_entity_is_404_problem(importer):
    response = importer.get(f"{URL}/invoices?format=csv")

    assert (response.status_code, response.mimetype) == (404, PROBLEM)


def test_api_import_template_unknown_format_is_422_naming_the_formats(importer):
    response = importer.get(f"{URL}/people?format=pdf")

    assert (response.status_code, response.mimetype) == (422, PROBLEM)
    assert response.get_json()["errors"] == {"format": ["Choose one of: xlsx, csv, xml, xsd, json, schema."]}


def test_api_import_template_needs_the_imports_scope(client, org):
    reader = ApiClient(client, new_api_key(org, scopes=["data.read", "data.write"])[1])

    response = reader.get(f"{URL}/people?format=csv")

    assert (response.status_code, response.mimetype) == (403, PROBLEM)
    assert "imports.run" in response.get_json()["detail"]


def test_api_import_template_is_documented(client):
    operation = client.get("/api/v1/openapi.json").get_json()["paths"][f"{URL}/{{entity}}"]

    assert operation["parameters"][0]["schema"]["enum"] == list(ENTITY_SPECS)
    get = operation["get"]
    assert get["parameters"][0]["schema"]["enum"] == list(TEMPLATE_FORMATS)
    assert {"200", "401", "403", "404", "422", "429"} <= set(get["responses"])
    assert "text/csv" in get["responses"]["200"]["content"]
