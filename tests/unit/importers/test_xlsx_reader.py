"""Workbooks: real-world layouts (title rows, serial dates, formulas), both engines, LibreOffice output."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import pytest
import xlsxwriter

from app.importers import ReaderError, ReaderLimits, open_reader
from app.importers.readers import PROBLEM_KEY, XlsxReader

ENGINES = ["calamine", "openpyxl"]
EXPECTED_REPORT = [
    (4, {"email": "ada@example.com", "hired_on": "2023-03-15", "hours": "7.5", "total": "15", "active": "true"}),
    (5, {"email": "bob@example.com", "hired_on": "2024-02-29", "hours": "8", "total": "16", "active": "false"}),
    (7, {"email": "cy@example.com", "hired_on": "", "hours": "", "total": "0", "active": ""}),
]


def _report_workbook(path: Path) -> Path:
    """What an Excel user hands over: a merged title, a blank row, the table from B3, padding below and right."""
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Report")
    date = book.add_format({"num_format": "dd/mm/yyyy"})
    sheet.merge_range("B1:F1", "Timesheet export, March", book.add_format({"bold": True}))
    sheet.write_row("B3", ["email", "hired_on", "hours", "total", "active"])
    sheet.write_row("B4", ["ada@example.com"])
    sheet.write_number("C4", 45000, date)  # a serial number in a date-formatted cell
    sheet.write_datetime("C5", dt.datetime(2024, 2, 29), date)
    sheet.write_row("B5", ["bob@example.com"])
    for row, hours, total, active in [(4, 7.5, 15, True), (5, 8, 16, False)]:
        sheet.write_number(f"D{row}", hours)
        sheet.write_formula(f"E{row}", f"=D{row}*2", None, total)  # cached value, as Excel saves it
        sheet.write_boolean(f"F{row}", active)
    sheet.write_row("B7", ["cy@example.com"])
    sheet.write_formula("E7", "=D7*2", None, 0)
    sheet.write_blank("H20", None, date)  # formatted but empty: trailing rows and columns to ignore
    book.add_worksheet("Notes").write("A1", "nothing to import")
    book.close()
    return path


@pytest.fixture
def report(tmp_path: Path) -> Path:
    return _report_workbook(tmp_path / "report.xlsx")


@pytest.mark.parametrize("engine", ENGINES)
def test_xlsx_reader_finds_header_under_merged_title(report, engine):
    reader = XlsxReader(report, ReaderLimits(), engine=engine)
    assert (reader.header_row(None), reader.headers(None)) == (3, ["email", "hired_on", "hours", "total", "active"])


@pytest.mark.parametrize("engine", ENGINES)
def test_xlsx_reader_reads_serial_dates_formulas_and_booleans(report, engine):
    assert list(XlsxReader(report, ReaderLimits(), engine=engine).rows(None)) == EXPECTED_REPORT


@pytest.mark.parametrize("engine", ENGINES)
def test_xlsx_reader_lists_worksheets_and_reads_the_chosen_one(report, engine):
    reader = XlsxReader(report, ReaderLimits(), engine=engine)
    assert reader.sheets() == ["Report", "Notes"]
    assert (reader.headers("Notes"), list(reader.rows("Notes"))) == (["nothing to import"], [])


@pytest.mark.parametrize("engine", ENGINES)
def test_xlsx_reader_header_row_override_wins(report, engine):
    reader = XlsxReader(report, ReaderLimits(), header_row=4, engine=engine)
    assert reader.headers(None)[:2] == ["ada@example.com", "2023-03-15"]


def test_xlsx_reader_refuses_unknown_sheet_naming_the_real_ones(report):
    with pytest.raises(ReaderError, match="no sheet named 'People'; its sheets are Report, Notes"):
        open_reader(report, report.name).headers("People")


@pytest.mark.parametrize("engine", ENGINES)
def test_xlsx_reader_caps_cells_while_streaming(report, engine):
    with pytest.raises(ReaderError, match="more than 12 cells|the limit is 12"):
        list(XlsxReader(report, ReaderLimits(max_cells=12), engine=engine).rows(None))


def test_xlsx_reader_auto_streams_sheets_too_big_to_hold(report):
    assert XlsxReader(report, ReaderLimits(in_memory_sheet_bytes=10)).engine == "openpyxl"
    assert XlsxReader(report, ReaderLimits()).engine == "calamine"


def test_xlsx_reader_reports_values_left_of_the_table(tmp_path):
    book = xlsxwriter.Workbook(str(tmp_path / "stray.xlsx"))
    sheet = book.add_worksheet()
    sheet.write_row("B1", ["email", "name"])
    sheet.write_row("A2", ["note!", "a@x.io", "A"])
    book.close()
    (number, row), = open_reader(tmp_path / "stray.xlsx", "stray.xlsx").rows(None)
    assert (number, row["email"], row[PROBLEM_KEY]) == (2, "a@x.io", "values left of the table's first column: 'note!'")


def _people_csv(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(
        "email,name,hired_on,hours,total\n"
        "zoe@example.com,Zoë Ångström,2024-03-01,7.5,=2*3\n"
        "jo@example.com,José Müller,2023-12-31,8,=D3*2\n",
        encoding="utf-8",
    )
    return path


LIBREOFFICE_ROWS = [
    (2, {"email": "zoe@example.com", "name": "Zoë Ångström", "hired_on": "2024-03-01", "hours": "7.5", "total": "6"}),
    (3, {"email": "jo@example.com", "name": "José Müller", "hired_on": "2023-12-31", "hours": "8", "total": "16"}),
]


@pytest.mark.parametrize("target", ["xlsx", "ods"])
def test_xlsx_reader_reads_libreoffice_workbooks(soffice, tmp_path, target):
    converted = soffice(_people_csv(tmp_path), target, formulas=True)
    assert list(open_reader(converted, converted.name).rows(None)) == LIBREOFFICE_ROWS


def test_xlsx_reader_reads_libreoffice_xlsx_with_openpyxl(soffice, tmp_path):
    converted = soffice(_people_csv(tmp_path), "xlsx", formulas=True)
    assert list(XlsxReader(converted, ReaderLimits(), engine="openpyxl").rows(None)) == LIBREOFFICE_ROWS


@pytest.mark.parametrize("engine", ENGINES)
def test_xlsx_reader_skips_one_cell_title_above_two_column_table(tmp_path, engine):
    path = tmp_path / "narrow.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("People")
    sheet.write("A1", "People to import")
    sheet.write_row("A3", ["email", "name"])
    sheet.write_row("A4", ["ada@example.com", "Ada"])
    sheet.write_row("A5", ["bob@example.com", "Bob"])
    book.close()
    reader = XlsxReader(path, ReaderLimits(), engine=engine)
    assert (reader.header_row(None), reader.headers(None)) == (3, ["email", "name"])


@pytest.mark.parametrize("engine", ENGINES)
def test_xlsx_reader_numbers_rows_as_the_sheet_does_when_the_table_starts_low(tmp_path, engine):
    # python-calamine's iter_rows() starts at row 1 but at the first used column: numbering from its
    # ``start`` counted the blank rows above the table twice (row 9 for a header in row 5).
    path = tmp_path / "low.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("People")
    sheet.write_row("C5", ["email", "name"])
    sheet.write_row("C6", ["ada@example.com", "Ada"])
    sheet.write_row("C8", ["bob@example.com", "Bob"])
    book.close()
    reader = XlsxReader(path, ReaderLimits(), engine=engine)
    assert reader.header_row(None) == 5
    assert list(reader.rows(None)) == [
        (6, {"email": "ada@example.com", "name": "Ada"}), (8, {"email": "bob@example.com", "name": "Bob"}),
    ]


def test_xlsx_reader_refuses_a_sparse_sheet_before_calamine_allocates_its_grid(tmp_path):
    """Two cells far apart make a 5 KB file that asked calamine for 512 GB and aborted the process."""
    path = tmp_path / "sparse.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("Data")
    sheet.write_row(0, 0, ["Email", "Name"])
    sheet.write(1_048_575, 16_383, "far away")  # XFD1048576, the last cell of a sheet
    workbook.close()
    assert path.stat().st_size < 10_000
    with pytest.raises(ReaderError) as refused:
        XlsxReader(path, ReaderLimits(), engine="calamine")
    assert "spans 1,048,576 rows × 16,384 columns" in str(refused.value)
    assert "the limit is 20,000,000 cells" in str(refused.value)


def test_xlsx_reader_counts_the_extent_of_a_dense_sheet_as_its_size(tmp_path):
    """The extent check reads the cell references: a full 3 × 2 table is 3 rows × 2 columns, well in."""
    path = tmp_path / "dense.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("Data")
    for number, row in enumerate([["Email", "Name"], ["a@x.io", "A"], ["b@x.io", "B"]]):
        sheet.write_row(number, 0, row)
    workbook.close()
    with pytest.raises(ReaderError, match="spans 3 rows × 2 columns"):
        XlsxReader(path, ReaderLimits(max_cells=5), engine="calamine").headers(None)
    assert XlsxReader(path, ReaderLimits(max_cells=6), engine="calamine").headers(None) == ["Email", "Name"]


def _with_sheet_data(source: Path, target: Path, sheet_data: str) -> Path:
    """``source`` with its first worksheet's ``<sheetData>`` replaced: XML no writer library would produce."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for member in original.infolist():
            data = original.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb"<sheetData.*</sheetData>|<sheetData/>", sheet_data.encode(), data, flags=re.S)
            copy.writestr(member.filename, data)
    return target


