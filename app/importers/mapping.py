"""Map step: which source column feeds which field, and raw text → typed values, with row-level errors.

Pure functions over plain data (no Flask, no database). Every error names the row, the source column as
the user sees it in their file, the value and what was expected: the complaint users of other importers
make most is an error that does not say where.

Accepted formats (documented in the templates too):

- date: ISO ``2026-03-12`` (also with a time part ``2026-03-12T00:00:00``, which is what the spreadsheet
  readers produce for date cells), ``2026/03/12``, ``12.03.2026`` (dots are day-first everywhere),
  ``12 Mar 2026``, ``12 March 2026``, ``Mar 12, 2026``, and a bare number as an Excel serial date
  (1900 date system, ``46093`` = 2026-03-12). Slash dates such as ``03/12/2026`` are refused: they mean
  12 March in the US and 3 December elsewhere, and guessing silently corrupts data.
- decimal: ``1234.5`` or ``1234,5``; with both separators the last one is the decimal point
  (``1.234,50``, ``1,234.50``); spaces are ignored.
- boolean: yes/no, true/false, y/n, 1/0, on/off (any case). A blank cell means the field's default.
- enum: the value or its label in any case (``On hold`` → ``on_hold``).
- list: comma separated (``python, sql``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from .readers import PROBLEM_KEY
from .specs import LIST_SEPARATOR, EntitySpec, ImportField

ColumnMapping = Mapping[str, str | None]  # source column → target field name (None: ignored)

EXCEL_EPOCH = date(1899, 12, 30)      # serial 0 in Excel's 1900 system, after its fake 1900-02-29
EXCEL_MAX_SERIAL = 2_958_465          # 9999-12-31
TRUE_WORDS = frozenset({"yes", "true", "y", "1", "on", "t"})
FALSE_WORDS = frozenset({"no", "false", "n", "0", "off", "f"})
TEXT_DATE_FORMATS = ("%Y/%m/%d", "%d.%m.%Y", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%b %d %Y")
FUZZY_CUTOFF = 0.8


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one row: where (row, source column), what (value) and what was expected."""

    row: int
    column: str | None
    field: str | None
    value: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "field": self.field, "value": self.value,
                "code": self.code, "message": self.message}


@dataclass(slots=True)
class MappedRow:
    """A row after the map step; reference fields still hold the natural key written in the file."""

    row: int
    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)  # field name → source column, for error messages


class Invalid(ValueError):
    """A cell that is not of the expected type; the message says what was expected."""


