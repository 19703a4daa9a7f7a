"""The import pipeline, read → map → validate → load, in chunks; the preview is the same run with ``dry_run``.

Two passes over the file. The first reads every row but keeps only 8-byte hashes of the unique fields
(8 MB for a million rows): it finds in-file duplicates before anything is written, so every copy of a
repeated email is an error (not just the later ones), and it makes a file that breaks half-way (an
over-long cell at row 900,000) fail before the first chunk is committed. The second pass maps,
validates and loads ``chunk_size`` rows at a time: column by column (:mod:`.columns`) for the rows the
columnar path can vouch for, row by row (:class:`.mapping.RowMapper`, :func:`.validation.validate_chunk`)
for the rest, which is also where every error message comes from; both feed the one load step.

Transactions: ``on_error="skip"`` commits each chunk, so a crash loses at most the chunk in flight and
never leaves half of one. ``on_error="abort"`` keeps the whole import in one transaction and rolls it
back if any row failed; it stops writing at the first failure but still validates the rest, so the
user gets every error in one go.
"""

from __future__ import annotations

import contextvars
import gc
import logging
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import Organization

from .columns import ColumnMapper, Converted
from .formulas import restore_formula_text
from .loading import Batch, ChangedMeanwhile, LoadCounts, Stored, load_batch, load_chunk, stored_records
from .mapping import ColumnMapping, MappedRow, RowError, RowMapper
from .readers import PROBLEM_KEY, Reader, ReaderLimits
from .readers.base import DataRow, make_row
from .specs import EntitySpec
from .validation import OrgContext, validate_chunk

log = logging.getLogger(__name__)

ERROR_CAP = 10_000
ON_ERROR = ("skip", "abort")


