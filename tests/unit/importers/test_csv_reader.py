"""CSV/TSV reading: encodings Excel produces, delimiters, quoting, ragged rows and broken bytes."""

from __future__ import annotations

import json

import pytest

from app.importers import ReaderError, ReaderLimits
from app.importers.formulas import restore_formula_text
from app.importers.readers import EXTRA_KEY, PROBLEM_KEY

PEOPLE = [{"email": "zoe@example.com", "name": "Zoë Ångström"}, {"email": "jose@example.com", "name": "José Müller"}]


def _table(delimiter: str) -> str:
    lines = [delimiter.join(PEOPLE[0])] + [delimiter.join(person.values()) for person in PEOPLE]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("utf8.csv", _table(",").encode("utf-8")),
        ("utf8-bom.csv", b"\xef\xbb\xbf" + _table(",").encode("utf-8")),
        ("excel-cp1252.csv", _table(";").encode("cp1252")),
        ("unicode-text.txt", _table("\t").encode("utf-16")),  # Excel "Unicode text": UTF-16 LE with BOM, tabs
        ("tabs.tsv", _table("\t").encode("utf-8")),
        ("pipes.csv", _table("|").encode("utf-8")),
    ],
)
def test_csv_reader_reads_excel_encodings_and_delimiters(write, read_all, name, content):
    reader, rows = read_all(write(name, content))
    assert reader.headers(None) == ["email", "name"]
    assert rows == [(2, PEOPLE[0]), (3, PEOPLE[1])]


def test_csv_reader_keeps_quoted_newlines_and_counts_records_not_lines(write, read_all):
    _, rows = read_all(write("notes.csv", 'email,note\na@x.io,"line one\nline ""two"""\nb@x.io,plain\n'))
    assert rows == [(2, {"email": "a@x.io", "note": 'line one\nline "two"'}), (3, {"email": "b@x.io", "note": "plain"})]


def test_csv_reader_detects_single_quote_as_quote_character(write, read_all):
    _, rows = read_all(write("single.csv", "name,city\n'Smith, J',Paris\n'Doe, A',Lyon\n"))
    assert rows[0][1] == {"name": "Smith, J", "city": "Paris"}


def test_csv_reader_reports_ragged_row_without_stopping(write, read_all):
    _, rows = read_all(write("ragged.csv", "a,b\n1,2\n3,4,5,6\n7\n"))
    ragged = rows[1][1]
    assert (rows[1][0], ragged["a"], ragged["b"]) == (3, "3", "4")
    assert json.loads(ragged[EXTRA_KEY]) == ["5", "6"]
    assert "4 cells but the header has 2 columns" in ragged[PROBLEM_KEY]
    assert rows[2] == (4, {"a": "7", "b": ""})


def test_csv_reader_ignores_blank_rows_but_keeps_row_numbers(write, read_all):
    _, rows = read_all(write("blanks.csv", "a,b\n1,2\n,\n  , \n3,4\n\n\n,,\n"))
    assert [number for number, _ in rows] == [2, 5]


def test_csv_reader_names_blank_and_repeated_headers(write):
    from app.importers import open_reader

    path = write("dupes.csv", "email,,email,name\n1,2,3,4\n")
    assert open_reader(path, path.name).headers(None) == ["email", "column_2", "email_2", "name"]


def test_csv_reader_finds_header_below_title_lines(write):
    from app.importers import open_reader

    reader = open_reader(write("titled.csv", "People export\n\nemail,name,phone\na@x.io,A,1\n"), "titled.csv")
    assert (reader.header_row(), reader.headers(None)) == (3, ["email", "name", "phone"])


def test_csv_reader_header_row_override_wins(write, read_all):
    reader, rows = read_all(write("override.csv", "a,b\nc,d\n1,2\n"), header_row=2)
    assert (reader.headers(None), rows) == (["c", "d"], [(3, {"c": "1", "d": "2"})])


def test_csv_reader_refuses_over_long_field_with_row_and_column(write, read_all):
    path = write("long.csv", "email,bio\na@x.io,short\nb@x.io," + "x" * 40_000 + "\n")
    with pytest.raises(ReaderError) as caught:
        read_all(path)
    assert (caught.value.row, caught.value.column) == (3, "bio")
    assert "40,000 characters; the limit is 32,768" in caught.value.message


def test_csv_reader_refuses_field_past_csv_module_cap_with_row(write, read_all):
    path = write("huge.csv", 'email,bio\na@x.io,"' + "y" * 200_000 + '"\n')
    with pytest.raises(ReaderError, match="longer than 32,768 characters") as caught:
        read_all(path)
    assert caught.value.row == 2


def test_csv_reader_reports_undecodable_byte_after_the_sample(write, read_all):
    good = "".join(f"user{i}@example.com,Zoë\n" for i in range(5000)).encode()  # > 64 KiB sample of UTF-8
    path = write("mixed.csv", b"email,name\n" + good + b"late@example.com,Caf\x81\n")
    with pytest.raises(ReaderError, match=r"byte [\d,]+ cannot be read as utf-8") as caught:
        read_all(path)
    assert caught.value.row == 5002


def test_csv_reader_refuses_a_line_without_end(write, read_all):
    limits = ReaderLimits(max_line_chars=1000)
    with pytest.raises(ReaderError, match="longer than 1,000 characters"):
        read_all(write("oneline.csv", "a,b\n" + "z" * 300_000), limits)


def test_csv_reader_skips_one_cell_title_above_two_column_table(write):
    from app.importers import open_reader

    reader = open_reader(write("narrow.csv", "People\n\nemail,name\na@x.io,A\nb@x.io,B\n"), "narrow.csv")
    assert (reader.header_row(), reader.headers(None)) == (3, ["email", "name"])


def test_csv_reader_one_column_table_keeps_its_header(write):
    from app.importers import open_reader

    reader = open_reader(write("single.csv", "email\na@x.io\nb@x.io\n"), "single.csv")
    assert (reader.header_row(), reader.headers(None)) == (1, ["email"])


@pytest.mark.parametrize("text", ["a,b,c,d,e\n,,',',\n", "name,note\nO'Brien,it's fine\nD'Arcy,'=1+1\n"])
def test_csv_reader_keeps_apostrophes_when_double_quotes_read_the_rows_evenly(write, read_all, text):
    """A single quote that is an apostrophe or a formula's neutralising quote is not a quote character."""
    reader, rows = read_all(write("apostrophes.csv", text))
    expected = [line.split(",") for line in text.splitlines()]
    assert reader.headers(None) == expected[0]
    assert [list(row.values()) for _, row in rows] == [
        [restore_formula_text(cell) for cell in cells] for cells in expected[1:]]
