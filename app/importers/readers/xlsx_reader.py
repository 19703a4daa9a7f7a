"""XLSX / XLSM (and ODS) workbooks: sheet choice, header-row detection, dates as ISO text, formulas as values.

Two engines, chosen per file by how big its largest sheet is once inflated. ``benchmarks/readers.py``
(200,000 rows × 8 columns, 8.5 MB xlsx, 85 MB of sheet XML, a quiet 2-core box, 2026-11-23), full ``rows()``:

===================  ===========  =========  ===========================================
engine               rows/s       peak RSS   memory as the sheet grows
===================  ===========  =========  ===========================================
python-calamine      ~56,000      239 MB     grows: the whole sheet is parsed in Rust first
openpyxl read-only   ~10,800      117 MB     flat: rows are parsed as they are read
===================  ===========  =========  ===========================================

calamine wins on speed by about 5x, but python-calamine 0.9.1 has no lazy API: ``get_sheet_by_name``
parses the whole sheet (1.5-2 s for the 200,000-row import benchmark, about 100 MB held and 160 MB at
the peak for its 1.6 M text cells), and only ``iter_rows()`` turns it into Python lists one row at a
time. So calamine only gets sheets up to ``ReaderLimits.in_memory_sheet_bytes`` of XML (~2.5 M cells);
bigger sheets go to openpyxl's streaming mode, slower but flat. A reader parses a sheet once and keeps
it for the import's second pass: parsing again costs more than the rows' Python work. ODS is always
calamine (openpyxl cannot read it). Both engines turn a number in a date-formatted cell (how every
spreadsheet stores dates) into a date, and return a formula's cached value.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

from .base import DataRow, ReaderError, ReaderLimits, data_rows, make_row, scan_header, split_table, trim
from .detect import largest_sheet_bytes, verify_zip

HEADER_ZONE = 1000  # rows below this are never header candidates


class XlsxReader:
    """A workbook; ``sheet=None`` means the first worksheet. Row numbers are the spreadsheet's own."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        limits: ReaderLimits,
        header_row: int | None = None,
        *,
        kind: str = "xlsx",
        engine: str = "auto",
    ) -> None:
        self.path = path
        self.limits = limits
        self._header_override = header_row
        self._header_rows: dict[str, int] = {}
        if engine == "auto":
            small = largest_sheet_bytes(path) <= limits.in_memory_sheet_bytes
            engine = "calamine" if kind == "ods" or small else "openpyxl"
        self.engine = engine
        self._loaded: tuple[str, Any] | None = None
        self._book: Any = None
        self._names = self._sheet_names()

    def sheets(self) -> list[str]:
        return list(self._names)

    def header_row(self, sheet: str | None = None) -> int:
        """The detected (or overridden) 1-based header row of a sheet."""
        name = self._resolve(sheet)
        if self._header_override is not None:
            return self._header_override
        if name not in self._header_rows:
            self._header_rows[name] = scan_header(self._records(name), self.limits)
        return self._header_rows[name]

    def headers(self, sheet: str | None = None) -> list[str]:
        return next(split_table(self._records(self._resolve(sheet)), self.header_row(sheet)))[1]

    def table(self, sheet: str | None = None) -> tuple[list[str], Iterator[DataRow]]:
        """The headers and the data rows by position (the import pipeline's fast path; see :data:`.base.DataRow`)."""
        table = split_table(self._records(self._resolve(sheet)), self.header_row(sheet))
        headers = next(table)[1]
        return headers, data_rows(headers, table, self.limits)

    def rows(self, sheet: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
        table = split_table(self._records(self._resolve(sheet)), self.header_row(sheet))
        headers = next(table)[1]
        for number, cells, stray in table:
            yield number, make_row(headers, cells, number, self.limits, stray)

    def _resolve(self, sheet: str | None) -> str:
        if not self._names:
            raise ReaderError("the workbook has no worksheet")
        if sheet is None:
            return self._names[0]
        if sheet not in self._names:
            raise ReaderError(f"the workbook has no sheet named {sheet!r}; its sheets are {', '.join(self._names)}")
        return sheet

    def _records(self, sheet: str) -> Iterator[tuple[int, list[str], bool]]:
        """``(row number, trimmed cell texts, every filled cell was text)``, with the cell cap enforced."""
        cells_seen = 0
        max_cells = self.limits.max_cells
        for number, values in self._raw_rows(sheet):
            try:
                "".join(values)  # hot path: one C-level pass proves every cell is text, as most rows are
                texts, all_text = values, True
            except TypeError:  # numbers, dates, booleans or empty cells (None) to turn into text
                texts = [value if type(value) is str else cell_text(value) for value in values]
                # Only header detection looks at cell types, and only near the top: skip the work further down.
                all_text = number > HEADER_ZONE or all(
                    isinstance(value, str) for value, text in zip(values, texts, strict=True) if text
                )
            if texts and texts[-1] == "":
                texts = trim(texts)  # padding to the sheet's width; most rows of a table have none
            cells_seen += len(texts)
            if cells_seen > max_cells:
                raise ReaderError(f"the sheet {sheet!r} has more than {max_cells:,} cells; split the file", row=number)
            yield number, texts, all_text

    def _sheet_names(self) -> list[str]:
        if self.engine == "calamine":
            import python_calamine

            worksheet = python_calamine.SheetTypeEnum.WorkSheet
            return [m.name for m in self._calamine().sheets_metadata if m.typ == worksheet]
        from openpyxl import load_workbook

        workbook = self._openpyxl(load_workbook)
        try:
            return [ws.title for ws in workbook.worksheets]
        finally:
            workbook.close()

    def _raw_rows(self, sheet: str) -> Iterator[tuple[int, list[Any]]]:
        if self.engine == "calamine":
            loaded = self._calamine_sheet(sheet)
            # python-calamine's iter_rows() starts at row 1 (blank rows above the data come out empty) but at
            # the first used column: pad to absolute columns so both engines agree.
            first_col = (loaded.start or (0, 0))[1]
            if first_col:
                padding = [""] * first_col
                yield from ((number, padding + values) for number, values in enumerate(loaded.iter_rows(), start=1))
            else:
                yield from enumerate(loaded.iter_rows(), start=1)
            return
        from openpyxl import load_workbook

        workbook = self._openpyxl(load_workbook)
        try:
            for number, values in enumerate(workbook[sheet].iter_rows(values_only=True), start=1):
                yield number, list(values)
        finally:
            workbook.close()

    def _calamine(self) -> Any:
        import python_calamine

        if self._book is None:
            verify_zip(self.path, self.limits)
            try:
                self._book = python_calamine.CalamineWorkbook.from_path(os.fspath(self.path))
            except python_calamine.CalamineError as exc:
                raise ReaderError(f"the workbook cannot be read ({exc})") from exc
        return self._book

    def _calamine_sheet(self, sheet: str) -> Any:
        """Load a sheet once per reader: calamine parses the whole sheet on load, so reuse it."""
        if self._loaded is None or self._loaded[0] != sheet:
            self._loaded = None  # let the previous sheet go before loading the next one
            try:
                loaded = self._calamine().get_sheet_by_name(sheet)
            except Exception as exc:  # calamine's XmlError/ZipError/CalamineError share no base class
                raise ReaderError(f"the sheet {sheet!r} cannot be read ({exc})") from exc
            if loaded.height * loaded.width > self.limits.max_cells:
                raise ReaderError(
                    f"the sheet {sheet!r} has {loaded.height * loaded.width:,} cells; "
                    f"the limit is {self.limits.max_cells:,}; split the file"
                )
            self._loaded = (sheet, loaded)
        return self._loaded[1]

    def _openpyxl(self, load_workbook: Any) -> Any:
        try:
            return load_workbook(self.path, read_only=True, data_only=True, keep_links=False)
        except Exception as exc:  # openpyxl raises many types (KeyError, BadZipFile, XML errors) for damaged files
            raise ReaderError(f"the workbook cannot be read ({exc.__class__.__name__}: {exc})") from exc


def cell_text(value: Any) -> str:
    """A spreadsheet value as the text a user would type: ISO dates, ``true``/``false``, no ``.0`` on integers."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()  # a date cell: openpyxl says midnight, calamine says date
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        seconds = int(value.total_seconds())
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return str(value)
