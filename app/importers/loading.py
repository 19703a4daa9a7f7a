"""Load step: write a validated chunk set-wise, deciding create / update / unchanged per row.

It takes the chunk column by column (a :class:`Batch`; the row path's rows are turned into one). One
``SELECT ... WHERE organization_id = ? AND key IN (...)`` finds the chunk's existing records (the pipeline
skips it when the organisation had none of the entity at the start: see ``nothing_stored``); new rows go
in through the driver's bulk path (``COPY`` on PostgreSQL, one ``executemany`` on SQLite; see
:func:`_bulk_insert`), changed rows with one executemany ``UPDATE`` keyed by id that bumps ``version``
(the records' ETag and optimistic lock) and ``updated_at``. Rows whose mapped values all equal the
stored ones are not written at all, which is what makes a second run of the same file all "unchanged".
No ORM object is built and nothing is committed here: the pipeline owns the transaction (per chunk, or
one for the whole import when aborting on error).

The lookup, not ``INSERT ... ON CONFLICT``, decides, because the modes and the counts need to know
what existed before the write anyway, and a plain INSERT behaves the same on SQLite and PostgreSQL. A
concurrent writer inserting the same key between the lookup (or the import's start, where nothing was
looked up) and the insert makes the INSERT fail on the unique constraint; the pipeline then rolls the
chunk back and loads it again, looking it up afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import repeat
from typing import Any

import psycopg
from psycopg.adapt import PyFormat, Transformer
from sqlalchemy import Connection, Numeric, Table, bindparam, select, text, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from app.extensions import db
from app.models import utcnow

from .mapping import MappedRow, RowError
from .specs import EntitySpec
from .validation import DEFERRED, one_of

MODES = ("upsert", "create", "update")


class ChangedMeanwhile(Exception):
    """Records changed by someone else between their lookup and their update: the chunk must be loaded again."""


@dataclass
class LoadCounts:
    """What a chunk did; ``created_ids`` and ``previous`` are what undo needs (filled only when writing)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)
    # (record id, column → value before this import, version the update left it at), one per updated row
    previous: list[tuple[int, dict[str, Any], int]] = field(default_factory=list)

    def add(self, other: LoadCounts) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.errors += other.errors
        self.created_ids += other.created_ids
        self.previous += other.previous


