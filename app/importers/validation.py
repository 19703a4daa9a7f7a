"""Validate step: per-row rules, cross-row rules and foreign keys, for a chunk of mapped rows at a time.

The per-field limits are the record service's own ``FieldSpec`` (via :mod:`.specs`), and the row rule is
the service's own ``check`` (a valid email, end date after start date), so an import accepts exactly what
the data pages accept. The rules that need the database are done here set-wise instead: one query per
reference field per chunk (``WHERE organization_id = ? AND email IN (...)``), never one per row, which is
why ``check`` is called with its foreign keys blanked (its "task belongs to the project" rule would
otherwise query per row; :func:`_resolve` applies that rule from the batched lookup).

In-file duplicates of a natural key are errors on every copy (which one did the user mean?): the
pipeline's pre-pass hashes every key in the file and passes the repeated ones in ``ctx.duplicates``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, String, any_, func, literal, literal_column, select

from app.extensions import db

from .mapping import MappedRow, RowError
from .specs import EntitySpec, ImportField

DEFERRED = "__deferred__"  # values[DEFERRED]: a self-reference to a row of this same import, set on load


@dataclass
class OrgContext:
    """What validation knows beyond the chunk: the organisation and facts from the rest of the file."""

    org_id: int
    duplicates: dict[str, set[int]] = field(default_factory=dict)  # field → hashes of values repeated in the file
    pending_keys: set[str] = field(default_factory=set)  # valid keys not yet in the database (dry runs)


def one_of(column: Any, values: Any) -> ColumnElement[bool]:
    """``column IN (values)`` for a chunk's text keys, sent as one parameter instead of thousands.

    An ``IN`` of 5,000 keys is 5,000 bind parameters for SQLAlchemy to render and the driver to convert
    and send; that cost more client time than the lookup itself. PostgreSQL gets ``column = ANY(array)``,
    SQLite ``column IN (SELECT value FROM json_each(?))``: the same index lookups, one parameter.
    Texts with a NUL character are left out: they cannot be stored, so they match nothing.
    """
    # A text with NUL can match nothing stored (no text column holds one) and PostgreSQL refuses it.
    values = [value for value in values if type(value) is not str or "\x00" not in value]
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        # Plain text[]: a cast to the column's varchar(n)[] would silently cut an over-long key to match.
        element = String() if isinstance(column.type, String) else column.type
        return column == any_(literal(values, ARRAY(element)))
    if dialect == "sqlite" and all(type(value) is str for value in values):
        return column.in_(select(literal_column("value")).select_from(func.json_each(json.dumps(values))))
    return column.in_(values)


def _error(row: MappedRow, f: ImportField, value: Any, code: str, message: str) -> RowError:
    return RowError(row.row, row.sources.get(f.name), f.name, "" if value is None else str(value), code, message)


def field_problem(f: ImportField, value: Any) -> tuple[str, str, Any] | None:
    """``(code, message, value shown)`` when ``value`` breaks the field's own rules (required, length,
    NUL, range); ``None`` when it is fine. Both paths ask this: the row path per cell, the columnar path
    once per distinct value of a column (a column of distinct texts checks a text's two rules, length
    and NUL, over the whole column: ``ColumnMapper._unique_texts``)."""
    if value is None or value == []:
        if f.required:
            return "required", f"{f.name} is required; this cell is empty.", value
    elif type(value) is str:
        if f.max_length is not None and len(value) > f.max_length:
            return "too_long", f"{f.name} must be at most {f.max_length} characters; this one has {len(value)}.", value
        if "\x00" in value:
            return "nul", f"{f.name} contains a NUL character, which cannot be stored.", ""
    elif f.minimum is not None and value < f.minimum:
        return "range", f"{f.name} must be at least {f.minimum}; got {value}.", value
    elif f.maximum is not None and value > f.maximum:
        return "range", f"{f.name} must be at most {f.maximum}; got {value}.", value
    return None


def _field_errors(row: MappedRow, fields: list[ImportField]) -> list[RowError]:
    found: list[RowError] = []
    values = row.values
    for f in fields:
        problem = field_problem(f, values.get(f.name))
        if problem is not None:
            code, message, shown = problem
            found.append(_error(row, f, shown, code, message))
    return found


def _row_check(row: MappedRow, spec: EntitySpec, mapped: list[ImportField]) -> list[RowError]:
    """The service's own cross-field rule, with references blanked so it cannot query per row."""
    check = spec.service.check
    if check is None:
        return []
    get = row.values.get
    values = {f.column: None if f.reference else get(f.name) for f in mapped}
    problems = check(None, values, None)  # type: ignore[arg-type]  # the org is only used by lookups
    if not problems:
        return []
    by_column = {f.column: f for f in spec.fields}
    return [_error(row, by_column[column], values.get(column), "invalid", message)
            for column, messages in problems.items() if column in by_column for message in messages]


