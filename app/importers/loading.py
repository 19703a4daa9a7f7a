"""Load step: write a validated chunk set-wise, deciding create / update / unchanged per row.

One ``SELECT ... WHERE organization_id = ? AND key IN (...)`` finds the chunk's existing records; new rows
go in with one executemany ``INSERT`` (SQLAlchemy batches it into multi-row ``VALUES``), changed rows with
one executemany ``UPDATE`` keyed by id that bumps ``version`` (the records' ETag and optimistic lock) and
``updated_at``. Rows whose mapped values all equal the stored ones are not written at all, which is what
makes a second run of the same file all "unchanged". No ORM object is built and nothing is committed
here: the pipeline owns the transaction (per chunk, or one for the whole import when aborting on error).

The lookup, not ``INSERT ... ON CONFLICT``, decides, because the modes and the counts need to know
what existed before the write anyway, and a plain INSERT behaves the same on SQLite and PostgreSQL. A
concurrent writer inserting the same key between the lookup and the insert makes the INSERT fail on
the unique constraint; the pipeline then rolls the chunk back and loads it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy import Connection, Numeric, Table, bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import utcnow

from .mapping import MappedRow, RowError
from .specs import EntitySpec
from .validation import DEFERRED

MODES = ("upsert", "create", "update")


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


def _quantizers(spec: EntitySpec, columns: list[str]) -> dict[str, Decimal]:
    """Numeric columns round to their scale on write; round first so the comparison sees stored values."""
    table = spec.model.__table__
    return {c: Decimal(1).scaleb(-table.c[c].type.scale) for c in columns
            if isinstance(table.c[c].type, Numeric) and table.c[c].type.scale is not None}


def _record(row: MappedRow, names: list[str], quantize: dict[str, Decimal]) -> dict[str, Any]:
    """The row by column (a reference's column holds its resolved id), rounded as it will be stored."""
    values = {column: row.values.get(column) for column in names}
    for column, exponent in quantize.items():
        if values[column] is not None:
            values[column] = values[column].quantize(exponent)
    return values


def load_chunk(rows: list[MappedRow], spec: EntitySpec, org_id: int, mode: str, *,
               write: bool = True) -> LoadCounts:
    """Create, update or leave each valid row; ``write=False`` only counts (the dry run / preview).

    Args:
        rows: valid rows only, references resolved (``values[column]`` holds the id).
        mode: ``upsert`` (create and update), ``create`` (an existing key is a row error) or ``update``
            (a missing key is a row error).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    counts = LoadCounts()
    if not rows:
        return counts
    model = spec.model
    key_field = spec.key_field
    names = [f.column for f in spec.fields if f.name in rows[0].sources]
    quantize = _quantizers(spec, names)
    key_column = getattr(model, key_field.column)
    existing = {r[1]: r._asdict() for r in db.session.execute(
        select(model.id, key_column, model.version, *(getattr(model, c) for c in names if c != key_field.column))
        .where(model.organization_id == org_id, key_column.in_({row.values[spec.natural_key] for row in rows}))
    )}
    to_insert: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    deferred: list[tuple[dict[str, str], str]] = []
    for row in rows:
        key = row.values[spec.natural_key]
        record = _record(row, names, quantize)
        stored = existing.get(key)
        if stored is None:
            if mode == "update":
                counts.errors.append(RowError(row.row, row.sources.get(key_field.name), key_field.name, str(key),
                                              "missing", f"no {spec.label} with {key_field.name} {key!r} exists; "
                                              "update mode only changes existing records."))
                continue
            to_insert.append(record)
        elif mode == "create":
            counts.errors.append(RowError(row.row, row.sources.get(key_field.name), key_field.name, str(key),
                                          "exists", f"a {spec.label} with {key_field.name} {key!r} already exists; "
                                          "create mode only adds new records."))
            continue
        elif DEFERRED in row.values or any(record[c] != stored[c] for c in names):
            to_update.append({f"v_{c}": v for c, v in record.items()} | {"v_id": stored["id"]})
            # The lookup above already holds the values being replaced: undo's record costs no query.
            counts.previous.append((stored["id"], {c: stored[c] for c in names}, stored["version"] + 1))
        else:
            counts.unchanged += 1
            continue
        if DEFERRED in row.values:
            deferred.append((row.values[DEFERRED], key))
    counts.created, counts.updated = len(to_insert), len(to_update)
    if not write:
        counts.previous = []
    if write:
        counts.created_ids = _write(spec, org_id, to_insert, to_update, names)
        if deferred:
            _link_deferred(spec, org_id, deferred)
    return counts


def _write(spec: EntitySpec, org_id: int, to_insert: list[dict[str, Any]], to_update: list[dict[str, Any]],
           names: list[str]) -> list[int]:
    """Insert and update the chunk; return the new rows' ids (``RETURNING``, batched with the insert)."""
    table = spec.model.__table__
    now = utcnow()
    connection = db.session.connection()
    created_ids: list[int] = []
    if to_insert:
        stamp = {"organization_id": org_id, "created_at": now, "updated_at": now, "version": 1}
        rows = [record | stamp for record in to_insert]
        if connection.dialect.name == "postgresql":
            created_ids = _copy_insert(connection, table, rows)
        else:
            created_ids = list(connection.execute(insert(table).returning(table.c.id), rows).scalars())
    if to_update:
        statement = (
            update(table)
            .where(table.c.id == bindparam("v_id"))
            .values({c: bindparam(f"v_{c}") for c in names} | {"version": table.c.version + 1, "updated_at": now})
        )
        connection.execute(statement, to_update)
    return created_ids


def _copy_insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """PostgreSQL: insert with ``COPY ... FROM STDIN`` and ids drawn from the table's sequence beforehand.

    A multi-row ``INSERT ... RETURNING`` costs a 13,000-parameter statement per 1,000 rows to bind, parse
    and plan (about 40x the time of COPY, measured in ``benchmarks/imports.py``); COPY streams the rows.
    The ids come from one ``nextval`` query, so no RETURNING is needed. Column defaults that SQLAlchemy
    would apply on an INSERT (``skills=[]``, ``active=True``) are applied here, and values go through
    the columns' own bind processors (JSON, booleans, UTC timestamps), so what is stored is what the
    INSERT would have stored. A unique violation is raised as SQLAlchemy's ``IntegrityError``, which
    is what the pipeline retries a chunk on.
    """
    dialect = connection.dialect
    ids = list(connection.execute(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
        {"table": table.name, "count": len(rows)},
    ).scalars())
    given = list(rows[0])
    defaults = {c.name: c.default for c in table.columns
                if c.name not in given and c.name != "id" and c.default is not None}
    names = ["id", *given, *defaults]
    processors = [(i, p) for i, c in enumerate(names)
                  if (p := table.c[c].type._cached_bind_processor(dialect)) is not None]
    default_values = [d.arg if d.is_scalar else d.arg(None) for d in defaults.values()]  # type: ignore[attr-defined]
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    raw = connection.connection.dbapi_connection
    assert raw is not None
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for record_id, row in zip(ids, rows, strict=True):
                values = [record_id, *row.values(), *default_values]
                for index, process in processors:
                    values[index] = process(values[index])
                copy.write_row(values)
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(statement, None, exc) from exc
    return ids


def _link_deferred(spec: EntitySpec, org_id: int, deferred: list[tuple[dict[str, str], str]]) -> None:
    """Set self-references (a manager in the same file) now that every row of the chunk has an id.

    This completes the chunk's own write, so it does not bump ``version`` a second time.
    """
    model, table = spec.model, spec.model.__table__
    key_column = getattr(model, spec.key_field.column)
    wanted = {key for links, own in deferred for key in (*links.values(), own)}
    ids = dict(db.session.execute(
        select(key_column, model.id).where(model.organization_id == org_id, key_column.in_(wanted))
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
