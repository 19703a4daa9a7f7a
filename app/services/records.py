"""Create, read, update, delete and list for the core records, shared by pages, API and CLI.

Each entity module declares a ``RecordService``: its fields and the rules that
are not about one field alone. Values arrive already parsed (dates are dates,
money is Decimal); this layer enforces business rules and tenancy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.models import Organization
from app.services import audit
from app.services.audit import Actor
from app.services.querying import Page, contains, paginate, without_nul

Errors = dict[str, list[str]]

# Primary keys are 32-bit on PostgreSQL (and SQLite refuses ints past 64 bits): a larger id
# from a URL or a form names no row, and must not reach the database, which would fail the request.
MAX_ID = 2**31 - 1
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
BOOL_WORDS = TRUE_WORDS | {"0", "false", "no", "off"}


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and 0 < value <= MAX_ID


@dataclass(frozen=True)
class FieldSpec:
    required: bool = False
    choices: tuple[str, ...] | None = None
    max_length: int | None = None
    related: type | None = None  # a model whose row must belong to the same organisation
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    unique: bool = False  # unique per organisation (natural keys, external_id)


@dataclass(frozen=True)
class ListFilter:
    """A list-page filter: ``kind`` is choice, related, bool, date_from or date_to."""

    name: str
    label: str
    column: str
    kind: str = "choice"
    choices: tuple[str, ...] = ()
    related: type | None = None

    def problem(self, raw: str) -> str | None:
        """What is wrong with ``raw`` as this filter's value, or None.

        The list pages ignore a half-typed value (it filters nothing); an export or an API call states
        what it wants once, so it is told instead of silently getting every row.
        """
        if self.kind == "bool" and raw.lower() not in BOOL_WORDS:
            return f"{raw!r} is not yes or no; use 1 or 0 (also true/false, yes/no)."
        if self.kind == "related" and not _is_id(_int_or_zero(raw)):
            return f"{raw!r} is not a record id; use the id of a {self.related.__name__.lower()}."
        if self.kind in {"date_from", "date_to"}:
            try:
                date.fromisoformat(raw)
            except ValueError:
                return f"{raw!r} is not a date as YYYY-MM-DD, such as 2026-03-12."
        if self.kind == "choice" and self.choices and raw not in self.choices:
            return f"{raw!r} is not one of: {', '.join(self.choices)}."
        return None


@dataclass
class ListQuery:
    search: str = ""
    filters: Mapping[str, str] = field(default_factory=dict)
    sort: str = ""
    page: int = 1
    per_page: int = 25
    # API filters: records with this external_id / changed at or after this moment.
    external_id: str = ""
    updated_since: datetime | None = None


@dataclass
class RecordService:
    model: type
    label: str
    fields: dict[str, FieldSpec]
    search_columns: tuple[str, ...]
    sort_columns: tuple[str, ...]
    default_sort: str
    filters: tuple[ListFilter, ...] = ()
    # field → how a value is stored (emails lower-case, codes upper-case), applied to values given
    normalisers: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    check: Callable[[Organization, dict[str, Any], Any], Errors] | None = None
    # the fields ``check`` reads: the import runs it once per distinct combination of their values
    check_reads: tuple[str, ...] = ()

    # --- reading -------------------------------------------------------------------

    def get(self, org: Organization, record_id: int) -> Any:
        if not _is_id(record_id):
            raise NotFound(self.label.capitalize())
        record = db.session.scalar(self.model.for_org(org.id).where(self.model.id == record_id))
        if record is None:
            raise NotFound(self.label.capitalize())
        return record

    def query(self, org: Organization, q: ListQuery) -> Select:
        model = self.model
        query = model.for_org(org.id)
        search = without_nul(q.search)
        if search:
            query = query.where(or_(*(contains(getattr(model, c), search) for c in self.search_columns)))
        for flt in self.filters:
            raw = without_nul(q.filters.get(flt.name) or "").strip()
            clause = _filter_clause(model, flt, raw) if raw else None
            if clause is not None:
                query = query.where(clause)
        if q.external_id:
            query = query.where(model.external_id == without_nul(q.external_id))
        if q.updated_since is not None:
            query = query.where(model.updated_at >= q.updated_since)
        name, descending = _parse_sort(q.sort or self.default_sort)
        # "id" is always allowed: creation order, the stable default of the API.
        if name not in self.sort_columns and name != "id":
            name, descending = _parse_sort(self.default_sort)
        column = getattr(model, name)
        return query.order_by(column.desc() if descending else column.asc(), model.id.asc())

    def page(self, org: Organization, q: ListQuery) -> Page:
        return paginate(self.query(org, q), q.page, q.per_page)

    @property
    def natural_key(self) -> str | None:
        """The field other systems know a record by (a person's email, a project's code), if any."""
        return next((n for n, spec in self.fields.items() if spec.unique and n != "external_id"), None)

    def find_id(self, org: Organization, key: str) -> int | None:
        """The id of the record whose natural key is ``key``, matched as the service stores it."""
        name = self.natural_key
        value = _blank_to_none(key) if name and isinstance(key, str) and "\x00" not in key else None
        if value is None:
            return None
        if name in self.normalisers:
            value = self.normalisers[name](value)
        column = getattr(self.model, name)
        return db.session.scalar(select(self.model.id).where(self.model.organization_id == org.id, column == value))

    def count(self, org: Organization) -> int:
        return db.session.scalar(select(func.count(self.model.id)).where(self.model.organization_id == org.id)) or 0

    def choices(self, org: Organization, order_by: str | None = None) -> list[tuple[int, str]]:
        column = getattr(self.model, order_by or self.default_sort.lstrip("-"))
        return [(r.id, str(r)) for r in db.session.scalars(self.model.for_org(org.id).order_by(column).limit(2000))]

    # --- writing -------------------------------------------------------------------

    def normalise(self, values: dict[str, Any]) -> dict[str, Any]:
        """The given values as they are stored, in place (the import's row path relies on that)."""
        for name, normalise in self.normalisers.items():
            if name in values:
                values[name] = normalise(values[name])
        return values

    def validate(self, org: Organization, values: dict[str, Any], instance: Any = None) -> dict[str, Any]:
        """Return the cleaned values or raise ValidationFailed with every problem found."""
        values = {k: _blank_to_none(v) for k, v in values.items() if k in self.fields}
        values = self.normalise(values)
        errors: Errors = {}
        # Rules see the record as it will be: the new values over the stored ones.
        merged = {n: values[n] if n in values else getattr(instance, n, None) for n in self.fields}
        for name, spec in self.fields.items():
            for message in _field_problems(org, self.model, name, spec, merged[name], instance):
                errors.setdefault(name, []).append(message)
        if not errors and self.check:
            errors.update(self.check(org, merged, instance))
        if errors:
            raise ValidationFailed(errors)
        return values

    def create(self, org: Organization, actor: Actor, values: dict[str, Any]) -> Any:
        values = self.validate(org, values)
        record = self.model(organization_id=org.id, **values)
        db.session.add(record)
        self._flush()
        audit.record(org, actor, f"{self.model.__tablename__}.created", record)
        db.session.commit()
        return record

    def update(self, org: Organization, actor: Actor, record: Any, values: dict[str, Any]) -> Any:
        values = self.validate(org, values, record)
        changes = {}
        for name, value in values.items():
            old = getattr(record, name)
            if old != value:
                changes[name] = [_jsonable(old), _jsonable(value)]
                setattr(record, name, value)
        if changes:
            self._flush()
            audit.record(org, actor, f"{self.model.__tablename__}.updated", record, details={"changes": changes})
            db.session.commit()
        return record

    def delete(self, org: Organization, actor: Actor, record: Any) -> None:
        audit.record(org, actor, f"{self.model.__tablename__}.deleted", record)
        db.session.delete(record)
        self._flush()
        db.session.commit()

    def _flush(self) -> None:
        # Validation checks uniqueness first; this catches the race between two writers.
        try:
            db.session.flush()
        except IntegrityError as exc:
            db.session.rollback()
            raise Conflict(f"This {self.label} conflicts with another record that was saved at the same time.") from exc
        except StaleDataError as exc:
            db.session.rollback()
            raise Conflict(f"This {self.label} was changed by someone else; reload it and try again.") from exc


def _field_problems(org, model, name: str, spec: FieldSpec, value: Any, instance: Any) -> list[str]:
    if value is None:
        return ["This field is required."] if spec.required else []
    problems = []
    if isinstance(value, str) and "\x00" in value:
        return ["Contains a NUL character, which cannot be stored; remove it."]
    if spec.choices is not None and value not in spec.choices:
        problems.append(f"Must be one of: {', '.join(spec.choices)}.")
    if spec.max_length is not None and isinstance(value, str) and len(value) > spec.max_length:
        problems.append(f"Must be at most {spec.max_length} characters.")
    if spec.minimum is not None and value < spec.minimum:
        problems.append(f"Must be at least {spec.minimum}.")
    if spec.maximum is not None and value > spec.maximum:
        problems.append(f"Must be at most {spec.maximum}.")
    if spec.related is not None:
        exists = _is_id(value) and db.session.scalar(
            select(spec.related.id).where(spec.related.id == value, spec.related.organization_id == org.id)
        ) is not None
        if not exists:
            problems.append(f"No such {spec.related.__name__.lower()} in this organisation.")
    if spec.unique and not problems:
        clash = select(model.id).where(model.organization_id == org.id, getattr(model, name) == value)
        if instance is not None:
            clash = clash.where(model.id != instance.id)
        if db.session.scalar(clash) is not None:
            problems.append(f"Another record already uses {value!r}.")
    return problems


def _filter_clause(model, flt: ListFilter, raw: str):
    column = getattr(model, flt.column)
    if flt.kind == "bool":
        return column.is_(raw in TRUE_WORDS)
    if flt.kind == "related":
        return column == _int_or_zero(raw)
    if flt.kind in {"date_from", "date_to"}:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            return None  # a half-typed date filters nothing rather than failing the page
        return column >= day if flt.kind == "date_from" else column <= day
    return column == raw


def _int_or_zero(raw: str) -> int:
    """The id in ``raw``, or 0 (which matches no row) when it is not a usable id."""
    try:
        value = int(raw)
    except ValueError:
        return 0
    return value if _is_id(value) else 0


def _parse_sort(sort: str) -> tuple[str, bool]:
    return (sort[1:], True) if sort.startswith("-") else (sort, False)


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