FAR_CELL = '<is><t>far away</t></is></c>'
HAND_WRITTEN_SPANS = {
    "lower-case reference": f'<row r="1048576"><c r="xfd1048576" t="inlineStr">{FAR_CELL}</row>',
    "single quotes": f"<row r='1048576'><c r='XFD1048576' t='inlineStr'>{FAR_CELL}</row>",
    "spaces around =": f'<row r = "1048576"><c r = "XFD1048576" t="inlineStr">{FAR_CELL}</row>',
    "namespace prefix": '<x:row xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                        'r="1048576"><x:c r="XFD1048576" t="inlineStr"><x:is><x:t>far</x:t></x:is></x:c></x:row>',
    # Cells without r="..." sit right of the previous one: 16,383 empty <c/> push the last one to XFD.
    "cells without a reference": '<row r="1048576">' + "<c/>" * 16_383 + f'<c t="inlineStr">{FAR_CELL}</row>',
}


@pytest.mark.parametrize("far_row", HAND_WRITTEN_SPANS.values(), ids=HAND_WRITTEN_SPANS.keys())
def test_xlsx_reader_refuses_a_sparse_sheet_however_its_references_are_written(tmp_path, far_row):
    """Each of these aborted the process in calamine (a 512 GB grid) while the extent check read past them."""
    source = tmp_path / "source.xlsx"
    workbook = xlsxwriter.Workbook(str(source))
    workbook.add_worksheet("Data").write_row(0, 0, ["Email", "Name"])
    workbook.close()
    header = '<row r="1"><c r="A1" t="inlineStr"><is><t>Email</t></is></c></row>'
    path = _with_sheet_data(source, tmp_path / "sparse.xlsx", f"<sheetData>{header}{far_row}</sheetData>")
    with pytest.raises(ReaderError, match=r"spans 1,048,576 rows × 16,384 columns .* the limit is 20,000,000 cells"):
        open_reader(path, path.name)