@dataclass
class Batch:
    """Valid rows column by column, as the load step takes them (the columnar path builds this directly).

    ``columns`` holds the model columns in the spec's order, a reference's column already resolved to
    an id; ``deferred`` maps a row's index to the self-references to set once the chunk's rows have ids.
    """

    numbers: list[int]
    columns: dict[str, list[Any]]
    sources: dict[str, str]                               # field name → source column, for error messages
    deferred: dict[int, dict[str, str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.numbers)


def batch_of_rows(rows: list[MappedRow], spec: EntitySpec) -> Batch:
    """The row path's mapped rows as a :class:`Batch`."""
    if not rows:
        return Batch([], {}, {})
    sources = rows[0].sources
    names = [f.column for f in spec.fields if f.name in sources]
    deferred = {index: row.values[DEFERRED] for index, row in enumerate(rows) if DEFERRED in row.values}
    return Batch([row.row for row in rows], {c: [row.values.get(c) for row in rows] for c in names}, sources,
                 deferred)


def _quantized(spec: EntitySpec, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Numeric columns round to their scale on write; round first so the comparison sees stored values."""
    table = spec.model.__table__
    result = dict(columns)
    for name, values in columns.items():
        sql_type = table.c[name].type
        if isinstance(sql_type, Numeric) and sql_type.scale is not None:
            exponent = Decimal(1).scaleb(-sql_type.scale)
            rounded = {value: value.quantize(exponent) for value in set(values) if value is not None}
            result[name] = [None if value is None else rounded[value] for value in values]
    return result


def load_chunk(rows: list[MappedRow], spec: EntitySpec, org_id: int, mode: str, *,
               write: bool = True) -> LoadCounts:
    """:func:`load_batch` for the row path's mapped rows (valid rows only, references resolved)."""
    return load_batch(batch_of_rows(rows, spec), spec, org_id, mode, write=write)


Stored = dict[Any, tuple[Any, ...]]  # natural key → (id, version, *the batch's columns) of a stored record


def stored_records(connection: Connection | Session, spec: EntitySpec, org_id: int, names: list[str],
                   keys: Iterable[Any]) -> Stored:
    """The organisation's records with these natural keys, as :func:`load_batch` compares them.

    The pipeline asks this ahead, on a connection of its own, while the previous chunk is being stored
    (the keys of two chunks never overlap: a key repeated in the file is an error on every row).

    The records come untyped from the driver through Core, and each column's result processor (SQLite's
    decimals and booleans, say) runs once per distinct value: the ORM's typed rows cost ~2 µs a record,
    as much as finding it (a million people re-imported on SQLite: 4.9 -> 2.8 µs a key).
    """
    wanted = set(keys)
    if not wanted:
        return {}
    if not isinstance(connection, Connection):  # the session (or its scoped proxy): its current connection
        connection = connection.connection()
    model = spec.model
    columns = [model.id, model.version, *(getattr(model, c) for c in names)]
    result = connection.execute(
        select(*(type_coerce(column, NullType()) for column in columns))
        .where(model.organization_id == org_id, one_of(getattr(model, spec.key_field.column), wanted))
    )
    type_codes = [description[1] for description in result.cursor.description]
    rows = result.all()
    if not rows:
        return {}
    dialect = connection.dialect
    values = [_processed(stored, column.type._cached_result_processor(dialect, code))
              for column, code, stored in zip(columns, type_codes, zip(*rows, strict=True), strict=True)]
    key_index = 2 + names.index(spec.key_field.column)
    return {record[key_index]: record for record in zip(*values, strict=True)}


def load_batch(batch: Batch, spec: EntitySpec, org_id: int, mode: str, *, write: bool = True,
               looked_up: Stored | None = None) -> LoadCounts:
    """Create, update or leave each row of the batch; ``write=False`` only counts (the dry run / preview).

    Args:
        mode: ``upsert`` (create and update), ``create`` (an existing key is a row error) or ``update``
            (a missing key is a row error).
        looked_up: :func:`stored_records` of (at least) the batch's keys, if already looked up.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    counts = LoadCounts()
    if not len(batch):
        return counts
    key_field = spec.key_field
    columns = _quantized(spec, batch.columns)
    names = list(columns)
    keys = columns[key_field.column]
    existing = looked_up if looked_up is not None else stored_records(db.session, spec, org_id, names, keys)
    if not existing and mode != "update":
        # Every row is new (in a first import, every chunk's): nothing to compare or refuse row by row.
        to_insert = list(range(len(keys)))
        to_update: list[dict[str, Any]] = []
        deferred = [(links, keys[index]) for index, links in batch.deferred.items()]
    else:
        to_insert, to_update, deferred = _sort_rows(batch, spec, mode, columns, existing, counts)
    counts.created, counts.updated = len(to_insert), len(to_update)
    if not write:
        counts.previous = []
    else:
        inserted = columns if len(to_insert) == len(keys) else {
            name: [values[i] for i in to_insert] for name, values in columns.items()}
        counts.created_ids = _write(spec, org_id, inserted if to_insert else {}, to_update)
        if deferred:
            _link_deferred(spec, org_id, deferred)
    return counts


def _sort_rows(batch: Batch, spec: EntitySpec, mode: str, columns: dict[str, list[Any]], existing: Stored,
               counts: LoadCounts) -> tuple[list[int], list[dict[str, Any]], list[tuple[dict[str, str], str]]]:
    """Which rows to insert, which to update (with their undo data into ``counts``), which to refuse or leave."""
    key_field = spec.key_field
    names = list(columns)
    keys = columns[key_field.column]
    # Rows as plain tuples (id, version, *names): the comparison below is one C-level tuple compare.
    records = list(zip(*columns.values(), strict=True))
    to_insert: list[int] = []
    to_update: list[dict[str, Any]] = []
    deferred: list[tuple[dict[str, str], str]] = []
    source = batch.sources.get(key_field.name)
    for index, (key, record) in enumerate(zip(keys, records, strict=True)):
        stored = existing.get(key)
        links = batch.deferred.get(index) if batch.deferred else None
        if stored is None:
            if mode == "update":
                counts.errors.append(RowError(batch.numbers[index], source, key_field.name, str(key),
                                              "missing", f"no {spec.label} with {key_field.name} {key!r} exists; "
                                              "update mode only changes existing records."))
                continue
            to_insert.append(index)
        elif mode == "create":
            counts.errors.append(RowError(batch.numbers[index], source, key_field.name, str(key),
                                          "exists", f"a {spec.label} with {key_field.name} {key!r} already exists; "
                                          "create mode only adds new records."))
            continue
        elif links is not None or record != stored[2:]:
            to_update.append({f"v_{c}": v for c, v in zip(names, record, strict=True)}
                             | {"v_id": stored[0], "v_version": stored[1]})
            # The lookup above already holds the values being replaced: undo's record costs no query.
            counts.previous.append((stored[0], dict(zip(names, stored[2:], strict=True)), stored[1] + 1))
        else:
            counts.unchanged += 1
            continue
        if links is not None:
            deferred.append((links, key))
    return to_insert, to_update, deferred


def _write(spec: EntitySpec, org_id: int, to_insert: dict[str, list[Any]],
           to_update: list[dict[str, Any]]) -> list[int]:
    """Insert and update the chunk; return the new rows' ids."""
    table = spec.model.__table__
    now = utcnow()
    connection = db.session.connection()
    created_ids: list[int] = []
    if to_insert:
        stamp = {"organization_id": org_id, "created_at": now, "updated_at": now, "version": 1}
        created_ids = _bulk_insert(connection, spec, table, to_insert, stamp)
    if to_update:
        # Only the version that was compared: a record edited or deleted since it was looked up is not
        # overwritten (and its undo data, taken from that lookup, would be wrong); the chunk goes again.
        statement = (
            update(table)
            .where(table.c.id == bindparam("v_id"), table.c.version == bindparam("v_version"))
            .values({c[2:]: bindparam(c) for c in to_update[0] if c not in ("v_id", "v_version")}
                    | {"version": table.c.version + 1, "updated_at": now})
        )
        updated = connection.execute(statement, to_update).rowcount
        if updated != len(to_update):
            raise ChangedMeanwhile(f"{len(to_update) - updated} of the {spec.label} records to update changed "
                                   "while the import ran")
    return created_ids


def _bulk_insert(connection: Connection, spec: EntitySpec, table: Table, columns: dict[str, list[Any]],
                 stamp: dict[str, Any]) -> list[int]:
    """Insert the chunk's new rows with the driver's own bulk path and return their ids in row order.

    SQLAlchemy's executemany ``INSERT ... RETURNING`` binds every value through its own machinery (on
    PostgreSQL a 13,000-parameter statement per 1,000 rows to parse and plan, ~0.4 s for 1,000 people);
    here each column's bind processor (JSON, booleans, UTC timestamps, dates on SQLite) is applied
    directly, column by column, the values that are the same on every row (the stamp, column defaults
    such as ``skills=[]`` and ``active=True``) are converted once per chunk, and the rows go to the
    driver in bulk: one ``COPY ... FROM STDIN`` in text format, written in slices (:func:`_copy_text`),
    with ids drawn from the sequence beforehand on PostgreSQL, one ``executemany`` on SQLite whose ids follow from
    ``last_insert_rowid()``. What is stored is what the ORM-level INSERT would store (the idempotency
    tests re-import and compare), and a unique violation is still SQLAlchemy's ``IntegrityError``,
    which is what the pipeline retries a chunk on.
    """
    dialect = connection.dialect
    given = list(columns)
    count = len(columns[given[0]])
    fixed = dict(stamp)
    for column in table.columns:
        default = column.default
        if column.name not in given and column.name not in fixed and column.name != "id" and default is not None:
            # Scalars or no-argument callables (``list``, ``utcnow``) only, on the importable models.
            fixed[column.name] = default.arg if default.is_scalar else default.arg(None)  # type: ignore[attr-defined]
    for name, value in fixed.items():
        process = table.c[name].type._cached_bind_processor(dialect)
        fixed[name] = process(value) if process is not None and value is not None else value
    values = [_processed(values, table.c[name].type._cached_bind_processor(dialect))
              for name, values in columns.items()]
    names = [*given, *fixed]
    if dialect.name == "postgresql":
        # The ids as one array, the sequence found once by a scalar subquery (evaluated before the rows):
        # ~0.65 µs an id. Taken from a joined CTE instead, nextval resolved it again for every id (4.7 µs).
        ids = connection.execute(
            text("SELECT array_agg(nextval((SELECT CAST(pg_get_serial_sequence(:table, 'id') AS regclass)))) "
                 "FROM generate_series(1, :count)"),
            {"table": table.name, "count": count},
        ).scalar_one()
        statement = f"COPY {table.name} (id, {', '.join(names)}) FROM STDIN"
        raw = connection.connection.dbapi_connection
        assert raw is not None
        columns_to_copy, constants = [ids, *values], list(fixed.values())
        try:
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                transformer = Transformer(cursor)
                for start in range(0, count, COPY_SLICE):
                    end = start + COPY_SLICE
                    copy.write(_copy_text(transformer, [column[start:end] for column in columns_to_copy], constants))
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(statement, None, exc) from exc
        return ids
    constant = [repeat(value, count) for value in fixed.values()]
    placeholders = ", ".join("?" * len(names))
    connection.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})",
                               list(zip(*values, *constant, strict=False)))
    # The rows got consecutive ids, in order: SQLite gives a new row the largest id + 1, and no other
    # connection can write while this transaction holds the write lock. Looking the ids up by key cost
    # ~2.7 µs a row; the first and last rows are checked instead, since undo deletes by these ids.
    last = connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
    first = last - count + 1
    key = table.c[spec.key_field.column]
    keys = values[given.index(spec.key_field.column)]
    ends = dict(connection.execute(
        select(table.c.id, key)
        .where(table.c.id.in_((first, last)), table.c.organization_id == stamp["organization_id"])
    ).all())
    if ends.get(first) != keys[0] or ends.get(last) != keys[-1]:
        raise RuntimeError(f"the {count} rows inserted into {table.name} did not get the ids {first}..{last}")
    return list(range(first, last + 1))


