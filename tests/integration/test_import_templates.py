"""Import templates: every entity's template, filled in the way a user would, imports with no mapping given.

For each entity and each data format (xlsx, csv, xml, json) the template is filled with its example row
plus generated rows (natural keys of their own, references to parent records made by factories, every
allowed enum value, blanks), imported through the real service (``run_import_file``, mapping ``None``),
and the stored records are compared field by field with what was written; a second import of the same
file must be all "unchanged". The schemas are checked as schemas too: the filled XML against the XSD
(lxml), the filled JSON against the JSON Schema (jsonschema, whose ``check_schema`` also proves ours
is a valid draft 2020-12 schema).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import zipfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from lxml import etree
from openpyxl import load_workbook
from sqlalchemy import select

from app.extensions import db
from app.importers import ENTITY_SPECS, EntitySpec, build_template, open_reader
from app.importers.specs import ImportField
from app.importers.templates import (
    DATA_FORMATS,
    FORMATS,
    SCHEMA_OF,
    XSI,
    UnknownTemplate,
    _list_formula,
    example_record,
    example_value,
    has_template_headers,
    template_headers,
)
from app.models import Client, Organization, Person, Project, Role, Task
from app.services.audit import Actor
from app.services.imports import run_import_file
from tests.factories import ClientFactory, OrganizationFactory, PersonFactory, ProjectFactory, TaskFactory
from tests.peers import soffice_binary

ACTOR = Actor(user=None, label_override="test")
GENERATED_ROWS = 3
BLANK_ROW = 3  # this generated row leaves every optional field blank
CASES = [(entity, fmt) for entity in ENTITY_SPECS for fmt in DATA_FORMATS]
# A second parent per referenced model, so the generated rows point at more than the example's parent.
OTHER_PARENT = {Person: "parent.two@example.com", Client: "Parent client two", Project: "PAR-2", Task: "parent-task-2"}


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory(slug="templates")


# --- the rows a user writes into the template ---------------------------------------------------------------


def reference_keys(spec: EntitySpec, f: ImportField) -> list[str]:
    """The parents a reference field may name: the example's, then another one."""
    return [example_value(spec, f), OTHER_PARENT[f.reference.model]]


def make_parents(org: Organization, spec: EntitySpec) -> dict[tuple[type, str], Any]:
    """Every record the entity's references name, keyed by (model, natural key); tasks sit in the named project."""
    made: dict[tuple[type, str], Any] = {}
    fields = [f for f in spec.fields if f.reference is not None]
    projects = next((reference_keys(spec, f) for f in fields if f.reference.model is Project), None)
    for f in fields:
        for variant, key in enumerate(reference_keys(spec, f)):
            model = f.reference.model
            if (model, key) in made:
                continue
            if model is Person:
                made[model, key] = PersonFactory(organization=org, email=key)
            elif model is Client:
                made[model, key] = ClientFactory(organization=org, name=key)
            elif model is Project:
                made[model, key] = ProjectFactory(organization=org, code=key)
            else:
                code = projects[variant] if projects else f"TASKS-{variant}"
                project = made.get((Project, code)) or ProjectFactory(organization=org, code=code)
                made[Project, code] = project
                made[model, key] = TaskFactory(organization=org, project_id=project.id, external_id=key)
    return made


def generated_value(spec: EntitySpec, f: ImportField, i: int) -> Any:
    """Row ``i``'s typed value of a field (``None`` = blank): keys of its own, each enum value, other parents."""
    if i == BLANK_ROW and not f.required:
        return None
    example = example_value(spec, f)
    if f.reference is not None:
        return reference_keys(spec, f)[i % 2]
    if f.type == "enum":
        return f.choices[i % len(f.choices)]
    if f.type == "boolean":
        return i % 2 == 0
    if f.type == "date":
        return example + timedelta(days=i)
    if f.type in ("decimal", "integer"):
        return min(example + i, f.maximum) if f.maximum is not None else example + i
    if f.type == "list":
        return f"{example}, skill {i}"
    if f.type == "email":
        return f"row{i}.{example}"
    if f.unique:
        return f"R{i}-{example}"
    return f"{example} {i}"


def table(spec: EntitySpec) -> list[dict[str, Any]]:
    """The example row followed by the generated rows, typed, keyed by field name."""
    rows = [example_record(spec)]
    rows += [{f.name: generated_value(spec, f, i) for f in spec.fields} for i in range(1, GENERATED_ROWS + 1)]
    return rows


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value.isoformat() if isinstance(value, date) else str(value)