@dataclass
class ImportSummary:
    """What an import did (or, for a dry run, would do). ``errors`` keeps the first ``ERROR_CAP``."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    rows_total: int = 0
    errors: list[RowError] = field(default_factory=list)
    errors_total: int = 0
    dry_run: bool = False
    aborted: bool = False

    def add_errors(self, errors: list[RowError]) -> None:
        self.errors_total += len(errors)
        room = ERROR_CAP - len(self.errors)
        if room > 0:
            self.errors.extend(errors[:room])

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "failed": self.failed, "rows_total": self.rows_total, "errors": self.errors_total,
                "dry_run": self.dry_run, "aborted": self.aborted}


@dataclass
class _FileRows:
    """A file's data rows by position, however its reader gives them, and how to make one a dict again.

    CSV and XLSX readers hand over their cells as parsed (``Reader.table``), so a clean row never becomes
    a dict; their length cap is checked by the pre-pass and their formula quotes by the columnar path,
    and :func:`.readers.base.make_row` rebuilds a row for the row path. JSON and XML rows come as dicts
    already checked; their cells are read off the dict.
    """

    headers: list[str]
    rows: Callable[[], Iterator[DataRow]]           # a fresh pass over the file per call
    as_dict: Callable[[int, list[str]], dict[str, str]]
    positional: bool                                # cells as read (CSV, XLSX): lengths and formulas to do
    max_field_chars: int


def _file_rows(reader: Reader, sheet: str | None) -> _FileRows:
    limits: ReaderLimits = getattr(reader, "limits", ReaderLimits())
    table = getattr(reader, "table", None)
    if table is not None:
        headers = table(sheet)[0]
        return _FileRows(headers, lambda: table(sheet)[1],
                         lambda number, cells: make_row(headers, cells, number, limits), True, limits.max_field_chars)
    headers = reader.headers(sheet)

    def dict_rows() -> Iterator[DataRow]:
        for number, raw in reader.rows(sheet):
            yield number, [raw.get(h, "") for h in headers], raw if PROBLEM_KEY in raw else None

    return _FileRows(headers, dict_rows, lambda number, cells: dict(zip(headers, cells, strict=True)), False,
                     limits.max_field_chars)


def _repeated_values(source: _FileRows, mapper: RowMapper, spec: EntitySpec,
                     chunk_size: int) -> tuple[dict[str, set[int]], int]:
    """Hashes of the unique fields' values seen on more than one row, and the number of rows.

    The hashes go into 256 arrays of 8-byte integers by their top byte (8 MB per million rows, where a
    set of Python ints took ~75 MB), and each array is then checked for repeats on its own. Reading the
    whole file first also refuses an over-long cell anywhere in it before anything is written.
    """
    fields = [(f.name, source.headers.index(mapper.sources[f.name]), spec.field_normaliser(f.name))
              for f in spec.fields if f.unique and f.name in mapper.sources]
    buckets: dict[str, list[array[int]]] = {name: [array("q") for _ in range(256)] for name, _, _ in fields}
    limit = source.max_field_chars
    total = 0
    for chunk in _chunks(source.rows(), chunk_size):
        total += len(chunk)
        if source.positional:
            for number, cells, _ in chunk:
                if cells and max(map(len, cells)) > limit:
                    source.as_dict(number, cells)  # raises the reader's error, naming the row and column
        restore = source.positional
        for name, index, normalise in fields:
            arrays = buckets[name]
            for _, cells, _ in chunk:
                text = cells[index]
                if restore and text[:1] == "'":
                    text = restore_formula_text(text)  # as the row would read: see make_row
                text = text.strip()
                if text:
                    digest = hash(text if normalise is None else normalise(text))
                    arrays[(digest >> 56) & 255].append(digest)
    repeated: dict[str, set[int]] = {}
    for name, arrays in buckets.items():
        repeated[name] = set()
        for index, hashes in enumerate(arrays):
            if len(set(hashes)) != len(hashes):
                repeated[name].update(digest for digest, times in Counter(hashes).items() if times > 1)
            arrays[index] = array("q")  # let each bucket go once checked
    return repeated, total


@contextmanager
def _collections_per_chunk() -> Iterator[None]:
    """Collect cyclic garbage once per chunk, over the import's own objects only.

    With the default thresholds the collector ran every 700 allocations, and every row read is a new
    list of new strings: a third of an import's time went to collections, some of which walked every
    object of the app (docs/performance.md). Collecting almost never let the few cycles each chunk
    leaves (SQLAlchemy's statements, holding the chunk's lookup keys) pile up by ~75 MB a million rows.
    So the app's objects are frozen out of the collector's sight for the import, automatic collections
    are rare, and the pipeline collects after each chunk, which only walks what the import made.
    """
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(before[0], 100_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def _chunks(rows: Iterator[DataRow], size: int) -> Iterator[list[DataRow]]:
    # Not a generator: its frame would hold the chunk it handed out until the next one is read, and each
    # per-chunk collection would walk its 40,000 rows and cells (see _collections_per_chunk). With steps
    # in a thread (PostgreSQL), the step in flight still holds its own chunk while the caller collects.
    return iter(lambda: list(islice(rows, size)), [])


@dataclass
class ChunkOutcome:
    """One chunk's result, handed to ``on_chunk`` inside the chunk's transaction (before its commit)."""

    rows: int                    # rows in this chunk
    done: int                    # rows of the file consumed so far, this chunk included
    total: int                   # rows in the file
    counts: LoadCounts
    errors: list[RowError]       # every error of the chunk, by row
    failed: int                  # rows of the chunk with at least one error
    written: bool                # whether the chunk's rows reached the database


def _load_step(batch: Batch, valid: list[MappedRow], errors: list[RowError], spec: EntitySpec, org_id: int,
               mode: str, write: bool, on_chunk: Callable[[ChunkOutcome], None] | None, *,
               looked_up: Stored | None, rows: int, done: int, total: int) -> ChunkOutcome:
    # The columnar rows first: a row-path row may refer to one of them (a manager in the same chunk).
    counts = load_batch(batch, spec, org_id, mode, write=write, looked_up=looked_up)
    counts.add(load_chunk(valid, spec, org_id, mode, write=write))
    found = sorted(errors + counts.errors, key=lambda e: e.row)
    outcome = ChunkOutcome(rows, done, total, counts, found, len({e.row for e in found}), write)
    if on_chunk is not None:
        on_chunk(outcome)
    return outcome


def _in_transaction(step: Callable[[bool], ChunkOutcome], commit: bool) -> ChunkOutcome:
    """Run a chunk's step; per-chunk transactions retry once when a concurrent writer took a key or changed a
    record meanwhile.

    The retry is told so (``step(True)``): what was looked up before is stale, look it up again.
    """
    for attempt in (1, 2):
        try:
            outcome = step(attempt == 2)
            if commit:
                db.session.commit()
            return outcome
        except (IntegrityError, ChangedMeanwhile):
            db.session.rollback()
            if attempt == 2 or not commit:
                raise
    raise AssertionError("unreachable")


def run_pipeline(
    reader: Reader,
    sheet: str | None,
    mapping: ColumnMapping,
    spec: EntitySpec,
    org: Organization,
    *,
    mode: str = "upsert",
    on_error: str = "skip",
    dry_run: bool = False,
    chunk_size: int = 20_000,
    progress: Callable[[int, int], None] | None = None,
    on_chunk: Callable[[ChunkOutcome], None] | None = None,
    skip_rows: int = 0,
    start: ImportSummary | None = None,
    columnar: bool = True,
) -> ImportSummary:
    """Stream a file through map → validate → load and say what happened to every row.

    Args:
        mapping: source column → field name (``None`` ignores the column); see ``suggest_mapping``.
        mode: ``upsert``, ``create`` or ``update`` (see :func:`.loading.load_chunk`).
        on_error: ``skip`` loads the valid rows; ``abort`` writes nothing if any row fails.
        dry_run: count what would happen, write nothing (the wizard's review step).
        progress: called after each chunk (after its commit) with ``(rows done, rows total)``; an
            exception raised there stops the import (a cancel): committed chunks stay.
        on_chunk: called with each chunk's outcome inside the chunk's transaction, so bookkeeping it
            adds to the session (undo records, errors, the resume point) commits or rolls back with the
            chunk. In a dry run nothing else is written, so the pipeline commits what it added per chunk.
        skip_rows: rows already loaded by an earlier, interrupted attempt (resume after a crash); only
            meaningful with ``on_error="skip"``, whose chunks commit one by one.
        start: the counts of that earlier attempt, continued from.
        columnar: ``False`` sends every row through the row-at-a-time path (the differential tests
            compare the two paths on the same files).

    The session must hold no uncommitted records of the entity: on PostgreSQL the stored records are
    looked up on a connection of the pipeline's own, which cannot see them (every caller commits first).

    Raises:
        ReaderError: the file cannot be read; raised by the first pass, before anything is written.
        ValueError: a bad mode, on_error or mapping.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}")
    with _collections_per_chunk():
        return _run(reader, sheet, mapping, spec, org, mode=mode, on_error=on_error, dry_run=dry_run,
                    chunk_size=chunk_size, progress=progress, on_chunk=on_chunk, skip_rows=skip_rows, start=start,
                    columnar=columnar)


