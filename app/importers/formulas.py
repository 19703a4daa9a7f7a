"""Spreadsheet formula neutralising (OWASP "CSV injection") and its exact inverse.

Exports put a single quote before text a spreadsheet would run as a formula (it starts with ``=``, ``+``,
``-``, ``@``, tab, CR or NUL); the CSV and XLSX readers take exactly that quote off again, so an export
re-imports unchanged. Text that already starts with quotes followed by such a character gets one more
quote, which is what makes :func:`restore_formula_text` the inverse of :func:`neutralise_formula` for
every text. No imports: both the writers and the readers use this module.
"""

from __future__ import annotations

FORMULA_TRIGGERS = frozenset("=+-@\t\r\x00")


def needs_neutralising(text: str) -> bool:
    """True for text a spreadsheet would run as a formula (or that only looks neutralised already)."""
    bare = text.lstrip("'")
    return bare != "" and bare[0] in FORMULA_TRIGGERS


def neutralise_formula(text: str) -> str:
    """Prefix a single quote to text a spreadsheet would run (``=1+1`` → ``'=1+1``)."""
    return "'" + text if needs_neutralising(text) else text


def restore_formula_text(text: str) -> str:
    """Undo :func:`neutralise_formula`: drop the one leading quote that neutralising added."""
    return text[1:] if text[:1] == "'" and needs_neutralising(text[1:]) else text
