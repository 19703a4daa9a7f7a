"""JSON: plain arrays and envelopes, values as typed text, per-row problems, broken documents."""

from __future__ import annotations

import json

import pytest

from app.importers import ReaderError, ReaderLimits
from app.importers.readers import PROBLEM_KEY

RECORDS = [{"email": "a@x.io", "hours": 7.50, "active": True, "phone": None}, {"email": "b@x.io", "code": "007"}]
EXPECTED = [
    (1, {"email": "a@x.io", "hours": "7.50", "active": "true", "phone": "", "code": ""}),
    (2, {"email": "b@x.io", "hours": "", "active": "", "phone": "", "code": "007"}),
]


@pytest.mark.parametrize(
    "document",
    [
        '[{"email": "a@x.io", "hours": 7.50, "active": true, "phone": null}, {"email": "b@x.io", "code": "007"}]',
        '{"meta": {"rows": 2}, "people": [{"email": "a@x.io", "hours": 7.50, "active": true, "phone": null},'
        ' {"email": "b@x.io", "code": "007"}]}',
    ],
    ids=["array", "envelope"],
)
def test_json_reader_reads_array_or_envelope_with_values_as_written(write, read_all, document):
    reader, rows = read_all(write("people.json", document))
    assert (reader.headers(None), rows) == (list(EXPECTED[0][1]), EXPECTED)


def test_json_reader_lists_envelope_arrays_as_sheets(write, read_all):
    reader, _ = read_all(write("export.json", json.dumps({"meta": {}, "people": [], "clients": [{"name": "Acme"}]})))
    assert (reader.sheets(), list(reader.rows("clients"))) == (["people", "clients"], [(1, {"name": "Acme"})])


def test_json_reader_reports_nested_values_per_row(write, read_all):
    records = [{"email": "a@x.io", "address": {"city": "Oslo"}}, {"email": "b"}]
    _, rows = read_all(write("nested.json", json.dumps(records)))
    assert rows[0][1][PROBLEM_KEY] == "field 'address' holds an object; expected text, a number, true/false or null"
    assert rows[1] == (2, {"email": "b", "address": ""})


def test_json_reader_reports_record_that_is_not_an_object(write, read_all):
    _, rows = read_all(write("scalars.json", '[{"email": "a"}, 42, ["x"]]'))
    assert [row.get(PROBLEM_KEY, "")[:20] for _, row in rows] == ["", "this record is a bar", "this record is a lis"]


@pytest.mark.parametrize(
    ("document", "message", "row"),
    [
        ('[{"email": "a"}, {"email": ', "not valid JSON", 2),
        ('{"people": {"email": "a"}}', "expected an array of objects", 1),
        ('{"count": 3}', "expected an array of objects", 1),
    ],
)
def test_json_reader_refuses_broken_documents_with_record_number(write, read_all, document, message, row):
    with pytest.raises(ReaderError, match=message) as caught:
        read_all(write("broken.json", document))
    assert caught.value.row == row


def test_json_reader_refuses_over_long_value_with_row_and_field(write, read_all):
    with pytest.raises(ReaderError) as caught:
        read_all(write("long.json", json.dumps([{"bio": "ok"}, {"bio": "x" * 100}])), ReaderLimits(max_field_chars=50))
    assert (caught.value.row, caught.value.column) == (2, "bio")
