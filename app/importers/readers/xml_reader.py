"""XML in one documented layout, parsed incrementally with lxml and with every dangerous feature off.

Layout (each entity's XSD and an example file are its import templates, ``app/importers/templates.py``)::

    <people>                      root: the plural entity name (any name is accepted)
      <person>                    one child per record (any name)
        <email>ada@example.com</email>   one grandchild per field; its text is the value
        <phone/>                  empty element = empty value; a missing element = empty value too
      </person>
    </people>

Namespaces are ignored (local names only). A field element that has child elements is a problem of
that row, not of the file.

Safety: ``resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False``, and any DOCTYPE is
refused outright. Our layout never needs a DTD, and a DOCTYPE is how XXE (external entities reading
local files or URLs) and "billion laughs" (nested entity expansion) arrive. Records are cleared once
read and earlier siblings deleted, so memory stays flat however long the file is. Row numbers count
records, starting at 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from lxml import etree

from .base import PROBLEM_KEY, ReaderError, ReaderLimits

RecordItem = tuple[int, dict[str, str], str]


class XmlReader:
    """Records under the root element; ``sheets()`` is empty."""

    def __init__(self, path: str | os.PathLike[str], limits: ReaderLimits) -> None:
        self.path = path
        self.limits = limits
        self._headers: list[str] | None = None

    def sheets(self) -> list[str]:
        return []

    def headers(self, sheet: str | None = None) -> list[str]:
        """Every field name seen in any record, in first-seen order (one streaming pass)."""
        if self._headers is None:
            seen: dict[str, None] = {}
            for _, record, _ in self._records():
                seen.update(dict.fromkeys(record))
            self._headers = list(seen)
        return self._headers

    def rows(self, sheet: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
        headers = self.headers()
        for number, record, problem in self._records():
            row = {header: record.get(header, "") for header in headers}
            if problem:
                row[PROBLEM_KEY] = problem
            yield number, row

    def _records(self) -> Iterator[RecordItem]:
        number = 0
        parser = etree.iterparse(
            os.fspath(self.path), events=("start", "end"), resolve_entities=False, no_network=True,
            load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True,
        )
        depth = 0
        try:
            for event, element in parser:
                if event == "start":
                    depth += 1
                    if depth == 1:
                        _refuse_doctype(element)
                    continue
                depth -= 1
                if depth == 1:  # a record just closed
                    number += 1
                    yield (number, *self._record(element, number))
                    element.clear()
                    while element.getprevious() is not None:
                        del element.getparent()[0]
        except etree.XMLSyntaxError as exc:
            raise ReaderError(f"the XML is malformed at line {exc.lineno} ({exc.msg})", row=number + 1) from exc

    def _record(self, element: etree._Element, number: int) -> tuple[dict[str, str], str]:
        record: dict[str, str] = {}
        problems: list[str] = []
        for field in element:
            if not isinstance(field.tag, str):
                continue  # an entity reference left unresolved; the DOCTYPE check makes this unreachable
            name = etree.QName(field).localname
            if len(field):
                problems.append(f"field {name!r} contains elements; expected plain text")
                record[name] = ""
                continue
            text = field.text or ""
            if len(text) > self.limits.max_field_chars:
                raise ReaderError(
                    f"this value holds {len(text):,} characters; the limit is {self.limits.max_field_chars:,}",
                    number, name,
                )
            record[name] = text
        return record, "; ".join(problems)


def _refuse_doctype(root: etree._Element) -> None:
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise ReaderError(
            "XML files with a DOCTYPE are refused: entity declarations can read local files or expand "
            "without bound (XXE, billion laughs); remove the <!DOCTYPE ...> line"
        )