def _run(reader: Reader, sheet: str | None, mapping: ColumnMapping, spec: EntitySpec, org: Organization, *,
         mode: str, on_error: str, dry_run: bool, chunk_size: int, progress: Callable[[int, int], None] | None,
         on_chunk: Callable[[ChunkOutcome], None] | None, skip_rows: int, start: ImportSummary | None,
         columnar: bool) -> ImportSummary:
    mapper = RowMapper(mapping, spec)
    source = _file_rows(reader, sheet)
    columns = ColumnMapper(mapper, spec, source.headers, source.positional) if columnar else None
    repeated, total = _repeated_values(source, mapper, spec, chunk_size)
    org_id = org.id  # read once: the ORM object must not be touched while a chunk's step has the session
    ctx = OrgContext(org_id, duplicates=repeated)
    summary = start or ImportSummary()
    summary.rows_total, summary.dry_run = total, dry_run
    per_chunk_commit = (not dry_run and on_error == "skip") or (dry_run and on_chunk is not None)
    self_reference = any(f.reference and f.reference.model is spec.model and f.name in mapper.sources
                         for f in spec.fields)
    key_column = spec.key_field.column
    writing = not dry_run
    done = skip_rows

    def step(converted: Converted | None, chunk: list[DataRow], looked_up: Stored | None) -> None:
        """Everything of one chunk that needs the database: lookups, the row path, the load, the commit."""
        nonlocal writing, done
        batch, doubtful = (Batch([], {}, {}), chunk) if converted is None else columns.split(converted, ctx)
        neighbours = batch.columns[key_column] if self_reference and len(batch) else ()
        mapped: list[MappedRow] = []
        errors: list[RowError] = []
        for number, cells, raw in doubtful:
            row, row_errors = mapper.map(number, raw if raw is not None else source.as_dict(number, cells))
            mapped.append(row)
            errors.extend(row_errors)
        errors.extend(validate_chunk(mapped, spec, ctx, neighbours))
        bad = {e.row for e in errors}
        valid = [row for row in mapped if row.row not in bad]

        def load(again: bool) -> ChunkOutcome:
            return _load_step(batch, valid, errors, spec, org_id, mode, writing, on_chunk,
                              looked_up=None if again else looked_up, rows=len(chunk), done=done + len(chunk),
                              total=total)

        outcome = _in_transaction(load, commit=per_chunk_commit)
        summary.created += outcome.counts.created
        summary.updated += outcome.counts.updated
        summary.unchanged += outcome.counts.unchanged
        summary.failed += outcome.failed
        summary.add_errors(outcome.errors)
        if on_error == "abort" and outcome.errors:
            writing = False
        if self_reference and not writing:
            # Nothing of this chunk reached the database: later chunks may still point at its rows.
            ctx.pending_keys.update(row.values[spec.natural_key] for row in valid)
            ctx.pending_keys.update(neighbours)
        done += len(chunk)
        if progress is not None:
            progress(done, total)

    background = db.engine.dialect.name == "postgresql"
    # Not when aborting on error: its one transaction cannot retry a chunk whose lookup went stale.
    look_ahead = per_chunk_commit or dry_run
    # A first import into an organisation has no stored records to find: ~1 µs a row on SQLite, ~2.5 µs of
    # PostgreSQL's time, for a lookup that finds nothing. Two chunks never share a key, so its own chunks
    # cannot meet either; a record someone else adds meanwhile fails the insert, and the retry looks up.
    nothing_stored = look_ahead and not _has_records(spec, org_id)
    with _lookups_ahead(background) as lookups, _StepsInBackground(background) as steps:
        for chunk in _chunks(islice(source.rows(), skip_rows, None), chunk_size):
            converted = looked_up = None
            if columns is not None:
                converted = columns.convert(chunk, ctx)
                if nothing_stored:
                    looked_up = {}
                elif look_ahead:
                    looked_up = stored_records(lookups, spec, org_id, columns.names, columns.clean_keys(converted))
            steps.submit(partial(step, converted, chunk, looked_up))
            del chunk, converted, looked_up
            gc.collect()  # see _collections_per_chunk
    summary.rows_total = done
    return _finish(summary, on_error, dry_run)