def json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value.isoformat() if isinstance(value, date) else value


# --- filling each format the way its users do -------------------------------------------------------------


def fill_csv(template: bytes, spec: EntitySpec, rows: list[dict[str, Any]]) -> bytes:
    """Append the generated rows under the template's example (kept as it is)."""
    header = next(csv.reader(io.StringIO(template.decode("utf-8-sig"))))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([text(row[name]) for name in header] for row in rows[1:])
    return template + buffer.getvalue().encode("utf-8")


def fill_xlsx(template: bytes, spec: EntitySpec, rows: list[dict[str, Any]]) -> bytes:
    """Type the rows into the first sheet: dates as date cells, numbers as numbers, yes/no from the dropdown."""
    book = load_workbook(io.BytesIO(template))
    sheet = book.worksheets[0]
    header = [cell.value for cell in sheet[1]]
    for row in rows[1:]:
        sheet.append([_cell(row[name]) for name in header])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return float(value) if isinstance(value, Decimal) else value


def fill_xml(template: bytes, spec: EntitySpec, rows: list[dict[str, Any]]) -> bytes:
    """Copy the example record's layout; the blank row leaves its optional elements out altogether."""
    root = etree.fromstring(template)
    record_tag = root.find("*").tag
    for row in rows[1:]:
        record = etree.SubElement(root, record_tag)
        for name, value in row.items():
            if value is not None:
                etree.SubElement(record, name).text = str(value).lower() if isinstance(value, bool) else text(value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def fill_json(template: bytes, spec: EntitySpec, rows: list[dict[str, Any]]) -> bytes:
    """Append records to the envelope's array; blanks are ``null``."""
    document = json.loads(template)
    document[spec.entity].extend({name: json_value(value) for name, value in row.items()} for row in rows[1:])
    return json.dumps(document).encode("utf-8")


FILLERS = {"csv": fill_csv, "xlsx": fill_xlsx, "xml": fill_xml, "json": fill_json}


def fill(entity: str, fmt: str) -> tuple[bytes, list[dict[str, Any]]]:
    spec = ENTITY_SPECS[entity]
    rows = table(spec)
    return FILLERS[fmt](build_template(entity, fmt).content, spec, rows), rows


# --- checking what was stored ------------------------------------------------------------------------------


def expected(spec: EntitySpec, row: dict[str, Any], parents: dict[tuple[type, str], Any]) -> dict[str, Any]:
    """What the record's columns must hold after importing ``row``: blanks as defaults, keys normalised."""
    values: dict[str, Any] = {}
    for f in spec.fields:
        value = row[f.name]
        if f.reference is not None:
            value = None if value is None else parents[f.reference.model, value].id
        elif value is None:
            value = f.default if not f.nullable else None
        elif f.type == "list":
            value = [item.strip() for item in value.split(",")]
        values[f.column] = value
    return spec.service.normalise(values)


def stored(spec: EntitySpec, org: Organization) -> dict[Any, Any]:
    model = spec.model
    key = getattr(model, spec.key_field.column)
    return {getattr(r, spec.key_field.column): r
            for r in db.session.scalars(select(model).where(model.organization_id == org.id, key.is_not(None)))}


def import_file(org: Organization, path: Path, entity: str):
    summary = run_import_file(org, ACTOR, path, path.name, entity)  # no mapping: the headers must map themselves
    return (summary.created, summary.updated, summary.unchanged, summary.failed), [e.as_dict() for e in summary.errors]


def assert_round_trip(org: Organization, path: Path, entity: str, rows: list[dict[str, Any]],
                      parents: dict[tuple[type, str], Any]) -> None:
    spec = ENTITY_SPECS[entity]
    before = set(stored(spec, org))
    counts, errors = import_file(org, path, entity)
    assert (counts, errors) == ((len(rows), 0, 0, 0), [])
    db.session.expire_all()
    records = stored(spec, org)
    for row in rows:
        want = expected(spec, row, parents)
        key = want[spec.key_field.column]
        assert key not in before
        got = {column: getattr(records[key], column) for column in want}
        assert got == want, f"row {row[spec.natural_key]!r}"
    assert import_file(org, path, entity) == ((0, 0, len(rows), 0), [])


def same_file(fmt: str, content: bytes) -> bytes | dict[str, bytes]:
    """What must be equal between two builds of a template: a workbook's parts but its save time (docProps/core.xml)."""
    if fmt != "xlsx":
        return content
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name != "docProps/core.xml"}


