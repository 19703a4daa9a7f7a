"""The map step: column suggestions and cell coercion, pure functions over plain data."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.importers import ENTITY_SPECS, map_row, suggest_mapping
from app.importers.mapping import Invalid, coerce_boolean, coerce_date, coerce_decimal
from app.importers.readers import PROBLEM_KEY

PEOPLE = ENTITY_SPECS["people"]


@pytest.mark.parametrize(("entity", "header", "field"), [
    ("people", "email", "email"),
    ("people", "E-mail", "email"),
    ("people", "Email address", "email"),
    ("people", "Full name", "name"),
    ("people", "Hourly Rate", "hourly_rate"),
    ("people", "manager_id", "manager"),
    ("people", "Deparment", "department"),          # typo: fuzzy match
    ("projects", "Start", "start_date"),
    ("projects", "Client", "client"),
    ("time_entries", "Hours", "hours"),
    ("time_entries", "Date", "spent_on"),
    ("tasks", "Project code", "project"),
])
def test_suggest_mapping_finds_the_field(entity, header, field):
    assert suggest_mapping([header], ENTITY_SPECS[entity]) == {header: field}


def test_suggest_mapping_leaves_unknown_columns_unmapped():
    assert suggest_mapping(["Favourite colour"], PEOPLE) == {"Favourite colour": None}


def test_suggest_mapping_gives_each_field_to_the_strongest_match_only():
    mapping = suggest_mapping(["Work email", "Email"], PEOPLE)
    assert mapping == {"Work email": None, "Email": "email"}


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-12", date(2026, 3, 12)),
    ("2026-03-12T00:00:00", date(2026, 3, 12)),
    ("2026/03/12", date(2026, 3, 12)),
    ("12.03.2026", date(2026, 3, 12)),
    ("12 Mar 2026", date(2026, 3, 12)),
    ("12 March 2026", date(2026, 3, 12)),
    ("Mar 12, 2026", date(2026, 3, 12)),
    ("46093", date(2026, 3, 12)),        # Excel serial
    ("46093.75", date(2026, 3, 12)),     # a serial with a time of day
    ("1", date(1900, 1, 1)),
    ("59", date(1900, 2, 28)),
    ("61", date(1900, 3, 1)),
])
def test_coerce_date_accepts_iso_text_formats_and_excel_serials(text, expected):
    assert coerce_date(text) == expected


@pytest.mark.parametrize("text", ["03/12/2026", "2026-02-30", "60", "0", "soon", "2958466"])
def test_coerce_date_refuses_ambiguous_or_impossible_dates(text):
    with pytest.raises(Invalid):
        coerce_date(text)


@given(st.dates(min_value=date(1900, 3, 1), max_value=date(9999, 12, 31)))
def test_coerce_date_excel_serial_matches_the_calendar(day):
    serial = (day - date(1899, 12, 30)).days
    assert coerce_date(str(serial)) == day == coerce_date(day.isoformat())


@pytest.mark.parametrize(("text", "expected"), [
    ("12.5", Decimal("12.5")), ("12,5", Decimal("12.5")), ("1.234,50", Decimal("1234.50")),
    ("1,234.50", Decimal("1234.50")), ("1 234,5", Decimal("1234.5")), ("-3", Decimal(-3)),
])
def test_coerce_decimal_accepts_either_decimal_separator(text, expected):
    assert coerce_decimal(text) == expected


@pytest.mark.parametrize("text", ["twelve", "NaN", "Infinity", "1.2.3"])
def test_coerce_decimal_refuses_non_numbers(text):
    with pytest.raises(Invalid):
        coerce_decimal(text)


@pytest.mark.parametrize(("text", "expected"), [
    *[(word, True) for word in ("yes", "Yes", "TRUE", "y", "1", "on")],
    *[(word, False) for word in ("no", "False", "N", "0", "off")],
])
def test_coerce_boolean_reads_common_words(text, expected):
    assert coerce_boolean(text) is expected


def test_map_row_types_every_mapped_cell():
    raw = {"Mail": " ADA@example.com ", "Name": "Ada", "Skills": "maths, , poetry", "Rate": "12,5", "Act": "no",
           "Ignored": "x"}
    mapping = {"Mail": "email", "Name": "name", "Skills": "skills", "Rate": "hourly_rate", "Act": "active",
               "Ignored": None}
    values, errors = map_row(raw, mapping, PEOPLE, row=2)
    assert errors == []
    assert values == {"email": "ADA@example.com", "name": "Ada", "skills": ["maths", "poetry"],
                      "hourly_rate": Decimal("12.5"), "active": False}


def test_map_row_blank_cells_mean_empty_or_the_default():
    mapping = {"a": "title", "b": "skills", "c": "active"}
    values, _ = map_row({"a": " ", "b": "", "c": ""}, mapping, PEOPLE)
    assert values == {"title": None, "skills": [], "active": True}


def test_map_row_error_names_row_column_value_and_expectation():
    _, [error] = map_row({"Start": "31/02/2026"}, {"Start": "start_date"}, ENTITY_SPECS["projects"], row=7)
    assert (error.row, error.column, error.field, error.value, error.code) == (7, "Start", "start_date",
                                                                                "31/02/2026", "type")
    assert error.message.startswith("'31/02/2026' is not a date as YYYY-MM-DD")


def test_map_row_enum_accepts_labels_and_lists_choices_when_wrong():
    spec = ENTITY_SPECS["projects"]
    values, _ = map_row({"s": "On hold"}, {"s": "status"}, spec)
    _, [error] = map_row({"s": "paused"}, {"s": "status"}, spec, row=3)
    assert values == {"status": "on_hold"}
    assert error.message == "'paused' is not one of planned, active, on_hold, completed, cancelled."


def test_map_row_reports_the_readers_row_problem():
    raw = {"e": "ada@example.com", PROBLEM_KEY: "this row has 3 cells but the header has 2 columns"}
    _, [error] = map_row(raw, {"e": "email"}, PEOPLE, row=4)
    assert (error.row, error.column, error.code, error.message) == (
        4, None, "malformed", "this row has 3 cells but the header has 2 columns")


def test_map_row_refuses_a_mapping_to_an_unknown_field():
    with pytest.raises(ValueError, match="unknown people fields in the mapping: shoe_size"):
        map_row({"x": "1"}, {"x": "shoe_size"}, PEOPLE)


def test_excel_serial_of_the_last_supported_day():
    assert coerce_date("2958465") == date(1899, 12, 30) + timedelta(days=2958465)
