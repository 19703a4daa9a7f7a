"""Decide what a file really is from its bytes, and refuse it before parsing when it is hostile.

The extension is what the user meant; the content is what we would parse. Both must agree, so a PNG
renamed ``people.csv`` or a CSV renamed ``people.xlsx`` gets a clear message instead of a parser crash.
Zip-based workbooks are inspected from the central directory (``infolist``) before a single member is
inflated: a decompression bomb is refused by its declared sizes, and :mod:`zipfile` itself refuses to
inflate a member past its declared size, so lying about the sizes does not get a bomb through either.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
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


ROW_NUMBERS = re.compile(rb'\sr="[A-Z]{0,3}0*([0-9]{1,9})"')  # <row r="12"> and <c r="AB12">: the 12
COLUMN_LETTERS = re.compile(rb'\sr="([A-Z]{1,3})[0-9]')        # <c r="AB12">: the AB


def verify_zip(path: str | os.PathLike[str], limits: ReaderLimits) -> None:
    """Inflate every member once through :mod:`zipfile`, and refuse a worksheet whose cells span too much.

    Needed before handing the file to a native reader that trusts its own zip code: a member whose
    directory entry understates its size fails here (bad CRC) instead of inflating unbounded there.

    The span, read in the same pass: calamine builds a dense grid from the first to the last cell, so a
    5 KB file with cells at A1 and XFD1048576 asks it for 17 billion cells (512 GB), and the allocation
    failure aborts the process, web or worker, with no exception to catch. A worksheet part's row and
    cell references (the largest any names) must span at most ``limits.max_cells``; reading them costs
    ~1.3 s per 200,000 × 8 cells. Cells without a reference (allowed, rare: positions are then implied)
    are not counted.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                with archive.open(member) as stream:
                    if member.filename.startswith("xl/worksheets/") and member.filename.endswith(".xml"):
                        _check_extent(stream, limits)
                    else:
                        while stream.read(1024 * 1024):
                            pass
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise ReaderError(f"the workbook is damaged or its parts are not what they declare ({exc})") from exc


def _check_extent(stream: IO[bytes], limits: ReaderLimits) -> None:
    highest_row, letters, pending = 0, {b""}, b""
    while True:
        block = stream.read(1024 * 1024)
        data = pending + block
        cut = data.rfind(b"<") if block else -1  # keep a tag that may go on in the next block
        data, pending = (data[:cut], data[cut:]) if cut >= 0 else (data, b"")
        highest_row = max(highest_row, max(map(int, ROW_NUMBERS.findall(data)), default=0))
        letters.update(COLUMN_LETTERS.findall(data))
        if not block:
            break
    rows, columns = highest_row, _column_index(max(letters, key=lambda c: (len(c), c)).decode())
    if rows * columns > limits.max_cells:
        raise ReaderError(
            f"a sheet spans {rows:,} rows × {columns:,} columns ({rows * columns:,} cells, mostly "
            f"empty); the limit is {limits.max_cells:,} cells: delete the stray far-away cells "
            "or split the file"
        )


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index