# Rows per COPY write: the server stores one slice while the next is built (one write of the whole chunk
# left it idle for the ~2 µs a row the text takes to build, ~2 s a million time entries).
COPY_SLICE = 2_000
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(transformer: Transformer, columns: list[list[Any]], constants: list[Any]) -> bytes:
    """The rows in ``COPY``'s text format, built column by column, each distinct value dumped once.

    ``copy.write_row`` dumps and escapes every value of every row (~7 µs a row of 14 columns, a third of
    a PostgreSQL import's own time, docs/performance.md); here the values every row shares are dumped
    once, unique texts are escaped only when a tab, newline or backslash is there to escape, and the
    other values go through psycopg's own text dumpers (so dates, decimals, JSON read as psycopg writes them).
    """
    texts = [_copy_column(transformer, values) for values in columns]
    tail = "".join(f"\t{_copy_column(transformer, [value])[0]}" for value in constants) + "\n"
    return (tail.join(map("\t".join, zip(*texts, strict=True))) + tail).encode()


def _copy_column(transformer: Transformer, values: list[Any]) -> list[str]:
    kinds = set(map(type, values))
    if kinds <= {str}:
        joined = "".join(values)
        if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:
            return [value.translate(COPY_ESCAPES) for value in values]
        return values
    if kinds <= {int}:
        return list(map(str, values))

    def text(value: Any) -> str:
        return bytes(transformer.get_dumper(value, PyFormat.TEXT).dump(value)).decode().translate(COPY_ESCAPES)

    if len(kinds - {type(None)}) > 1:  # True == 1, Decimal(1) == 1: one dump per equal value would mix them
        return ["\\N" if value is None else text(value) for value in values]
    texts: dict[Any, str] = {None: "\\N"}
    texts.update((value, text(value)) for value in set(values) - {None})
    return list(map(texts.__getitem__, values))