# --- the round trips ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("entity", "fmt"), CASES)
def test_template_filled_in_imports_with_no_mapping(org, tmp_path, entity, fmt):
    parents = make_parents(org, ENTITY_SPECS[entity])
    content, rows = fill(entity, fmt)
    path = tmp_path / build_template(entity, fmt).filename
    path.write_bytes(content)

    assert_round_trip(org, path, entity, rows, parents)


@pytest.mark.parametrize("entity", list(ENTITY_SPECS))
def test_template_filled_xml_validates_against_its_xsd(entity):
    schema = etree.XMLSchema(etree.fromstring(build_template(entity, "xsd").content))
    template = etree.fromstring(build_template(entity, "xml").content)
    filled = etree.fromstring(fill(entity, "xml")[0])

    schema.assertValid(template)
    schema.assertValid(filled)
    assert template.get("{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation") == f"{entity}.xsd"


@pytest.mark.parametrize("entity", list(ENTITY_SPECS))
def test_template_xsd_refuses_what_the_spec_forbids(entity):
    """Required elements, enumerations and limits are in the XSD, not only in the importer."""
    spec = ENTITY_SPECS[entity]
    schema = etree.XMLSchema(etree.fromstring(build_template(entity, "xsd").content))
    required = spec.required[0]
    root = etree.fromstring(build_template(entity, "xml").content)
    record = root.find("*")
    record.remove(record.find(required))

    assert not schema.validate(root)
    assert f"Missing child element(s). Expected is ( {required} )" in schema.error_log.last_error.message
    for f in (f for f in spec.fields if f.choices or f.maximum is not None):
        root = etree.fromstring(build_template(entity, "xml").content)
        root.find("*").find(f.name).text = "not-a-choice" if f.choices else str(f.maximum + 1)
        assert not schema.validate(root), f.name


@pytest.mark.parametrize("entity", list(ENTITY_SPECS))
def test_template_json_validates_against_its_json_schema(entity):
    spec = ENTITY_SPECS[entity]
    schema = json.loads(build_template(entity, "schema").content)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    template = json.loads(build_template(entity, "json").content)
    filled = json.loads(fill(entity, "json")[0])

    validator.validate(template)
    validator.validate(filled)
    validator.validate(filled[entity])  # the bare-array form the reader accepts too
    assert template["$schema"] == f"{entity}.schema.json"
    broken = dict(filled[entity][0])
    del broken[spec.required[0]]
    errors = list(validator.iter_errors({entity: [broken]}))
    messages = [m for e in errors for m in (e.message, *(c.message for c in e.context))]
    assert errors and any(f"'{spec.required[0]}' is a required property" in m for m in messages)


@pytest.mark.parametrize("fmt", DATA_FORMATS)
def test_untouched_templates_import_one_after_the_other(org, tmp_path, fmt):
    """The examples fit together: each template's references name the examples of the templates before it."""
    results = {}
    for entity in ENTITY_SPECS:
        template = build_template(entity, fmt)
        path = tmp_path / template.filename
        path.write_bytes(template.content)
        results[entity] = import_file(org, path, entity)

    assert results == dict.fromkeys(ENTITY_SPECS, ((1, 0, 0, 0), []))
    tasks = stored(ENTITY_SPECS["tasks"], org)
    assert tasks["tasks-0001"].project_id == stored(ENTITY_SPECS["projects"], org)["WEB-2026"].id


def test_template_schema_urls_can_be_absolute():
    xml = build_template("tasks", "xml", schema_url="https://interchange.example/imports/templates/tasks.xsd")
    document = json.loads(build_template("tasks", "json", schema_url="https://x.example/tasks.schema").content)

    assert b'xsi:noNamespaceSchemaLocation="https://interchange.example/imports/templates/tasks.xsd"' in xml.content
    assert document["$schema"] == "https://x.example/tasks.schema"


def test_template_unknown_entity_or_format_is_refused_with_the_choices():
    with pytest.raises(UnknownTemplate, match="choose one of people, clients"):
        build_template("invoices", "csv")
    with pytest.raises(UnknownTemplate, match="choose one of xlsx, csv, xml, xsd, json, schema"):
        build_template("people", "pdf")


@pytest.mark.parametrize("fmt", DATA_FORMATS)
def test_template_headers_are_recognised_so_the_wizard_can_skip_mapping(tmp_path, fmt):
    path = tmp_path / build_template("projects", fmt).filename
    path.write_bytes(build_template("projects", fmt).content)
    headers = open_reader(path, path.name).headers(None)

    assert headers == template_headers("projects") == [f.name for f in ENTITY_SPECS["projects"].fields]
    assert has_template_headers(headers, "projects")
    assert has_template_headers(["name", "code"], "projects")
    assert not has_template_headers(["code"], "projects")  # a required field has no column
    assert not has_template_headers([*headers, "Budget code"], "projects")  # a column the mapping must place


