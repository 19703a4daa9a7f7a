"""The reader contract shared by every file format, its limits and its one error type.

Readers are the first stage of the import pipeline (read → map → validate → load). They know nothing
about entities, Flask or the database: they turn a file into ``(row_number, {header: raw text})`` pairs,
one at a time, so a 1,000,000-row file never sits in memory.

Per-row problems (a ragged CSV row, a nested JSON value) are not exceptions: one bad row must not
block the file. The row still comes out, carrying :data:`PROBLEM_KEY` (a message the caller turns into
a ``RowError``) and, for ragged rows, :data:`EXTRA_KEY` (the surplus cells as a JSON list, so the error
file can show them). Only a file that cannot be read on (hostile, corrupt, over a limit) raises
:class:`ReaderError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from app.importers.formulas import restore_formula_text

PROBLEM_KEY = "__problem__"
EXTRA_KEY = "__extra__"

# A data row by position, as the import pipeline's columnar path takes it: (row number, cells in header
# order, ``None``) or, for a row with a problem (ragged, values left of the table), the row as
# :func:`make_row` builds it in place of ``None``. Cells are as read: not length-checked, formulas not restored.
DataRow = tuple[int, list[str], "dict[str, str] | None"]

MB = 1024 * 1024


class ReaderError(Exception):
    """A file that cannot be read; ``row`` and ``column`` say where when that is known."""

    def __init__(self, message: str, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row
        self.column = column

    def __str__(self) -> str:
        where = [f"row {self.row}" if self.row is not None else "", f"column {self.column!r}" if self.column else ""]
        prefix = ", ".join(part for part in where if part)
        return f"{prefix}: {self.message}" if prefix else self.message


@dataclass(frozen=True)
class ReaderLimits:
    """Caps that keep a hostile or accidental file from exhausting the worker.

    The zip caps are checked from the archive's directory before any member is inflated; the
    cell cap is checked while streaming, because a sheet's declared dimension can lie.
    """

    max_bytes: int = 200 * MB                  # the upload itself (the default)
    max_field_chars: int = 32 * 1024           # one cell; Excel's own cell limit is 32,767 characters
    max_line_chars: int = 4 * MB               # one physical CSV line, so a file with no newline is refused early
    max_uncompressed_bytes: int = 1024 * MB    # sum of all zip members once inflated
    max_member_ratio: int = 200                # inflated / compressed, per member over ratio_floor_bytes
    ratio_floor_bytes: int = 1 * MB            # tiny members legitimately compress 1000:1; ignore their ratio
    max_members: int = 10_000                  # a real workbook has tens of parts
    max_cells: int = 20_000_000                # rows × columns streamed from one sheet
    in_memory_sheet_bytes: int = 128 * MB      # sheet XML up to this size goes to calamine (fast, holds the sheet)
    header_scan_rows: int = 20                 # rows examined to find the header row


@runtime_checkable
class Reader(Protocol):
    """What every format offers the pipeline (STYLE "Importer")."""

    def sheets(self) -> list[str]:
        """Sheet names for workbooks; ``[]`` for single-table formats (CSV, JSON, XML)."""
        ...

    def headers(self, sheet: str | None) -> list[str]:
        """Column names, unique and non-empty (see :func:`unique_headers`)."""
        ...

    def rows(self, sheet: str | None) -> Iterator[tuple[int, dict[str, str]]]:
        """``(row number as the user sees it, cells keyed by header)``, generated lazily."""
        ...


def unique_headers(cells: Sequence[str]) -> list[str]:
    """Name blank header cells ``column_<n>`` and suffix repeats ``_2``, ``_3`` so no cell is lost in the dict."""
    names: list[str] = []
    seen: set[str] = set()
    for index, cell in enumerate(cells, start=1):
        base = cell.strip() or f"column_{index}"
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        names.append(name)
    return names


def trim(cells: list[str]) -> list[str]:
    """Drop trailing empty cells: spreadsheets and CSV writers pad rows with them.

    Most rows have none and come back as they are, not copied: the readers hand over fresh lists.
    """
    if cells and cells[-1] != "":
        return cells
    end = len(cells)
    while end and cells[end - 1] == "":
        end -= 1
    return cells[:end]


def detect_header_row(sample: Sequence[tuple[int, Sequence[str], bool]]) -> int:
    """Pick the header among the first rows: ``(row_number, cells, all_text)`` triples, empty rows excluded.

    A title row (one merged cell) or notes above the table have fewer filled cells than the table, so
    the header is the first all-text row filled at least half as wide as the widest row in the sample
    and, when it has a single filled cell, with rows below it that typically (median) have one too: in a
    two-column table a one-cell title is half as wide as the widest row, but narrower than the rows under it.
    """
    if not sample:
        return 1
    filled = [sum(1 for cell in cells if cell) for _, cells, _ in sample]
    widest = max(filled)
    for index, (number, _, all_text) in enumerate(sample):
        below = sorted(filled[index + 1:])
        typical = below[len(below) // 2] if below else 0
        if all_text and filled[index] * 2 >= widest and filled[index] >= min(typical, 2):
            return number
    return sample[0][0]


def make_row(
    headers: list[str], cells: list[str], row: int, limits: ReaderLimits, stray: Sequence[str] = ()
) -> dict[str, str]:
    """Key cells by header, pad short rows, flag long ones, and refuse an over-long field with its place.

    A text cell our exports neutralised against formula injection (``'=1+1``) gets its one added quote
    removed, so a CSV or XLSX export re-imports unchanged (see :mod:`app.importers.formulas`).
    """
    if cells and max(map(len, cells)) > limits.max_field_chars:  # one C-level pass on the hot path
        index = next(i for i, cell in enumerate(cells) if len(cell) > limits.max_field_chars)
        column = headers[index] if index < len(headers) else f"column_{index + 1}"
        raise ReaderError(
            f"this cell holds {len(cells[index]):,} characters; the limit is {limits.max_field_chars:,}", row, column
        )
    if "\n'" in "\n" + "\n".join(cells):  # one C-level pass; rarely true, then check each cell
        cells = [restore_formula_text(cell) if cell[:1] == "'" else cell for cell in cells]
    record = dict(zip(headers, cells, strict=False))
    for header in headers[len(cells):]:
        record[header] = ""
    if len(cells) > len(headers):
        extra = cells[len(headers):]
        record[EXTRA_KEY] = json.dumps(extra, ensure_ascii=False)
        record[PROBLEM_KEY] = (
            f"this row has {len(cells)} cells but the header has {len(headers)} columns; "
            f"extra values: {', '.join(repr(value) for value in extra[:5])}"
        )
    if stray:
        message = f"values left of the table's first column: {', '.join(repr(value) for value in stray[:5])}"
        record[PROBLEM_KEY] = f"{record[PROBLEM_KEY]}; {message}" if PROBLEM_KEY in record else message
    return record


def data_rows(headers: list[str], table: Iterator[tuple[int, list[str], list[str]]],
              limits: ReaderLimits) -> Iterator[DataRow]:
    """:func:`split_table`'s rows as :data:`DataRow`: short rows padded, problem rows made into dicts."""
    width = len(headers)
    padding = [""] * width
    for number, cells, stray in table:
        size = len(cells)
        if size > width or stray:
            yield number, cells, make_row(headers, cells, number, limits, stray)
        else:
            yield number, cells if size == width else cells + padding[size:], None


def scan_header(records: Iterator[tuple[int, list[str], bool]], limits: ReaderLimits) -> int:
    """Detect the header row from the first ``header_scan_rows`` non-blank records."""
    sample: list[tuple[int, Sequence[str], bool]] = []
    for number, cells, all_text in records:
        if any(cell.strip() for cell in cells):
            sample.append((number, cells, all_text))
        if len(sample) >= limits.header_scan_rows:
            break
    return detect_header_row(sample)


def split_table(
    records: Iterator[tuple[int, list[str], bool]], start: int
) -> Iterator[tuple[int, list[str], list[str]]]:
    """Yield ``(header_row, headers, [])`` first, then ``(row, cells, stray)`` for every non-blank row below.

    Blank and whitespace-only rows are skipped rather than reported: spreadsheets and CSV writers leave
    them at the end (and people leave them in the middle) and they never carry data. Columns left of
    the header's first filled cell (a table placed at B3) are dropped; ``stray`` holds any value found
    there so the row can report it instead of losing it silently.
    """
    headers: list[str] | None = None
    offset = 0
    for number, cells, _ in records:
        if number < start:
            continue
        if headers is None:
            offset = next((i for i, cell in enumerate(cells) if cell.strip()), 0)
            headers = unique_headers(cells[offset:])
            yield number, headers, []
        elif "".join(cells).strip():  # one C-level pass; cheaper than any() over a generator
            if offset:
                yield number, cells[offset:], [cell for cell in cells[:offset] if cell.strip()]
            else:
                yield number, cells, []
    if headers is None:
        raise ReaderError("the file has no header row", row=start)
