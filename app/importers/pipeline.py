"""The import pipeline, read → map → validate → load, in chunks; the preview is the same run with ``dry_run``.

Two passes over the file. The first reads every row but keeps only hashes of the unique fields (a few
tens of MB for a million rows): it finds in-file duplicates before anything is written, so every copy
of a repeated email is an error (not just the later ones), and it makes a file that breaks half-way
(an over-long cell at row 900,000) fail before the first chunk is committed. The second pass maps,
validates and loads ``chunk_size`` rows at a time.

Transactions: ``on_error="skip"`` commits each chunk, so a crash loses at most the chunk in flight and
never leaves half of one. ``on_error="abort"`` keeps the whole import in one transaction and rolls it
back if any row failed; it stops writing at the first failure but still validates the rest, so the
user gets every error in one go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from typing import Any

from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Organization

from .loading import LoadCounts, load_chunk
from .mapping import ColumnMapping, MappedRow, RowError, RowMapper
from .readers import Reader
from .specs import EntitySpec
from .validation import OrgContext, validate_chunk

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


def _repeated_values(reader: Reader, sheet: str | None, mapper: RowMapper, spec: EntitySpec) -> tuple[dict, int]:
    """Hashes of the unique fields' values seen on more than one row, and the number of rows."""
    fields = [(f.name, mapper.sources[f.name], spec.field_normaliser(f.name))
              for f in spec.fields if f.unique and f.name in mapper.sources]
    seen: dict[str, set[int]] = {name: set() for name, _, _ in fields}
    repeated: dict[str, set[int]] = {name: set() for name, _, _ in fields}
    total = 0
    for _, raw in reader.rows(sheet):
        total += 1
        for name, source, normalise in fields:
            text = raw.get(source, "").strip()
            if text:
                digest = hash(normalise(text))
                if digest in seen[name]:
                    repeated[name].add(digest)
                else:
                    seen[name].add(digest)
    return repeated, total


def _chunks(rows: Iterator[tuple[int, dict[str, str]]], size: int) -> Iterator[list[tuple[int, dict[str, str]]]]:
    while chunk := list(islice(rows, size)):
        yield chunk


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


def _load_step(valid: list[MappedRow], errors: list[RowError], spec: EntitySpec, org_id: int, mode: str,
               write: bool, on_chunk: Callable[[ChunkOutcome], None] | None, *, rows: int, done: int,
               total: int) -> ChunkOutcome:
    counts = load_chunk(valid, spec, org_id, mode, write=write)
    found = sorted(errors + counts.errors, key=lambda e: e.row)
    outcome = ChunkOutcome(rows, done, total, counts, found, len({e.row for e in found}), write)
    if on_chunk is not None:
        on_chunk(outcome)
    return outcome


def _in_transaction(step: Callable[[], ChunkOutcome], commit: bool) -> ChunkOutcome:
    """Run a chunk's step; per-chunk transactions retry once when a concurrent writer took a key meanwhile."""
    for attempt in (1, 2):
        try:
            outcome = step()
            if commit:
                db.session.commit()
            return outcome
        except IntegrityError:
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
    chunk_size: int = 5_000,
    progress: Callable[[int, int], None] | None = None,
    on_chunk: Callable[[ChunkOutcome], None] | None = None,
    skip_rows: int = 0,
    start: ImportSummary | None = None,
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

    Raises:
        ReaderError: the file cannot be read; raised by the first pass, before anything is written.
        ValueError: a bad mode, on_error or mapping.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}")
    mapper = RowMapper(mapping, spec)
    repeated, total = _repeated_values(reader, sheet, mapper, spec)
    ctx = OrgContext(org.id, duplicates=repeated)
    summary = start or ImportSummary()
    summary.rows_total, summary.dry_run = total, dry_run
    writing = not dry_run
    per_chunk_commit = (writing and on_error == "skip") or (dry_run and on_chunk is not None)
    self_reference = any(f.reference and f.reference.model is spec.model and f.name in mapper.sources
                         for f in spec.fields)
    done = skip_rows
    for chunk in _chunks(islice(reader.rows(sheet), skip_rows, None), chunk_size):
        mapped: list[MappedRow] = []
        errors: list[RowError] = []
        for number, raw in chunk:
            row, row_errors = mapper.map(number, raw)
            mapped.append(row)
            errors.extend(row_errors)
        errors.extend(validate_chunk(mapped, spec, ctx))
        bad = {e.row for e in errors}
        valid = [row for row in mapped if row.row not in bad]
        step = partial(_load_step, valid, errors, spec, org.id, mode, writing, on_chunk,
                       rows=len(chunk), done=done + len(chunk), total=total)
        outcome = _in_transaction(step, commit=per_chunk_commit)
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
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    summary.rows_total = done
    return _finish(summary, on_error, dry_run)


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
