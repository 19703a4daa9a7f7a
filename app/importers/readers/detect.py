"""Decide what a file really is from its bytes, and refuse it before parsing when it is hostile.

The extension is what the user meant; the content is what we would parse. Both must agree, so a PNG
renamed ``people.csv`` or a CSV renamed ``people.xlsx`` gets a clear message instead of a parser crash.
Zip-based workbooks are inspected from the central directory (``infolist``) before a single member is
inflated: a decompression bomb is refused by its declared sizes, and :mod:`zipfile` itself refuses to
inflate a member past its declared size, so lying about the sizes does not get a bomb through either.
"""

from __future__ import annotations

import html
import os
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from .base import ReaderError, ReaderLimits

EXTENSIONS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".tab": "csv",
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".ods": "ods", ".json": "json", ".xml": "xml",
}
LABELS = {
    "csv": "a CSV/TSV text file", "xlsx": "an Excel workbook (.xlsx)", "ods": "an OpenDocument spreadsheet (.ods)",
    "json": "a JSON file", "xml": "an XML file",
}
# Formats people upload by mistake, named so the message can say what the file is.
FOREIGN_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel 97-2003 (.xls) or encrypted file"),
    (b"\x1f\x8b", "a gzip archive"), (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"),
]
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def detect_kind(path: str | os.PathLike[str], filename: str, limits: ReaderLimits) -> str:
    """Return ``csv``, ``xlsx``, ``ods``, ``json`` or ``xml`` for a file whose content matches its name.

    Raises:
        ReaderError: the file is too large, empty, of an unsupported kind, or not what its extension says.
    """
    size = Path(path).stat().st_size
    if size > limits.max_bytes:
        raise ReaderError(f"the file is {size / 1e6:,.1f} MB; the limit is {limits.max_bytes / 1e6:,.1f} MB")
    if size == 0:
        raise ReaderError("the file is empty")
    extension = Path(filename).suffix.lower()
    expected = EXTENSIONS.get(extension)
    if expected is None:
        raise ReaderError(
            f"{filename!r} has an unsupported extension; upload .csv, .tsv, .xlsx, .xlsm, .ods, .json or .xml"
        )
    with open(path, "rb") as handle:
        head = handle.read(4096)
    actual = _sniff(path, head)
    if actual != expected:
        described = actual if actual.startswith(("a ", "an ")) else LABELS[actual]
        raise ReaderError(f"{filename!r} is named like {LABELS[expected]} but its content is {described}")
    if actual in ("xlsx", "ods"):
        inspect_zip(path, limits)
    return actual


def _sniff(path: str | os.PathLike[str], head: bytes) -> str:
    for magic, label in FOREIGN_MAGIC:
        if head.startswith(magic):
            return label
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head.startswith(BOMS[1:]):
        return _text_kind(head.decode("utf-16", errors="ignore"))
    if b"\x00" in head:
        return "a binary file"
    text = head.removeprefix(BOMS[0]).decode("utf-8", errors="ignore") or head.decode("cp1252", errors="replace")
    return _text_kind(text)


def _text_kind(text: str) -> str:
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("<"):
        return "xml"
    if stripped.startswith(("[", "{")):
        return "json"
    return "csv"


def _zip_kind(path: str | os.PathLike[str]) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "mimetype" in names and archive.read("mimetype").strip() == ODS_MIMETYPE:
                return "ods"
    except zipfile.BadZipFile:
        return "a damaged zip archive"
    if "[Content_Types].xml" in names and "xl/workbook.xml" in names:
        return "xlsx"
    if "word/document.xml" in names:
        return "a Word document"
    return "a zip archive that is not a spreadsheet"


