"""COPY's text format as the PostgreSQL loader writes it, column by column."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from psycopg.adapt import Transformer

from app.importers.loading import _copy_text


def test_rows_are_tab_separated_lines_with_nulls_and_shared_values_written_once():
    rows = _copy_text(Transformer(), [[1, 2], ["a", None], [date(2026, 3, 2), date(2026, 3, 2)]],
                      [datetime(2026, 1, 1, tzinfo=UTC), True])
    assert rows.decode().splitlines() == ["1\ta\t2026-03-02\t2026-01-01 00:00:00+00:00\tt",
                                          "2\t\\N\t2026-03-02\t2026-01-01 00:00:00+00:00\tt"]


def test_separators_and_backslashes_in_texts_are_escaped():
    rows = _copy_text(Transformer(), [["tab\there", "line\nbreak\r", "back\\slash \\N"]], [])
    assert rows.decode().splitlines() == ["tab\\there", "line\\nbreak\\r", "back\\\\slash \\\\N"]


def test_equal_values_of_different_types_keep_their_own_text():
    """True == 1 and Decimal(1) == 1 in Python: a column mixing them must not share one dumped text."""
    rows = _copy_text(Transformer(), [[True, 1, Decimal("1.50"), Decimal("1.5"), None]], [])
    assert rows.decode().splitlines() == ["t", "1", "1.50", "1.5", "\\N"]
