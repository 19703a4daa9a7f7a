"""JSON: an array of objects, or an object whose array member holds the records (``{"people": [...]}``).

The file is parsed as a stream of events (ijson, C backend), so a 200 MB file never becomes one Python
list. The envelope form lets our own exports (metadata beside the records) come straight back in: the
first array-valued member is the table unless a sheet name picks another. Values become text the way a
user would type them: numbers exactly as written, ``true``/``false``, ``null`` as empty. A nested object or
array in a field is a problem of that row (reported, not raised), because one odd record must not
block the file. Row numbers count records, starting at 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import ijson

from .base import PROBLEM_KEY, ReaderError, ReaderLimits

Events = Iterator[tuple[str, Any]]
SCALARS = {"string", "number", "boolean", "null"}


class JsonReader:
    """Records of one array; ``sheets()`` lists the array members of an envelope object."""

    def __init__(self, path: str | os.PathLike[str], limits: ReaderLimits) -> None:
        self.path = path
        self.limits = limits
        self._headers: dict[str | None, list[str]] = {}

    def sheets(self) -> list[str]:
        names: list[str] = []
        with open(self.path, "rb") as handle:
            events = self._events(handle)
            kind, _ = next(events)
            if kind != "start_map":
                return []
            for key in _members(events):
                kind, _ = next(events)
                if kind == "start_array":
                    names.append(key)
                _skip_value(events, kind)
        return names

    def headers(self, sheet: str | None = None) -> list[str]:
        """Every key seen in any record, in first-seen order (one streaming pass, only the keys kept)."""
        if sheet not in self._headers:
            seen: dict[str, None] = {}
            for _, record, _ in self._records(sheet):
                seen.update(dict.fromkeys(record))
            self._headers[sheet] = list(seen)
        return self._headers[sheet]

    def rows(self, sheet: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
        headers = self.headers(sheet)
        for number, record, problem in self._records(sheet):
            row = {header: record.get(header, "") for header in headers}
            if problem:
                row[PROBLEM_KEY] = problem
            yield number, row

    def _events(self, handle: Any) -> Events:
        try:
            yield from ijson.basic_parse(handle, use_float=False)
        except ijson.JSONError as exc:
            raise ReaderError(f"the file is not valid JSON ({exc})") from exc

    def _records(self, sheet: str | None) -> Iterator[tuple[int, dict[str, str], str]]:
        number = 0
        try:
            with open(self.path, "rb") as handle:
                events = self._events(handle)
                if not _enter_table(events, sheet):
                    raise ReaderError(
                        'expected an array of objects or an object holding one, such as {"people": [...]}'
                        if sheet is None else f"the JSON has no array named {sheet!r}"
                    )
                for kind, value in events:
                    if kind == "end_array":
                        return
                    record, problem = self._record(events, kind, value, number + 1)
                    number += 1
                    yield number, record, problem
        except ReaderError as exc:
            exc.row = exc.row if exc.row is not None else number + 1
            raise

    def _record(self, events: Events, kind: str, value: Any, number: int) -> tuple[dict[str, str], str]:
        if kind != "start_map":
            _skip_value(events, kind)
            return {}, f"this record is {_describe(kind)}; expected an object of field names and values"
        record: dict[str, str] = {}
        problems: list[str] = []
        for key in _members(events):
            kind, value = next(events)
            if kind in SCALARS:
                text = _text(kind, value)
                if len(text) > self.limits.max_field_chars:
                    raise ReaderError(
                        f"this value holds {len(text):,} characters; the limit is {self.limits.max_field_chars:,}",
                        number, key,
                    )
                record[key] = text
            else:
                _skip_value(events, kind)
                record[key] = ""
                problems.append(f"field {key!r} holds {_describe(kind)}; expected text, a number, true/false or null")
        return record, "; ".join(problems)


def _enter_table(events: Events, sheet: str | None) -> bool:
    """Advance to just inside the records array; False when the document has none."""
    kind, _ = next(events, ("", None))
    if kind == "start_array":
        return sheet is None
    if kind != "start_map":
        return False
    for key in _members(events):
        kind, _ = next(events)
        if kind == "start_array" and sheet in (None, key):
            return True
        _skip_value(events, kind)
    return False


def _members(events: Events) -> Iterator[str]:
    """Keys of the object just opened; the caller must consume each value before asking for the next key."""
    for kind, value in events:
        if kind == "end_map":
            return
        yield value


def _skip_value(events: Events, kind: str) -> None:
    if kind in ("start_map", "start_array"):
        _skip_open(events, 1)


def _skip_open(events: Events, depth: int) -> None:
    for kind, _ in events:
        depth += kind in ("start_map", "start_array")
        depth -= kind in ("end_map", "end_array")
        if depth == 0:
            return


def _text(kind: str, value: Any) -> str:
    if kind == "null":
        return ""
    if kind == "boolean":
        return "true" if value else "false"
    return str(value)


def _describe(kind: str) -> str:
    return {"start_map": "an object", "start_array": "a list"}.get(kind, f"a bare {kind} value")
