"""The pipeline's chunking: whole chunks in file order, and no chunk kept alive by the chunking itself."""

from __future__ import annotations

import gc
import sys

from app.importers.pipeline import _chunks


def test_chunks_come_whole_in_order_with_a_short_last_one():
    rows = [(number, [f"cell {number}"], None) for number in range(2, 7)]
    assert [[row[0] for row in chunk] for chunk in _chunks(iter(rows), 2)] == [[2, 3], [4, 5], [6]]


def test_a_chunk_handed_out_is_held_by_its_taker_alone():
    """Each chunk's garbage collection walks what is alive: a chunk the chunking kept would cost it 40,000 rows."""
    chunks = _chunks(iter([(number, ["cell"], None) for number in range(4)]), 2)
    chunk = next(chunks)
    holders = [holder for holder in gc.get_referrers(chunk) if holder is not sys._getframe()]
    assert holders == []
    assert [row[0] for row in next(chunks)] == [2, 3]