def _label(text: str) -> str:
    """A header reduced to lower-case words, so "E-mail", "e_mail" and "E Mail" compare equal."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower().replace("-", "")).split())


def suggest_mapping(headers: list[str], spec: EntitySpec) -> dict[str, str | None]:
    """Suggest a target field for each source column: exact name, then synonyms, then a fuzzy match.

    Each field is used at most once, and earlier, stronger matches win, so "Email" goes to ``email``
    even when "Work email" also fuzzily resembles it. Unmatched columns map to ``None`` (ignored).
    """
    return {header: target for header, (target, _) in explain_mapping(headers, spec).items()}


def explain_mapping(headers: list[str], spec: EntitySpec) -> dict[str, tuple[str | None, str | None]]:
    """:func:`suggest_mapping` with the reason of each match: ``exact``, ``synonym``, ``fuzzy`` or ``None``."""
    result: dict[str, tuple[str | None, str | None]] = dict.fromkeys(headers, (None, None))
    taken: set[str] = set()
    exact = {_label(f.name): f.name for f in spec.fields} | {_label(f.column): f.name for f in spec.fields}
    synonyms = {_label(s): f.name for f in spec.fields for s in f.synonyms}
    fuzzy = exact | synonyms
    lookups = (("exact", exact.get), ("synonym", synonyms.get),
               ("fuzzy", lambda label: fuzzy.get(_closest(label, fuzzy))))
    for reason, lookup in lookups:
        for header in headers:
            if result[header][0] is None:
                target = lookup(_label(header))
                if target is not None and target not in taken:
                    result[header] = (target, reason)
                    taken.add(target)
    return result


def header_label(text: str) -> str:
    """A header as matching compares it (case, spaces and punctuation ignored)."""
    return _label(text)


def _closest(label: str, candidates: dict[str, str]) -> str:
    found = difflib.get_close_matches(label, list(candidates), n=1, cutoff=FUZZY_CUTOFF)
    return found[0] if found else ""


def coerce_date(text: str) -> date:
    if text[:4].isdigit() and text[4:5] == "-":
        try:
            return date.fromisoformat(text[:10]) if len(text) == 10 else datetime.fromisoformat(text).date()
        except ValueError:
            pass
    else:
        serial = _number(text)
        if serial is not None:
            if not 1 <= serial <= EXCEL_MAX_SERIAL or serial == 60:
                raise Invalid("a date; as an Excel serial number it must be between 1 and 2958465 (and not 60)")
            # Excel counts the nonexistent 1900-02-29 (serial 60): serials before it are one day off.
            return EXCEL_EPOCH + timedelta(days=int(serial) + (1 if serial < 60 else 0))
        for pattern in TEXT_DATE_FORMATS:
            try:
                return datetime.strptime(text, pattern).date()
            except ValueError:
                continue
    raise Invalid("a date as YYYY-MM-DD, such as 2026-03-12 (DD/MM and MM/DD dates are ambiguous)")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def coerce_decimal(text: str) -> Decimal:
    if "," not in text:  # the common case, tried first: a plain number needs no separator handling
        try:
            value = Decimal(text)
        except InvalidOperation:
            pass
        else:
            if not value.is_finite():
                raise Invalid("a finite number such as 12.5")
            return value
    cleaned = text.replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
    comma, dot = cleaned.rfind(","), cleaned.rfind(".")
    if comma > dot:
        cleaned = cleaned.replace(".", "").replace(",", ".")
    elif comma != -1:
        cleaned = cleaned.replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise Invalid("a number such as 12.5 or 12,5") from None
    if not value.is_finite():
        raise Invalid("a finite number such as 12.5")
    return value


def coerce_integer(text: str) -> int:
    value = coerce_decimal(text)
    if value != value.to_integral_value():
        raise Invalid("a whole number such as 12")
    return int(value)


def coerce_boolean(text: str) -> bool:
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise Invalid("yes or no (also true/false, y/n, 1/0)")


def _coerce_enum(choices: tuple[str, ...]) -> Callable[[str], str]:
    lookup = {_label(c): c for c in choices}

    def coerce(text: str) -> str:
        found = lookup.get(_label(text))
        if found is None:
            raise Invalid(f"one of {', '.join(choices)}")
        return found

    return coerce


def coerce_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(LIST_SEPARATOR) if item.strip()]


COERCERS: dict[str, Callable[[str], Any]] = {
    "date": coerce_date, "decimal": coerce_decimal, "integer": coerce_integer, "boolean": coerce_boolean,
    "list": coerce_list,
}


def _coercer(spec_field: ImportField) -> Callable[[str], Any] | None:
    """``None`` for text fields: the hot path then only strips the cell."""
    if spec_field.type == "enum" and spec_field.choices:
        return _coerce_enum(spec_field.choices)
    return COERCERS.get(spec_field.type)


class RowMapper:
    """A mapping compiled once per import, applied to every row: the per-row work is one loop of cells."""

    def __init__(self, mapping: ColumnMapping, spec: EntitySpec) -> None:
        unknown = sorted(str(t) for t in mapping.values() if t is not None and t not in spec.by_name)
        if unknown:
            raise ValueError(f"unknown {spec.entity} fields in the mapping: {', '.join(unknown)}")
        self.spec = spec
        self.sources = {target: source for source, target in mapping.items() if target is not None}
        if len(self.sources) != sum(1 for t in mapping.values() if t is not None):
            raise ValueError("each field can be fed by one column only")
        self.plan = [(source, f.name, _coercer(f), f.default if not f.nullable else None,
                      [] if f.type == "list" else None)
                     for f in spec.fields if (source := self.sources.get(f.name)) is not None]

    def map(self, row: int, raw: Mapping[str, str]) -> tuple[MappedRow, list[RowError]]:
        values: dict[str, Any] = {}
        errors: list[RowError] = []
        if PROBLEM_KEY in raw:
            errors.append(RowError(row, None, None, "", "malformed", raw[PROBLEM_KEY]))
        for source, name, coerce, default, empty in self.plan:
            text = raw.get(source, "").strip()
            if not text:
                values[name] = default if default is not None else empty
            elif coerce is None:
                values[name] = text
            else:
                try:
                    values[name] = coerce(text)
                except Invalid as exc:
                    values[name] = None
                    errors.append(RowError(row, source, name, text, "type", f"{text!r} is not {exc}."))
        return MappedRow(row, values, self.sources), errors


def map_row(raw: Mapping[str, str], mapping: ColumnMapping, spec: EntitySpec,
            row: int = 0) -> tuple[dict[str, Any], list[RowError]]:
    """Map and type one raw row (convenience form of :class:`RowMapper` for one-off use)."""
    mapped, errors = RowMapper(mapping, spec).map(row, raw)
    return mapped.values, errors