def _processed(values: Sequence[Any], process: Callable[[Any], Any] | None) -> Sequence[Any]:
    """A column through its bind or result processor, once per distinct value where values are hashable.

    Equal values convert alike here: numeric columns were rounded to one scale before (``_quantized``).
    A processor that makes lists or dicts (JSON read back) runs per value, so no two records share one.
    """
    if process is None:
        return values
    try:
        converted = {value: process(value) for value in set(values) if value is not None}
    except TypeError:  # unhashable: a JSON list
        return [None if value is None else process(value) for value in values]
    if any(isinstance(value, list | dict) for value in converted.values()):
        return [None if value is None else process(value) for value in values]
    converted[None] = None
    return list(map(converted.__getitem__, values))


def _link_deferred(spec: EntitySpec, org_id: int, deferred: list[tuple[dict[str, str], str]]) -> None:
    """Set self-references (a manager in the same file) now that every row of the chunk has an id.

    This completes the chunk's own write, so it does not bump ``version`` a second time.
    """
    model, table = spec.model, spec.model.__table__
    key_column = getattr(model, spec.key_field.column)
    wanted = {key for links, own in deferred for key in (*links.values(), own)}
    ids = dict(db.session.execute(
        select(key_column, model.id).where(model.organization_id == org_id, one_of(key_column, wanted))
    ).all())
    by_column: dict[str, list[dict[str, Any]]] = {}
    for links, own in deferred:
        for column, key in links.items():
            if key in ids:
                by_column.setdefault(column, []).append({"v_id": ids[own], "v_ref": ids[key]})
    connection = db.session.connection()
    for column, params in by_column.items():
        connection.execute(update(table).where(table.c.id == bindparam("v_id")).values({column: bindparam("v_ref")}),
                           params)
