"""The export writers on their own: formula neutralising, numbers left alone, and the readers undoing it."""

from __future__ import annotations

import csv
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from app.importers import open_reader
from app.importers.exports import UNWRITABLE, Column, ExportTarget, write_export
from app.importers.formulas import neutralise_formula, restore_formula_text

COLUMNS = (Column("name", "string"), Column("budget", "decimal"), Column("due", "date"), Column("tags", "list"))
META = {"entity": "projects", "row_count": 0}


def target(tmp_path: Path, fmt: str, columns=COLUMNS) -> ExportTarget:
    return ExportTarget(tmp_path / f"out.{fmt}", "projects", columns, lambda rows: META | {"row_count": rows})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("=1+1", "'=1+1"), ("+44 20", "'+44 20"), ("-x", "'-x"), ("@SUM(A1)", "'@SUM(A1)"), ("\tcmd", "'\tcmd"),
     ("\rcmd", "'\rcmd"), ("\x00", "'\x00"), ("plain", "plain"), ("", ""), ("'quoted", "'quoted"),
     ("'=already", "''=already"), ("a=b", "a=b")],
)
def test_neutralise_formula_prefixes_only_dangerous_text(text, expected):
    assert neutralise_formula(text) == expected
    assert restore_formula_text(expected) == text


@given(st.text(alphabet=st.sampled_from("'=+-@\tab"), max_size=6))
def test_restore_formula_text_inverts_neutralise_for_any_text(text):
    assert restore_formula_text(neutralise_formula(text)) == text


def test_csv_with_neutralised_cells_and_no_double_quote_reads_back(tmp_path):
    write_export("csv", target(tmp_path, "csv", (Column("name", "string"),)), [[("=x",), ("it's",)]])

    reader = open_reader(tmp_path / "out.csv", "out.csv")
    assert [row["name"] for _, row in reader.rows(None)] == ["=x", "it's"]


def test_csv_neutralises_text_but_not_numbers(tmp_path):
    rows = [("=HYPERLINK(\"x\")", Decimal("-5"), date(2026, 3, 12), ["-a", "b"])]

    write_export("csv", target(tmp_path, "csv"), [rows])

    with open(tmp_path / "out.csv", encoding="utf-8-sig", newline="") as handle:
        assert list(csv.reader(handle)) == [["name", "budget", "due", "tags"],
                                            ["'=HYPERLINK(\"x\")", "-5", "2026-03-12", "'-a, b"]]


def test_xlsx_neutralised_text_is_a_string_cell_and_numbers_stay_numbers(tmp_path):
    rows = [("=1+1", Decimal("-5"), date(2026, 3, 12), [])]

    write_export("xlsx", target(tmp_path, "xlsx"), [rows])

    book = load_workbook(tmp_path / "out.xlsx")
    sheet = book["projects"]
    assert sheet["A2"].value == "'=1+1" and sheet["A2"].data_type == "s"
    assert sheet["B2"].value == -5 and sheet["B2"].data_type == "n"
    assert sheet["C2"].is_date
    assert [[c.value for c in r] for r in book["Metadata"].iter_rows()] == [["entity", "projects"], ["row_count", 1]]


def test_json_writes_numbers_exactly_and_an_empty_array(tmp_path):
    write_export("json", target(tmp_path, "json"), [[("=x", Decimal("12.50"), None, ["a"])]])
    empty = target(tmp_path / "empty", "json")
    write_export("json", empty, [])

    document = json.loads((tmp_path / "out.json").read_text(), parse_float=Decimal)
    assert document["projects"] == [{"name": "=x", "budget": Decimal("12.50"), "due": None, "tags": "a"}]
    assert json.loads(empty.path.read_text()) == {"metadata": {"entity": "projects", "row_count": 0}, "projects": []}
    assert not list(tmp_path.glob("*.body"))


@pytest.mark.parametrize("fmt", ["xml", "xlsx"])
def test_control_characters_xml_and_xlsx_cannot_hold_are_replaced(tmp_path, fmt):
    write_export(fmt, target(tmp_path, fmt, (Column("name", "string"),)), [[("bell\x07 & <b>",)]])

    reader = open_reader(tmp_path / f"out.{fmt}", f"out.{fmt}")
    assert [row for _, row in reader.rows(None)] == [{"name": "bell\ufffd & <b>"}]


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Co", "Cn"), exclude_characters="\r\x00"),
               max_size=10).map(str.strip).filter(bool)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(TEXT, min_size=1, max_size=5), fmt=st.sampled_from(["csv", "xlsx", "json", "xml"]))
def test_written_text_reads_back_unchanged_in_every_format(tmp_path, values, fmt):
    columns = (Column("value", "string"),)
    out = target(tmp_path, fmt, columns)
    if fmt in ("xml", "xlsx"):  # they cannot hold control characters (see the XML test above)
        values = [v for v in values if v == UNWRITABLE.sub("", v)] or ["x"]
    write_export(fmt, out, [[(v,) for v in values]])

    reader = open_reader(out.path, out.path.name)
    assert [row["value"] for _, row in reader.rows(None)] == values


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_readers_drop_exactly_the_neutralising_quote(tmp_path, fmt):
    cells = ["'=1+1", "'plain", "''=x", "'-5", "it's", "'"]
    path = tmp_path / f"hand.{fmt}"
    if fmt == "csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, quoting=csv.QUOTE_ALL).writerows([[f"c{i}" for i in range(len(cells))], cells])
    else:
        from openpyxl import Workbook

        book = Workbook()
        book.active.append([f"c{i}" for i in range(len(cells))])
        book.active.append(cells)
        book.save(path)

    [(_, row)] = list(open_reader(path, path.name).rows(None))

    assert list(row.values()) == ["=1+1", "'plain", "'=x", "-5", "it's", "'"]