def _has_records(spec: EntitySpec, org_id: int) -> bool:
    """Whether the organisation has any record of the entity, asked once before the first chunk's step."""
    model = spec.model
    return db.session.execute(select(model.id).where(model.organization_id == org_id).limit(1)).first() is not None


@contextmanager
def _lookups_ahead(background: bool) -> Iterator[Connection | Session]:
    """Where the next chunk's stored records are looked up while this chunk's step may run.

    With the steps in a thread, a connection of the pipeline's own (autocommit: it only reads, and
    keeps no transaction open for the length of the import); otherwise the session, between steps.
    """
    if not background:
        yield db.session()
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        yield connection


class _StepsInBackground:
    """Runs the chunks' database steps one after the other in a thread, while the caller prepares the next chunk.

    On PostgreSQL a chunk's step mostly waits for the server (its lookups, the COPY with the foreign-key
    checks and index updates, the commit: ~15 µs a person row on the server's own core), and the
    next chunk's conversion (~10 µs a row of Python) needs no database, so the two overlap on the
    machine's two cores. Steps keep their order and at most one runs at a time: they share the
    session (the thread runs in a copy of the caller's context, so ``db.session`` is the same one), and
    the caller never touches the database while a step may run. A step's exception comes out of the
    next :meth:`submit` or of the block's end; if the caller fails first, the step in flight is waited
    for before the caller's exception goes on. ``background=False`` runs each step in place (SQLite:
    its work is in this process and holds the GIL, so a thread would only add switching).
    """

    def __init__(self, background: bool) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-step") if background else None
        self.pending: Future[None] | None = None

    def __enter__(self) -> _StepsInBackground:
        return self

    def submit(self, step: Callable[[], None]) -> None:
        self._wait()
        if self.pool is None:
            step()
        else:
            self.pending = self.pool.submit(contextvars.copy_context().run, step)

    def _wait(self) -> None:
        if self.pending is not None:
            try:
                self.pending.result()
            finally:
                if self.pending.done():  # not when the wait itself was interrupted: the step still runs
                    self.pending = None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._wait()  # raises what the last step raised
            elif self.pending is not None:
                self._outlast_step()
        finally:
            if self.pool is not None:
                self.pool.shutdown()

    def _outlast_step(self) -> None:
        """The caller failed (a job timeout, an interrupt): wait for the step in flight, whatever else comes.

        Only then may the caller's own handlers roll the session back. A second interrupt while waiting
        does not cut the wait short, and what the step raised is logged: the caller's exception is the
        one that goes on.
        """
        pending = self.pending
        assert pending is not None
        while True:
            try:
                failure = pending.exception()
                break
            except BaseException:  # noqa: BLE001 - e.g. a second Ctrl-C: the session is still the step's
                continue
        self.pending = None
        if failure is not None:
            log.warning("an import step failed after the import had already stopped", exc_info=failure)


def _finish(summary: ImportSummary, on_error: str, dry_run: bool) -> ImportSummary:
    if dry_run:
        db.session.rollback()
    elif on_error == "abort" and summary.failed:
        db.session.rollback()
        summary.aborted = True
        summary.created = summary.updated = 0
        summary.unchanged = summary.rows_total - summary.failed
    else:
        db.session.commit()
    return summary