def test_template_files_are_named_and_typed_per_format():
    files = {fmt: build_template("time_entries", fmt) for fmt in FORMATS}

    assert {fmt: f.filename for fmt, f in files.items()} == {
        "xlsx": "time_entries-template.xlsx", "csv": "time_entries-template.csv",
        "xml": "time_entries-template.xml", "xsd": "time_entries.xsd", "json": "time_entries-template.json",
        "schema": "time_entries.schema.json",
    }
    assert files["xlsx"].content.startswith(b"PK")
    assert files["csv"].content.startswith(b"\xef\xbb\xbf" + b"person,project,task,spent_on,hours")
    assert files["csv"].content.count(b"\r\n") == 2


# --- the workbook itself -----------------------------------------------------------------------------------


@pytest.mark.parametrize("entity", list(ENTITY_SPECS))
def test_template_xlsx_has_marks_dropdowns_dates_and_instructions(entity):
    spec = ENTITY_SPECS[entity]
    book = load_workbook(io.BytesIO(build_template(entity, "xlsx").content))
    sheet, instructions = book.worksheets[0], book["Instructions"]
    assert book.sheetnames == [sheet.title, "Instructions"]

    headers = list(sheet[1])
    assert [c.value for c in headers] == [f.name for f in spec.fields]
    for cell, f in zip(headers, spec.fields, strict=True):
        assert bool(cell.font.b) is f.required, f.name
        assert (cell.fill.fgColor.rgb == "00FFD966") is f.required, f.name
        assert cell.comment.text.startswith("Required" if f.required else "Optional")
    validations = {str(v.sqref): v for v in sheet.data_validations.dataValidation}
    for column, f in enumerate(spec.fields, start=1):
        letter = headers[column - 1].column_letter
        example = sheet.cell(row=2, column=column)
        validation = validations.get(f"{letter}2:{letter}1048576")
        if f.type == "enum":
            assert (validation.type, validation.formula1) == ("list", '"' + ",".join(f.choices) + '"')
        elif f.type == "boolean":
            assert (validation.type, validation.formula1) == ("list", '"yes,no"')
        elif f.type == "date":
            assert example.is_date and example.number_format == "yyyy-mm-dd"
            assert sheet.column_dimensions[letter].number_format == "yyyy-mm-dd"
            assert validation.type == "date"
        elif f.type == "decimal":
            assert isinstance(example.value, int | float | Decimal) and validation.type == "decimal"
        else:
            assert validation is None, f.name
            assert example.number_format == sheet.column_dimensions[letter].number_format == "@", f.name

    rows = [[c.value for c in row] for row in instructions.iter_rows()]
    start = rows.index(["Field", "Required", "Type", "Allowed values", "Example", "Description"])
    listed = {row[0]: row for row in rows[start + 1:]}
    assert list(listed) == [f.name for f in spec.fields]
    for f in spec.fields:
        _, required, kind, allowed, example, description = listed[f.name]
        assert required == ("yes" if f.required else "no")
        assert kind and description and example
        if f.choices:
            assert allowed == ", ".join(f.choices)
    assert any("amber header in bold" in (row[0] or "") for row in rows[:start])


def test_template_dropdown_lists_that_excel_cannot_hold_fail_loudly():
    assert _list_formula("status", ["todo", "done"]) == '"todo,done"'
    with pytest.raises(ValueError, match="status do not fit an Excel dropdown"):
        _list_formula("status", [f"state {n:03}" for n in range(30)])  # 30 x 9 characters: over 255
    with pytest.raises(ValueError, match="size do not fit"):
        _list_formula("size", ["small, medium", "large"])


def test_template_instructions_explain_keys_references_and_defaults():
    sheet = load_workbook(io.BytesIO(build_template("people", "xlsx").content))["Instructions"]
    listed = {row[0].value: row[5].value for row in sheet.iter_rows() if len(row) > 5 and row[5].value}

    assert "a row whose email already exists updates that person" in listed["email"]
    assert "(or of a person elsewhere in this file)" in listed["manager"]
    assert "Blank means yes" in listed["active"]
    assert "from 0 to 168" in listed["weekly_capacity"]


LO_CSV_FILTER = "Text - txt - csv (StarCalc)"


