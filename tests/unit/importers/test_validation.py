"""The validate step's row and cross-row rules (no references, so no database), and the specs they use."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from app.importers import ENTITY_SPECS
from app.importers.mapping import MappedRow
from app.importers.validation import OrgContext, validate_chunk
from app.services.entities import ENTITIES

PEOPLE = ENTITY_SPECS["people"]
PROJECTS = ENTITY_SPECS["projects"]
SOURCES = {"email": "Email", "name": "Name", "title": "Title", "hourly_rate": "Rate", "weekly_capacity": "Capacity"}


def person(row: int, **values: Any) -> MappedRow:
    return MappedRow(row, {"email": f"p{row}@example.com", "name": f"P{row}", "title": None, "hourly_rate": None,
                           "weekly_capacity": None} | values, SOURCES)


def codes(rows: list[MappedRow], spec=PEOPLE, ctx: OrgContext | None = None) -> list[tuple[int, str | None, str]]:
    return [(e.row, e.column, e.code) for e in validate_chunk(rows, spec, ctx or OrgContext(org_id=1))]


def test_validate_chunk_accepts_valid_rows_and_normalises_keys():
    rows = [person(2, email="Ada@Example.com")]
    assert codes(rows) == []
    assert rows[0].values["email"] == "ada@example.com"


@pytest.mark.parametrize(("values", "expected"), [
    ({"name": None}, (2, "Name", "required")),
    ({"title": "x" * 201}, (2, "Title", "too_long")),
    ({"hourly_rate": Decimal(-1)}, (2, "Rate", "range")),
    ({"weekly_capacity": Decimal(169)}, (2, "Capacity", "range")),
    ({"email": "not-an-email"}, (2, "Email", "invalid")),
    ({"title": "a\x00b"}, (2, "Title", "nul")),
])
def test_validate_chunk_applies_the_record_service_rules(values, expected):
    assert codes([person(2, **values)]) == [expected]


def test_validate_chunk_range_message_states_the_limit():
    [error] = validate_chunk([person(2, weekly_capacity=Decimal(200))], PEOPLE, OrgContext(org_id=1))
    assert error.message == "weekly_capacity must be at most 168; got 200."


def test_validate_chunk_flags_every_copy_of_a_duplicate_key():
    rows = [person(2, email="ada@example.com"), person(3), person(4, email="ADA@example.com")]
    assert codes(rows) == [(2, "Email", "duplicate"), (4, "Email", "duplicate")]


def test_validate_chunk_flags_a_key_repeated_in_another_chunk():
    ctx = OrgContext(org_id=1, duplicates={"email": {hash("p2@example.com")}})
    assert codes([person(2), person(3)], ctx=ctx) == [(2, "Email", "duplicate")]


def test_validate_chunk_runs_the_services_cross_field_rule():
    sources = {"code": "Code", "name": "Name", "start_date": "Start", "end_date": "End"}
    row = MappedRow(2, {"code": "web-1", "name": "W", "start_date": date(2026, 5, 1), "end_date": date(2026, 4, 1)},
                    sources)
    [error] = validate_chunk([row], PROJECTS, OrgContext(org_id=1))
    assert (error.column, error.code, row.values["code"]) == ("End", "invalid", "WEB-1")
    assert error.message == "The end date must be on or after the start date (2026-05-01)."


@pytest.mark.parametrize("entity", sorted(ENTITY_SPECS))
def test_entity_spec_limits_come_from_the_record_service(entity):
    spec, service = ENTITY_SPECS[entity], ENTITIES[entity]
    assert {f.column: (f.max_length, f.minimum, f.maximum, f.choices, f.unique) for f in spec.fields} == {
        name: (s.max_length, s.minimum, s.maximum, s.choices, s.unique) for name, s in service.fields.items()}


@pytest.mark.parametrize(("entity", "key", "references"), [
    ("people", "email", {"manager": ("Person", "email")}),
    ("clients", "name", {}),
    ("projects", "code", {"client": ("Client", "name")}),
    ("tasks", "external_id", {"project": ("Project", "code"), "assignee": ("Person", "email")}),
    ("assignments", "external_id",
     {"person": ("Person", "email"), "project": ("Project", "code"), "task": ("Task", "external_id")}),
    ("time_entries", "external_id",
     {"person": ("Person", "email"), "project": ("Project", "code"), "task": ("Task", "external_id")}),
    ("comments", "external_id", {"task": ("Task", "external_id"), "author": ("Person", "email")}),
])
def test_entity_spec_natural_key_and_references(entity, key, references):
    spec = ENTITY_SPECS[entity]
    assert spec.natural_key == key
    assert spec.key_field.required
    assert {f.name: (f.reference.model.__name__, f.reference.key) for f in spec.fields if f.reference} == references
