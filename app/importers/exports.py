"""Export writers: rows of one entity to XLSX, CSV, JSON or XML, streamed to a file, metadata alongside.

The files use the import side's layout (field names as headers and element names, references by
natural key, lists comma separated, ISO dates), so an export re-imports with no mapping and comes back
all "unchanged". Rows arrive in batches of value tuples (``None``, str, bool, int, Decimal, date,
list), so memory stays flat however many rows there are.

Formula neutralising (OWASP, CSV injection): in CSV and XLSX a text cell starting with ``=``, ``+``,
``-``, ``@``, tab, CR or NUL gets a leading single quote, so a spreadsheet shows it as text instead of
running it. Numbers are never touched (``-5`` in a number column stays a number). The CSV and XLSX
readers take exactly that quote off again (:mod:`app.importers.formulas`). JSON and XML are not opened by
spreadsheets as formulas and are written as they are.

Metadata: XLSX gets a second sheet "Metadata"; JSON an envelope ``{"metadata": {...}, "<entity>": [...]}``;
XML attributes on the root element; CSV carries none in the file (the download response's headers and
the export history do). JSON and XML state the row count before the rows, so their rows are streamed to
a side file first and copied in behind the header once the count is known.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.importers.formulas import FORMULA_TRIGGERS, neutralise_formula
from app.importers.readers.xlsx_reader import cell_text

FORMATS = ("xlsx", "csv", "json", "xml")
SCHEMA_VERSION = "1"
LIST_JOIN = ", "
# Neither XML 1.0 nor an XLSX cell can carry these control characters; they become U+FFFD (not dropped,
# so the loss is visible). CSV and JSON carry them as they are.
UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# The record element of each entity in XML (the root is the entity name itself).
XML_RECORD = {"people": "person", "clients": "client", "projects": "project", "tasks": "task",
              "assignments": "assignment", "time_entries": "time_entry", "comments": "comment"}

Batches = Iterable[Sequence[tuple[Any, ...]]]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Column:
    """One exported field: its name (header / element / key) and import type (string, decimal, list ...)."""

    name: str
    type: str


@dataclass(frozen=True)
class ExportTarget:
    """Where and what to write; ``metadata`` is called with the final row count."""

    path: Path
    entity: str
    columns: tuple[Column, ...]
    metadata: Callable[[int], dict[str, Any]]


def text_value(value: Any) -> str:
    """A value as an import reads it back: ISO dates, ``true``/``false``, lists comma separated, blank for none."""
    return LIST_JOIN.join(map(str, value)) if isinstance(value, list) else cell_text(value)


def write_export(fmt: str, target: ExportTarget, batches: Batches, progress: Progress | None = None) -> int:
    """Write every batch to ``target.path`` in ``fmt``; return the number of rows written."""
    writer = WRITERS[fmt]
    target.path.parent.mkdir(parents=True, exist_ok=True)
    return writer(target, _counting(batches, progress))


def _counting(batches: Batches, progress: Progress | None) -> Iterable[Sequence[tuple[Any, ...]]]:
    done = 0
    for batch in batches:
        yield batch
        done += len(batch)
        if progress is not None:
            progress(done)


def _write_csv(target: ExportTarget, batches: Batches) -> int:
    text_columns = [i for i, c in enumerate(target.columns) if c.type not in ("decimal", "integer", "boolean",
                                                                                 "date")]
    rows = 0
    # utf-8-sig: Excel opens a BOM-less UTF-8 CSV as cp1252 and garbles every accent.
    with open(target.path, "w", encoding="utf-8-sig", newline="") as handle:
        # The header is quoted so the file always shows the reader its quote character: a file without
        # any double quote but with neutralised cells ('=...) would otherwise be sniffed as '-quoted.
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerow([c.name for c in target.columns])
        # One column: quote every cell, else a reader's delimiter guess could split "a;b" rows on ";".
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL if len(target.columns) == 1 else csv.QUOTE_MINIMAL)
        for batch in batches:
            out = []
            for row in batch:
                cells = [text_value(v) for v in row]
                for i in text_columns:
                    cell = cells[i]
                    if cell and (cell[0] in FORMULA_TRIGGERS or cell[0] == "'"):
                        cells[i] = neutralise_formula(cell)
                out.append(cells)
            writer.writerows(out)
            rows += len(batch)
    return rows


def xlsx_cell(value: Any) -> Any:
    """A value as an XLSX cell may hold it: formulas neutralised, characters XML cannot carry replaced."""
    if isinstance(value, list):
        value = LIST_JOIN.join(map(str, value))
    if isinstance(value, str):
        if value and (value[0] in FORMULA_TRIGGERS or value[0] == "'"):
            value = neutralise_formula(value)
        return UNWRITABLE.sub("\ufffd", value)
    return value


def _write_xlsx(target: ExportTarget, batches: Batches) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(target.entity)
    bold = Font(bold=True)
    header = []
    for column in target.columns:
        cell = WriteOnlyCell(sheet, value=column.name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    rows = 0
    for batch in batches:
        for row in batch:
            sheet.append([xlsx_cell(v) for v in row])
        rows += len(batch)
    meta = book.create_sheet("Metadata")
    for key, value in target.metadata(rows).items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
        meta.append([key, xlsx_cell(shown) if isinstance(shown, str) else shown])
    book.save(target.path)
    return rows


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)  # exactly as stored: 12.50 stays 12.50, no float rounding
    if isinstance(value, date):
        return f'"{value.isoformat()}"'
    if isinstance(value, list):
        return json.dumps(LIST_JOIN.join(map(str, value)), ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def _write_body(target: ExportTarget, batches: Batches, render: Callable[[Sequence[tuple[Any, ...]], int], str]) -> int:
    """Stream each batch, as ``render(batch, rows so far)`` makes it, into the side file; return the rows."""
    rows = 0
    with open(target.path.with_suffix(".body"), "w", encoding="utf-8") as handle:
        for batch in batches:
            handle.write(render(batch, rows))
            rows += len(batch)
    return rows


def _write_json(target: ExportTarget, batches: Batches) -> int:
    keys = [json.dumps(c.name) + ": " for c in target.columns]

    def render(batch: Sequence[tuple[Any, ...]], before: int) -> str:
        records = ("{" + ", ".join(k + _json_value(v) for k, v in zip(keys, row, strict=True)) + "}" for row in batch)
        return ("\n    " if before == 0 else ",\n    ") + ",\n    ".join(records)

    rows = _write_body(target, batches, render)
    metadata = json.dumps(target.metadata(rows), ensure_ascii=False, indent=2).replace("\n", "\n  ")
    head = f'{{\n  "metadata": {metadata},\n  {json.dumps(target.entity)}: ['
    _assemble(target, head, "\n  ]\n}\n" if rows else "]\n}\n")
    return rows


def _xml_text(value: Any) -> str:
    return UNWRITABLE.sub("\ufffd", text_value(value))


def _write_xml(target: ExportTarget, batches: Batches) -> int:
    from xml.sax.saxutils import escape, quoteattr

    record = XML_RECORD.get(target.entity, "record")
    tags = [(f"<{c.name}>", f"</{c.name}>", f"<{c.name}/>") for c in target.columns]

    def render(batch: Sequence[tuple[Any, ...]], before: int) -> str:
        parts = []
        for row in batch:
            parts.append(f"  <{record}>")
            for (open_tag, close_tag, empty_tag), value in zip(tags, row, strict=True):
                text = _xml_text(value)
                parts.append(f"{open_tag}{escape(text)}{close_tag}" if text else empty_tag)
            parts.append(f"</{record}>\n")
        return "".join(parts)

    rows = _write_body(target, batches, render)
    attributes = " ".join(
        f"{key}={quoteattr(_xml_text(_attribute(value)))}" for key, value in target.metadata(rows).items()
    )
    _assemble(target, f'<?xml version="1.0" encoding="UTF-8"?>\n<{target.entity} {attributes}>\n',
              f"</{target.entity}>\n")
    return rows


def _attribute(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, Mapping | list) else str(value)


def _assemble(target: ExportTarget, head: str, tail: str) -> None:
    """Header, then the side file copied in 1 MB chunks, then the tail; the side file goes away."""
    body = target.path.with_suffix(".body")
    try:
        with open(target.path, "w", encoding="utf-8") as out:
            out.write(head)
            with open(body, encoding="utf-8") as source:
                shutil.copyfileobj(source, out, 1024 * 1024)
            out.write(tail)
    finally:
        os.unlink(body)


WRITERS: dict[str, Callable[[ExportTarget, Batches], int]] = {
    "xlsx": _write_xlsx, "csv": _write_csv, "json": _write_json, "xml": _write_xml,
}

CONTENT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xml": "application/xml",
}