@pytest.fixture(scope="session")
def soffice(tmp_path_factory: pytest.TempPathFactory):
    """Re-save a workbook with real LibreOffice Calc (PEERS.md §5), one private profile for the session."""
    binary = soffice_binary()
    profile = tmp_path_factory.mktemp("lo-profile-templates")

    def resave(source: Path) -> Path:
        """Open ``source`` as Calc would (CSV as UTF-8, English locale) and save it again in the same format."""
        outdir = source.parent / "libreoffice"
        csv_options = ["--infilter=CSV:44,34,76,1,,1033", "--convert-to", f"csv:{LO_CSV_FILTER}:44,34,76,1"]
        target = csv_options if source.suffix == ".csv" else ["--convert-to", "xlsx:Calc MS Excel 2007 XML"]
        subprocess.run(
            [binary, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore", *target,
             "--outdir", str(outdir), str(source)],
            check=True, capture_output=True, timeout=180,
        )
        return outdir / source.name

    return resave


def test_template_xlsx_resaved_by_libreoffice_still_imports(org, tmp_path, soffice):
    """A filled template opened and saved again by LibreOffice Calc keeps its dates, dropdown words and numbers."""
    entity = "time_entries"
    parents = make_parents(org, ENTITY_SPECS[entity])
    content, rows = fill(entity, "xlsx")
    source = tmp_path / "time_entries-template.xlsx"
    source.write_bytes(content)

    resaved = soffice(source)

    with zipfile.ZipFile(resaved) as archive:
        assert b"LibreOffice" in archive.read("docProps/app.xml")
    sheet = load_workbook(resaved).worksheets[0]
    spent_on = [c.column_letter for c in sheet[1] if c.value == "spent_on"][0]
    assert sheet[f"{spent_on}2"].is_date
    assert any(v.type == "list" for v in sheet.data_validations.dataValidation)
    assert_round_trip(org, resaved, entity, rows, parents)


def test_template_csv_resaved_by_libreoffice_still_imports(org, tmp_path, soffice):
    """Calc reads the BOM'd UTF-8 CSV, keeps the ISO dates as written and saves a CSV (without BOM) we read."""
    entity = "projects"
    parents = make_parents(org, ENTITY_SPECS[entity])
    content, rows = fill(entity, "csv")
    source = tmp_path / "projects-template.csv"
    source.write_bytes(content.replace(b"Example project description", "Déjà vu à Zoë".encode()))
    for row in rows:
        row["description"] = row["description"] and row["description"].replace("Example project description",
                                                                                "Déjà vu à Zoë")

    resaved = soffice(source)

    assert "2026-03-02" in resaved.read_text(encoding="utf-8")
    assert_round_trip(org, resaved, entity, rows, parents)


# --- the console pages ------------------------------------------------------------------------------------------


@pytest.fixture
def viewer(org, make_member, login_as):
    """The least role with integrations.read."""
    return login_as(make_member(Role.VIEWER, org=org))


def test_template_page_links_every_entity_and_format(client, viewer):
    html = client.get("/imports/templates/").get_data(as_text=True)

    for entity in ENTITY_SPECS:
        for fmt in (*DATA_FORMATS, "xsd", "schema"):
            assert f'href="/imports/templates/{entity}.{fmt}"' in html


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_template_download_sends_the_file(client, viewer, fmt):
    response = client.get(f"/imports/templates/comments.{fmt}")

    template = build_template("comments", fmt)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f"attachment; filename={template.filename}"
    assert response.mimetype == template.mimetype
    if fmt == "csv":
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    if fmt not in SCHEMA_OF:
        assert same_file(fmt, response.data) == same_file(fmt, template.content)


def test_template_download_names_the_schema_by_its_console_url(client, viewer):
    xml = etree.fromstring(client.get("/imports/templates/people.xml").data)
    document = json.loads(client.get("/imports/templates/people.json").data)

    assert xml.get(f"{{{XSI}}}noNamespaceSchemaLocation") == "http://localhost/imports/templates/people.xsd"
    assert document["$schema"] == "http://localhost/imports/templates/people.schema"
    assert client.get("/imports/templates/people.schema").get_json()["$defs"]["person"]["required"] == [
        "email", "name"]


@pytest.mark.parametrize("path", ["/imports/templates/invoices.csv", "/imports/templates/people.pdf",
                                  "/imports/templates/people"])
def test_template_download_unknown_entity_or_format_is_404(client, viewer, path):
    assert client.get(path).status_code == 404