def inspect_zip(path: str | os.PathLike[str], limits: ReaderLimits) -> None:
    """Refuse a workbook whose members would inflate past the caps (count, total size, per-member ratio)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ReaderError(f"the workbook is damaged and cannot be opened ({exc})") from exc
    if len(members) > limits.max_members:
        raise ReaderError(f"the workbook has {len(members):,} parts; the limit is {limits.max_members:,}")
    total = 0
    for member in members:
        total += member.file_size
        if total > limits.max_uncompressed_bytes:
            raise ReaderError(
                f"the workbook would expand to more than {limits.max_uncompressed_bytes / 1e6:,.0f} MB "
                "when opened (a decompression bomb or a workbook too large to import)"
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > limits.ratio_floor_bytes and ratio > limits.max_member_ratio:
            raise ReaderError(
                f"the workbook part {member.filename!r} expands {ratio:,.0f} times (limit {limits.max_member_ratio}); "
                "this is how decompression bombs are built, so the file is refused"
            )


def largest_sheet_bytes(path: str | os.PathLike[str]) -> int:
    """Inflated size of the biggest worksheet part: decides whether a sheet may be held in memory."""
    with zipfile.ZipFile(path) as archive:
        sizes = [m.file_size for m in archive.infolist() if m.filename.startswith(("xl/worksheets/", "content.xml"))]
    return max(sizes, default=0)


def verify_zip(path: str | os.PathLike[str], limits: ReaderLimits) -> None:
    """Inflate every member once through :mod:`zipfile`, and refuse a sheet whose cells span too much.

    Needed before handing the file to a native reader that trusts its own zip code: a member whose
    directory entry understates its size fails here (bad CRC) instead of inflating unbounded there.

    The span, read in the same pass: calamine builds a dense grid from the first to the last cell, so a
    5 KB file with cells at A1 and XFD1048576 (or an ODS row of one cell repeated 16,384 times, repeated
    1,048,576 times) asks it for 17 billion cells, and the allocation failure aborts the process, web or
    worker, with no exception to catch. So every XLSX worksheet part and an ODS ``content.xml`` must
    span at most ``limits.max_cells``, counted as calamine places the cells (see :func:`_xlsx_extent`
    and :func:`_ods_extents`), before calamine sees the file.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                with archive.open(member) as stream:
                    if member.filename.startswith("xl/worksheets/") and member.filename.endswith(".xml"):
                        _refuse_span(*_xlsx_extent(_tag_blocks(stream)), limits)
                    elif member.filename == "content.xml":
                        _check_ods_spans(_ods_extents(_tag_blocks(stream)), limits)
                    else:
                        while stream.read(1024 * 1024):
                            pass
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise ReaderError(f"the workbook is damaged or its parts are not what they declare ({exc})") from exc


def _tag_blocks(stream: IO[bytes]) -> Iterator[bytes]:
    """The part in ~1 MB blocks that each end before a ``<``, so no tag is split between two blocks."""
    pending = b""
    while block := stream.read(1024 * 1024):
        data = pending + block
        cut = data.rfind(b"<")
        if cut <= 0:  # no tag starts in this block, or one tag longer than a block: read on
            pending = data
            continue
        pending = data[cut:]
        yield data[:cut]
    yield pending


def _refuse_span(rows: int, columns: int, limits: ReaderLimits) -> None:
    if rows * columns > limits.max_cells:
        raise ReaderError(
            f"a sheet spans {rows:,} rows × {columns:,} columns ({rows * columns:,} cells); the limit is "
            f"{limits.max_cells:,} cells: delete the stray far-away cells or split the file"
        )


# An XLSX sheet, as calamine reads it: a <c> (any namespace prefix) with an r="B7" attribute sits there;
# one without sits right of the previous cell of its row, in the row its <row r="7"> names or, without
# one, the row after the previous <row>. Everything below bounds those positions from above.
WHITESPACE_TO_SPACE = bytes.maketrans(b"\t\n\r/>", b"     ")
CANONICAL_COLUMNS = re.compile(rb'<c r="([A-Za-z]*)')
CANONICAL_CELL_ROWS = re.compile(rb'<c r="[A-Za-z]*([0-9]*)')
CANONICAL_ROWS = re.compile(rb'<row r="[A-Za-z]*([0-9]*)')
SHEET_TAGS = re.compile(rb"""<(/?)(?:[^\s/>:]+:)?(row|c)(?=[\s/>])((?:[^>"']|"[^"]*"|'[^']*')*)>""")
R_ATTRIBUTE = re.compile(rb"""(?:^|\s)r\s*=\s*(?:"([^"]*)"|'([^']*)')""")
CELL_REFERENCE = re.compile(rb"([A-Za-z]*)([0-9]+)")