ODS_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
    'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
    '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>'
)


def _ods(path: Path, *tables: str) -> Path:
    """An ODS written by hand (mimetype first and stored, as the format requires): one table per argument."""
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        "<office:body><office:spreadsheet>"
        + "".join(f'<table:table table:name="Sheet{n}">{rows}</table:table>' for n, rows in enumerate(tables, 1))
        + "</office:spreadsheet></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED)
        archive.writestr("META-INF/manifest.xml", ODS_MANIFEST)
        archive.writestr("content.xml", content)
    return path


def _ods_row(*texts: str, repeated: int = 1) -> str:
    cells = "".join(f'<table:table-cell office:value-type="string"><text:p>{t}</text:p></table:table-cell>'
                    for t in texts)
    return f'<table:table-row table:number-rows-repeated="{repeated}">{cells}</table:table-row>'


# How LibreOffice ends every sheet: the rest of the rows and columns, empty, as repeats.
ODS_EMPTY_TAIL = ('<table:table-row table:number-rows-repeated="1048573"><table:table-cell '
                  'table:number-columns-repeated="16384"/></table:table-row>')


def test_xlsx_reader_refuses_an_ods_whose_repeats_span_too_much(tmp_path):
    """One cell repeated 16,384 columns × 1,048,576 rows: a 1 KB file that asks calamine for 17 billion cells."""
    bomb = ('<table:table-row table:number-rows-repeated="1048576"><table:table-cell '
            'table:number-columns-repeated="16384" office:value-type="string"><text:p>x</text:p>'
            "</table:table-cell></table:table-row>")
    path = _ods(tmp_path / "repeats.ods", bomb)
    assert path.stat().st_size < 2_000
    with pytest.raises(ReaderError, match=r"spans 1,048,576 rows × 16,384 columns .* the limit is 20,000,000 cells"):
        open_reader(path, path.name)


def test_xlsx_reader_counts_ods_repeats_only_up_to_the_last_value(tmp_path):
    """LibreOffice's repeated empty rows and cells at the end are not cells; a value after them is."""
    rows = _ods_row("email", "name") + _ods_row("ada@example.com", "Ada")
    assert list(open_reader(_ods(tmp_path / "tail.ods", rows + ODS_EMPTY_TAIL), "tail.ods").rows(None)) == [
        (2, {"email": "ada@example.com", "name": "Ada"}),
    ]
    far = _ods(tmp_path / "far.ods", rows + ODS_EMPTY_TAIL + _ods_row("far away"))
    with pytest.raises(ReaderError, match=r"spans 1,048,576 rows × 2 columns"):
        open_reader(far, far.name, ReaderLimits(max_cells=1_000_000))


def test_xlsx_reader_counts_every_ods_sheet_because_calamine_reads_them_all(tmp_path):
    table = _ods_row("email", "name") + _ods_row("a@x.io", "A", repeated=4)  # 5 rows × 2 columns
    path = _ods(tmp_path / "two.ods", table, table)
    assert open_reader(path, path.name, ReaderLimits(max_cells=20)).headers(None) == ["email", "name"]
    with pytest.raises(ReaderError, match="2 sheets span 20 cells together .* the limit is 19 cells"):
        open_reader(path, path.name, ReaderLimits(max_cells=19))