def validate_chunk(rows: list[MappedRow], spec: EntitySpec, ctx: OrgContext,
                   neighbours: Collection[str] = ()) -> list[RowError]:
    """Check a chunk; resolve references in place (``values[column] = id``); return every error found.

    Rows that already failed the map step may be passed too: their fields are still checked, so the
    user sees all of a row's problems at once. ``neighbours`` are the natural keys of the chunk's rows
    that the columnar path validated: a self-reference to one of them is to a row of this import.
    """
    mapped = [f for f in spec.fields if rows and f.name in rows[0].sources]
    errors: list[RowError] = []
    failed: set[int] = set()
    for row in rows:
        spec.service.normalise(row.values)
        found = _field_errors(row, mapped)
        if not found:
            found = _row_check(row, spec, mapped)
        errors.extend(found)
        failed.update(e.row for e in found)
    for f in mapped:
        if f.unique:
            errors.extend(_duplicates(rows, f, ctx.duplicates.get(f.name, set())))
    failed.update(e.row for e in errors)
    for f in mapped:
        if f.unique and f.name != spec.natural_key:
            errors.extend(_unique_clashes(rows, spec, f, ctx.org_id))
    for f in mapped:
        if f.reference is not None:
            errors.extend(_resolve(rows, spec, f, ctx, failed | {e.row for e in errors}, neighbours))
    return errors


def _duplicates(rows: list[MappedRow], f: ImportField, repeated: set[int]) -> list[RowError]:
    """Every row whose value of a unique field appears on another row of the file."""
    seen: dict[Any, list[MappedRow]] = defaultdict(list)
    for row in rows:
        value = row.values.get(f.name)
        if value is not None:
            seen[value].append(row)
    errors = []
    for value, copies in seen.items():
        if len(copies) > 1 or hash(value) in repeated:
            where = f" (rows {', '.join(str(r.row) for r in copies)})" if len(copies) > 1 else ""
            errors.extend(_error(r, f, value, "duplicate",
                                 f"{f.name} {value!r} appears more than once in the file{where}; "
                                 f"each {f.name} may appear only once.")
                          for r in copies)
    return errors


def unique_owners(spec: EntitySpec, f: ImportField, org_id: int, values: set[Any]) -> dict[Any, Any]:
    """For a unique field other than the natural key: value → natural key of the record already using it."""
    if not values:
        return {}
    model = spec.model
    key_column, column = getattr(model, spec.key_field.column), getattr(model, f.column)
    return dict(db.session.execute(
        select(column, key_column).where(model.organization_id == org_id, one_of(column, values))
    ).all())


def _unique_clashes(rows: list[MappedRow], spec: EntitySpec, f: ImportField, org_id: int) -> list[RowError]:
    """A unique field (a person's external_id) already used by a different record of the organisation."""
    owners = unique_owners(spec, f, org_id, {row.values[f.name] for row in rows if row.values.get(f.name) is not None})
    return [_error(row, f, value, "taken", f"{f.name} {value!r} is already used by {spec.label} {owner!r}.")
            for row in rows
            if (value := row.values.get(f.name)) in owners
            and (owner := owners[value]) != row.values.get(spec.natural_key)]


def lookup_references(f: ImportField, org_id: int, keys: set[str]) -> dict[str, Any]:
    """One query for a chunk's references: natural key → row (``id``, and ``project_id`` for tasks)."""
    ref = f.reference
    assert ref is not None
    model = ref.model
    key = getattr(model, ref.key)
    columns = [key, model.id] + ([model.project_id] if hasattr(model, "project_id") else [])
    result = db.session.execute(select(*columns).where(model.organization_id == org_id, one_of(key, keys)))
    return {row[0]: row for row in result}


def _resolve(rows: list[MappedRow], spec: EntitySpec, f: ImportField, ctx: OrgContext,
             failed: set[int], neighbours: Collection[str]) -> list[RowError]:
    ref = f.reference
    assert ref is not None
    normalise: Callable[[str], str] = ref.normalise
    keys = {row.row: normalise(row.values[f.name]) for row in rows if row.values.get(f.name)}
    found = lookup_references(f, ctx.org_id, set(keys.values())) if keys else {}
    self_ref = ref.model is spec.model
    in_file = ctx.pending_keys.union(neighbours, (row.values[spec.natural_key] for row in rows
                                                  if row.row not in failed)) if self_ref else set()
    errors = []
    for row in rows:
        key = keys.get(row.row)
        if key is None:
            row.values[f.column] = None
            continue
        match = found.get(key)
        if self_ref and key == row.values.get(spec.natural_key):
            errors.append(_error(row, f, key, "self", f"a {spec.label} cannot be their own {f.name}."))
        elif match is not None:
            row.values[f.column] = match.id
            if f.name == "task" and "project" in row.sources and match.project_id != row.values.get("project_id"):
                errors.append(_error(row, f, key, "mismatch",
                                     f"task {key!r} belongs to another project than {row.values.get('project')!r}."))
        elif self_ref and key in in_file:
            row.values[f.column] = None
            row.values.setdefault(DEFERRED, {})[f.column] = key
        else:
            label = ref.model.__name__.lower()
            errors.append(_error(row, f, row.values[f.name], "unknown",
                                 f"no {label} with {ref.key} {row.values[f.name]!r} in this organisation."))
    return errors
