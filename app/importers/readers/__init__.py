"""Streaming readers: one per file format, all behind :class:`~.base.Reader`, opened by :func:`open_reader`."""

from __future__ import annotations

import os

from .base import EXTRA_KEY, PROBLEM_KEY, Reader, ReaderError, ReaderLimits
from .csv_reader import CsvReader
from .detect import detect_kind
from .json_reader import JsonReader
from .xlsx_reader import XlsxReader
from .xml_reader import XmlReader

__all__ = [
    "EXTRA_KEY", "PROBLEM_KEY", "CsvReader", "JsonReader", "Reader", "ReaderError", "ReaderLimits", "XlsxReader",
    "XmlReader", "open_reader",
]


def open_reader(
    path: str | os.PathLike[str],
    filename: str,
    limits: ReaderLimits | None = None,
    *,
    header_row: int | None = None,
) -> Reader:
    """Open an uploaded file with the reader its content calls for.

    Args:
        path: where the upload was saved.
        filename: the name the user gave it; its extension must agree with the content.
        limits: caps on size and shape; the defaults suit the web upload.
        header_row: 1-based row of the column names in CSV and spreadsheets; ``None`` detects it.

    Raises:
        ReaderError: the file is over a limit, hostile, or not what its extension says. Nothing has
            been parsed beyond the first bytes (and, for workbooks, the zip directory) at that point.
    """
    limits = limits or ReaderLimits()
    kind = detect_kind(path, filename, limits)
    if kind == "csv":
        return CsvReader(path, limits, header_row)
    if kind in ("xlsx", "ods"):
        return XlsxReader(path, limits, header_row, kind=kind)
    if kind == "json":
        return JsonReader(path, limits)
    return XmlReader(path, limits)