def _xlsx_extent(blocks: Iterable[bytes]) -> tuple[int, int]:
    """The highest row and column (1-based) any cell of a worksheet part can land in.

    Fast path, for the sheets every writer produces: when each cell tag of a block is ``<c r="...`` and
    each row tag ``<row r="...``, the block's references are the positions. Any other block (cells
    without a reference, prefixed or oddly spaced tags, single quotes) is walked tag by tag as
    calamine walks it, from a state that never trails calamine's. A reference calamine cannot parse
    makes it refuse the sheet, so such a cell only needs counting somewhere plausible.
    """
    highest_row = highest_column = 0
    row, next_column = 1, 1  # where a cell without a reference would go
    for block in blocks:
        text = block.translate(WHITESPACE_TO_SPACE)
        columns, rows = CANONICAL_COLUMNS.findall(text), CANONICAL_ROWS.findall(text)
        if (len(columns) == text.count(b"<c ") and len(rows) == text.count(b"<row ")
                and b":c " not in text and b":row " not in text):
            numbers = set(rows)
            numbers.update(CANONICAL_CELL_ROWS.findall(text))
            highest_row = max(highest_row, max((int(n) for n in numbers if n), default=0))
            highest_column = max(highest_column, max(map(_column_index, set(columns)), default=0))
            # Cells without a reference in a later block continue from here at the latest.
            row, next_column = max(row, highest_row + 1), max(next_column, highest_column + 1)
            continue
        for match in SHEET_TAGS.finditer(block):
            closing, name, attributes = match.groups()
            if closing:
                if name == b"row":
                    row, next_column = row + 1, 1
                continue
            found = R_ATTRIBUTE.search(attributes)
            value = CELL_REFERENCE.fullmatch(found[1] or found[2] or b"") if found else None
            self_closing = attributes.endswith(b"/")
            if name == b"row":
                if value:
                    number = int(value[2])
                    # <row r="5"/> may be skipped or read as a row: stay at or above both.
                    row = max(row, number) + 1 if self_closing else number
                    highest_row = max(highest_row, number)
                elif self_closing:
                    row += 1
                if self_closing:
                    next_column = 1
                continue
            if value and value[1]:
                cell_row, column = int(value[2]), _column_index(value[1])
                next_column = max(next_column, column + 1) if self_closing else column + 1
            elif value is None:
                cell_row, column = row, next_column
                next_column += 1
            else:
                continue  # r="12": no column, calamine refuses the file
            highest_row, highest_column = max(highest_row, cell_row), max(highest_column, column)
    return highest_row, highest_column


def _column_index(letters: bytes) -> int:
    index = 0
    for letter in letters.upper():
        index = index * 26 + letter - ord("A") + 1
    return index


# An ODS content.xml, as calamine reads it: every table is parsed on open; a row or cell repeated n
# times (table:number-rows-repeated / table:number-columns-repeated) counts n times, but only up to the
# last row and cell that hold a value: LibreOffice ends every sheet with repeated empty rows and cells.
ODS_TAGS = re.compile(
    rb"""<(/?)(table:table|table:table-row|table:table-cell|table:covered-table-cell)(?=[\s/>])"""
    rb"""((?:[^>"']|"[^"]*"|'[^']*')*)>"""
)
ROWS_REPEATED = re.compile(rb"""\stable:number-rows-repeated\s*=\s*(?:"([^"]*)"|'([^']*)')""")
COLUMNS_REPEATED = re.compile(rb"""\stable:number-columns-repeated\s*=\s*(?:"([^"]*)"|'([^']*)')""")
ODS_VALUE = re.compile(rb"""\s(?:office:[\w-]+|table:formula)\s*=""")


def _ods_extents(blocks: Iterable[bytes]) -> list[tuple[int, int]]:
    """Each table's rows and columns up to its last value, counted from A1 with repeats expanded."""
    spans: list[tuple[int, int]] = []
    depth = rows = last_row = columns = 0
    row_repeats = column = last_column = 0
    for block in blocks:
        for match in ODS_TAGS.finditer(block):
            closing, name, attributes = match.groups()
            opening_row = name == b"table:table-row" and not closing
            if name == b"table:table":
                if closing:
                    depth -= 1
                    if depth == 0:
                        spans.append((last_row, columns))
                elif not attributes.endswith(b"/"):
                    if depth == 0:
                        rows = last_row = columns = 0
                    depth += 1
                continue
            count = _repeats((ROWS_REPEATED if opening_row else COLUMNS_REPEATED).search(attributes))
            if opening_row:
                row_repeats, column, last_column = count, 0, 0
            elif not closing:  # a cell
                column += count
                if ODS_VALUE.search(attributes):
                    last_column = column
            if closing and name == b"table:table-row" or opening_row and attributes.endswith(b"/"):
                if last_column:
                    last_row, columns = rows + row_repeats, max(columns, last_column)
                rows += row_repeats
                row_repeats, column, last_column = 0, 0, 0
    return spans


def _repeats(attribute: re.Match[bytes] | None) -> int:
    """A repeat count; calamine unescapes it (``&#49;0`` is 10), and refuses what is not a number."""
    if attribute is None:
        return 1
    try:
        return int(html.unescape((attribute[1] or attribute[2] or b"").decode("utf-8", "replace")))
    except ValueError:
        return 1


def _check_ods_spans(spans: list[tuple[int, int]], limits: ReaderLimits) -> None:
    """Each table within the cap, and all of them together too: calamine holds every table at once."""
    for rows, columns in spans:
        _refuse_span(rows, columns, limits)
    total = sum(rows * columns for rows, columns in spans)
    if total > limits.max_cells:
        raise ReaderError(
            f"the workbook's {len(spans)} sheets span {total:,} cells together (all are read at once); "
            f"the limit is {limits.max_cells:,} cells: delete the stray far-away cells or split the file"
        )
