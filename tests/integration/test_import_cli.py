"""``flask import run``: synchronous imports from the command line, a JSON summary on the last line."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Organization, Person
from tests.factories import OrganizationFactory

CSV = "E-mail,Full name,Department\nada@example.com,Ada,Research\nalan@example.com,Alan,\nnot-an-email,Broken,\n"


@pytest.fixture
def acme() -> Organization:
    return OrganizationFactory(slug="acme", name="Acme")


def invoke(runner, path: Path, *extra: str):
    return runner.invoke(args=["import", "run", str(path), "--org", "acme", "--entity", "people", *extra])


def people_count() -> int:
    return db.session.scalar(select(func.count(Person.id)))


def summary(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_cli_import_run_prints_a_json_summary_last(runner, acme, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    result = invoke(runner, path)
    assert result.exit_code == 0, result.output
    assert summary(result.output) | {"errors": 1} == {
        "created": 2, "updated": 0, "unchanged": 0, "failed": 1, "rows_total": 3, "errors": 1, "dry_run": False,
        "aborted": False}
    assert people_count() == 2


def test_cli_import_run_prints_row_errors_above_the_summary(runner, acme, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    lines = invoke(runner, path).output.strip().splitlines()
    assert lines[:-1] == ["row 4, column 'E-mail': Enter a valid email address, such as ada@example.com."]


def test_cli_import_run_with_a_mapping_and_update_mode(runner, acme, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    invoke(runner, path)
    path.write_text("Who,Called,Team\nada@example.com,Ada,Poetry\nnew@example.com,New,\n")
    mapping = json.dumps({"Who": "email", "Called": "name", "Team": "department"})
    result = invoke(runner, path, "--mapping", mapping, "--mode", "update")
    assert (summary(result.output)["updated"], summary(result.output)["failed"]) == (1, 1)
    assert people_count() == 2


@pytest.mark.parametrize(("name", "content", "message"), [
    ("people.xlsx", b"email,name\nada@example.com,Ada\n", "xlsx"),
    ("people.xml", b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                   b"<people><person><email>&x;</email><name>A</name></person></people>", "DOCTYPE"),
    ("people.json", b'[{"email": "ada@example.com", "name": "Ada"}', "JSON"),
])
def test_cli_import_run_refuses_a_bad_file_and_writes_nothing(runner, acme, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    result = invoke(runner, path)
    assert result.exit_code != 0
    assert "The file cannot be imported" in result.output and message.lower() in result.output.lower()
    assert "Traceback" not in result.output
    assert people_count() == 0


def test_cli_import_run_refuses_a_zip_bomb(runner, acme, tmp_path):
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<" + b"a" * 20_000_000 + b"/>")
    result = invoke(runner, path)
    assert result.exit_code != 0 and "The file cannot be imported" in result.output
    assert people_count() == 0


@pytest.mark.parametrize(("extra", "message"), [
    (["--mapping", '{"E-mail": "email"}'], "required fields not mapped to any column: name"),
    (["--mapping", "{nope"], "--mapping is not valid JSON"),
    (["--mapping", '{"Shoe": "email", "Full name": "name"}'], "the file has no column 'Shoe'"),
])
def test_cli_import_run_explains_an_unusable_mapping(runner, acme, tmp_path, extra, message):
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    result = invoke(runner, path, *extra)
    assert result.exit_code != 0
    assert message in result.output
    assert people_count() == 0


def test_cli_import_run_unknown_org_fails_cleanly(runner, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    result = invoke(runner, path)
    assert result.exit_code != 0 and "Organisation 'acme' not found." in result.output
