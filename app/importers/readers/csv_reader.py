"""CSV and TSV, streamed: encoding and dialect decided on a sample, then the file is read line by line.

Encodings, in the order Excel users produce them: UTF-8 with a BOM ("CSV UTF-8"), UTF-16 with a BOM
("Unicode text", always tab separated), plain UTF-8, and the Windows default cp1252 when the sample is
not valid UTF-8. The choice is made on the first 64 KiB; a later byte the chosen codec cannot decode is
reported with its row and byte offset rather than crashing the worker.

The delimiter is chosen by parsing the sample with each candidate and keeping the first one that splits
every sample row into the same number (> 1) of fields (``csv.Sniffer`` guesses from character
frequencies and is easily fooled by commas inside quoted text). The quote character is the double quote
unless the sample has none and a single quote splits its rows strictly more evenly: asked instead, the
Sniffer took the single quote of ``O'Brien`` or of a formula-neutralised ``'=1+1`` for a quote.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections import Counter
from collections.abc import Iterator
from itertools import repeat
from operator import add

from .base import DataRow, ReaderError, ReaderLimits, data_rows, make_row, scan_header, split_table, trim

SAMPLE_BYTES = 64 * 1024
CHUNK_BYTES = 256 * 1024
DELIMITERS = [",", ";", "\t", "|"]


class CsvReader:
    """One table; ``sheets()`` is empty. Row numbers count records (a quoted newline does not add a row)."""

    def __init__(self, path: str | os.PathLike[str], limits: ReaderLimits, header_row: int | None = None) -> None:
        self.path = path
        self.limits = limits
        with open(path, "rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
        self.encoding, self._skip = _encoding(sample)
        text = codecs.getincrementaldecoder(self.encoding)(errors="replace").decode(sample[self._skip:])
        if len(sample) == SAMPLE_BYTES and "\n" in text:
            text = text[: text.rfind("\n") + 1]  # parse whole lines only
        self.delimiter, self.quotechar = _dialect(text, prefer_tab=self.encoding.startswith("utf-16"))
        self._header_row = header_row

    def sheets(self) -> list[str]:
        return []

    def header_row(self, sheet: str | None = None) -> int:
        """The detected (or overridden) 1-based header row, for the wizard's "header row" control."""
        if self._header_row is None:
            self._header_row = scan_header(self._records(), self.limits)
        return self._header_row

    def headers(self, sheet: str | None = None) -> list[str]:
        return next(split_table(self._records(), self.header_row()))[1]

    def table(self, sheet: str | None = None) -> tuple[list[str], Iterator[DataRow]]:
        """The headers and the data rows by position (the import pipeline's fast path; see :data:`.base.DataRow`)."""
        table = split_table(self._records(), self.header_row(sheet))
        headers = next(table)[1]
        return headers, data_rows(headers, table, self.limits)

    def rows(self, sheet: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
        table = split_table(self._records(), self.header_row())
        headers = next(table)[1]
        for number, cells, stray in table:
            yield number, make_row(headers, cells, number, self.limits, stray)

    def _records(self) -> Iterator[tuple[int, list[str], bool]]:
        reader = csv.reader(self._lines(), delimiter=self.delimiter, quotechar=self.quotechar, doublequote=True)
        number = 0  # the last row read: an error is in the next one
        try:
            for number, cells in enumerate(reader, 1):
                yield number, trim(cells), True
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):  # csv's own cap (128 KiB) is above ours
                raise ReaderError(
                    f"a cell is longer than {self.limits.max_field_chars:,} characters", row=number + 1
                ) from exc
            raise ReaderError(f"the CSV is malformed here ({exc})", row=number + 1) from exc
        except ReaderError as exc:
            exc.row = number + 1 if exc.row is None else exc.row
            raise
        except _DecodeFailed as exc:
            raise ReaderError(
                f"byte {exc.offset:,} cannot be read as {self.encoding} (the file mixes text encodings); "
                "save it again as CSV UTF-8",
                row=number + 1,
            ) from exc

    def _lines(self) -> Iterator[str]:
        """Decoded physical lines with their ``\\n``; only ``\\n`` splits, so other separators stay in fields."""
        decoder = codecs.getincrementaldecoder(self.encoding)(errors="strict")
        pending = ""
        offset = self._skip
        with open(self.path, "rb") as handle:
            handle.seek(self._skip)
            while chunk := handle.read(CHUNK_BYTES):
                try:
                    pending += decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    # Hand the csv reader every complete line before the bad byte, so the error names its row.
                    pending += exc.object[: exc.start].decode(self.encoding)
                    yield from map(add, pending.split("\n")[:-1], repeat("\n"))
                    raise _DecodeFailed(offset + exc.start - (len(exc.object) - len(chunk))) from exc
                offset += len(chunk)
                lines = pending.split("\n")
                pending = lines.pop()
                if len(pending) > self.limits.max_line_chars:
                    raise ReaderError(f"a line is longer than {self.limits.max_line_chars:,} characters")
                yield from map(add, lines, repeat("\n"))  # C-level: no Python frame per line
            try:
                pending += decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                raise _DecodeFailed(offset) from exc
        if pending:
            yield pending


class _DecodeFailed(Exception):
    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


def _encoding(sample: bytes) -> tuple[str, int]:
    """``(codec, bytes of BOM to skip)`` decided on the sample."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if sample.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2  # an explicit byte order lets a prefix be decoded on its own (error positions)
    if sample.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)  # a cut-off last character is fine
    except UnicodeDecodeError:
        return "cp1252", 0
    return "utf-8", 0


def _dialect(text: str, prefer_tab: bool) -> tuple[str, str]:
    """``(delimiter, quote character)``: the double quote unless a single quote reads the sample more evenly.

    A single quote is also an apostrophe (O'Brien) and the first character of every cell our exports
    neutralise against formulas (``'=1+1``), so it is the quote character only when it makes the rows'
    widths strictly more consistent than the double quote does (``'Smith, J',Paris``).
    """
    delimiter, score = _delimiter(text, '"', prefer_tab)
    if '"' not in text and "'" in text:
        single, single_score = _delimiter(text, "'", prefer_tab)
        if single_score > score:
            return single, "'"
    return delimiter, '"'


def _delimiter(text: str, quotechar: str, prefer_tab: bool) -> tuple[str, tuple[bool, float, int]]:
    """The delimiter and how evenly it splits the sample: (a table at all, share of rows at the usual width, width)."""
    candidates = ["\t", *[d for d in DELIMITERS if d != "\t"]] if prefer_tab else DELIMITERS
    best, best_score = candidates[0], (False, -1.0, 0)
    for delimiter in candidates:
        try:
            parsed = csv.reader(io.StringIO(text), delimiter=delimiter, quotechar=quotechar)
            widths = [len(row) for row in parsed if any(cell.strip() for cell in row)] or [0]
        except csv.Error:
            continue
        # The most common width, not the first row's: a title line above the table must not decide.
        mode = Counter(widths).most_common(1)[0][0]
        share = widths.count(mode) / len(widths)
        score = (mode > 1, share, mode)
        if mode > 1 and share >= 0.5:
            return delimiter, score
        if score > best_score:
            best, best_score = delimiter, score
    return best, best_score
