"""What can be imported into each entity: an :class:`EntitySpec` per record type, derived, not restated.

The rules (required, allowed values, lengths, ranges, uniqueness, related model) come from the
``FieldSpec`` of each entity's ``RecordService`` and the types from the model's columns, so a rule changed
for the data pages changes for imports too. This module adds only what is import-specific: the natural
key rows are matched by, how a foreign key is written in a file (a person by email, a project by code),
header synonyms, and a few type hints (an email column is a string that must look like an email).

Natural keys: people by ``email``, clients by ``name``, projects by ``code``; tasks, assignments, time
entries and comments have no natural key of their own, so their ``external_id`` is the key and is
required in an import (without it a second run could not know a row was already imported).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Integer, Numeric

from app.models import Client, Person, Project, Task
from app.services.entities import ENTITIES
from app.services.records import FieldSpec, RecordService

# How a file names a record of each referenced model: the column it is matched on.
REFERENCE_KEYS: dict[type, str] = {Person: "email", Client: "name", Project: "code", Task: "external_id"}

# Extra header spellings, beyond the field name itself (matched case- and punctuation-insensitively).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "email": ("e-mail", "email address", "e-mail address", "mail", "work email"),
    "name": ("full name", "display name", "person", "client name", "project name"),
    "title": ("job title", "position", "role", "task", "task name", "summary", "subject"),
    "department": ("dept", "team", "division"),
    "cost_centre": ("cost center", "cost centre code", "cost center code"),
    "manager": ("manager email", "reports to", "line manager", "supervisor"),
    "skills": ("skill", "skill set", "competencies", "tags"),
    "hourly_rate": ("rate", "hourly rate", "rate per hour", "cost rate"),
    "weekly_capacity": ("capacity", "hours per week", "weekly hours"),
    "active": ("is active", "enabled", "status active"),
    "external_id": ("id", "external id", "ext id", "reference", "ref", "key", "source id"),
    "contact_email": ("contact", "contact e-mail", "billing email"),
    "phone": ("telephone", "phone number", "tel"),
    "website": ("url", "web", "homepage", "site"),
    "notes": ("note", "comments", "remarks"),
    "code": ("project code", "project key", "key code"),
    "client": ("client name", "customer", "account"),
    "status": ("state", "stage"),
    "priority": ("prio", "importance"),
    "start_date": ("start", "starts", "start on", "from", "begin", "begins"),
    "end_date": ("end", "ends", "end on", "to", "until", "finish"),
    "budget": ("amount", "budget amount"),
    "description": ("details", "desc", "body"),
    "project": ("project code", "project key", "project id"),
    "assignee": ("assigned to", "owner", "assignee email"),
    "estimate_hours": ("estimate", "estimated hours", "effort"),
    "due_date": ("due", "deadline", "due on"),
    "person": ("person email", "employee", "user", "worker", "email"),
    "task": ("task id", "task external id", "task ref"),
    "hours": ("hrs", "duration", "time", "quantity", "hours worked"),
    "spent_on": ("date", "day", "worked on", "work date", "spent"),
    "billable": ("is billable", "chargeable"),
    "note": ("notes", "description", "comment"),
    "author": ("author email", "by", "written by", "from"),
    "body": ("comment", "text", "message", "content"),
}

EMAIL_FIELDS = frozenset({"email", "contact_email"})
LIST_SEPARATOR = ","


@dataclass(frozen=True)
class Reference:
    """A foreign key written as the referenced record's natural key (``manager`` → a person's email)."""

    model: type
    key: str                                        # column of ``model`` the file's value is matched on
    normalise: Callable[[str], str] = str           # how the referenced service stores that key


@dataclass(frozen=True)
class ImportField:
    """One target field of an import, as the mapping step and the template show it."""

    name: str                      # what users map to: "manager", "email"
    column: str                    # the model attribute written: "manager_id", "email"
    type: str                      # string, email, integer, decimal, date, boolean, enum, list
    required: bool = False
    choices: tuple[str, ...] | None = None
    max_length: int | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    unique: bool = False
    nullable: bool = True
    default: Any = None            # what a blank cell means for a column that cannot be empty
    reference: Reference | None = None
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class EntitySpec:
    """An importable entity: its fields in template order, its natural key and its row rule."""

    entity: str
    label: str
    model: type
    fields: tuple[ImportField, ...]
    natural_key: str
    service: RecordService = field(repr=False)

    def field(self, name: str) -> ImportField:
        return self.by_name[name]

    @property
    def by_name(self) -> dict[str, ImportField]:
        return {f.name: f for f in self.fields}

    @property
    def key_field(self) -> ImportField:
        return self.by_name[self.natural_key]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    def field_normaliser(self, name: str) -> Callable[[Any], Any] | None:
        """How the service stores a field (emails lower-case, project codes upper-case); ``None``: as given."""
        return self.service.normalisers.get(name)


def _column_type(model: type, column: str, spec: FieldSpec) -> str:
    sql_type = model.__table__.c[column].type
    if spec.choices is not None:
        return "enum"
    if column in EMAIL_FIELDS:
        return "email"
    kinds = ((Boolean, "boolean"), (Date, "date"), (Numeric, "decimal"), (JSON, "list"), (Integer, "integer"))
    for kind, name in kinds:
        if isinstance(sql_type, kind):
            return name
    return "string"


def _scalar_default(model: type, column: str) -> Any:
    default = model.__table__.c[column].default
    if default is None:
        return None
    if default.is_callable:
        return default.arg(None)  # SQLAlchemy wraps a plain callable (``list``) to take a context
    return default.arg


def build_spec(entity: str, service: RecordService) -> EntitySpec:
    """Derive an entity's import spec from its record service and model."""
    model = service.model
    key = service.natural_key or "external_id"
    fields: list[ImportField] = []
    for column, rules in service.fields.items():
        reference = None
        name = column
        if rules.related is not None:
            name = column.removesuffix("_id")
            key_column = REFERENCE_KEYS[rules.related]
            target = next(s for s in ENTITIES.values() if s.model is rules.related)
            reference = Reference(rules.related, key_column, target.normalisers.get(key_column, str))
        nullable = bool(model.__table__.c[column].nullable)
        default = None if nullable else _scalar_default(model, column)
        fields.append(ImportField(
            name=name,
            column=column,
            type="string" if reference else _column_type(model, column, rules),
            # A field with a default (a project's status) may be left out: the form pre-fills it the same way.
            required=(rules.required and default is None) or column == key,
            choices=rules.choices,
            max_length=rules.max_length,
            minimum=rules.minimum,
            maximum=rules.maximum,
            unique=rules.unique,
            nullable=nullable,
            default=default,
            reference=reference,
            synonyms=SYNONYMS.get(name, ()),
        ))
    return EntitySpec(entity=entity, label=service.label, model=model, fields=tuple(fields), natural_key=key,
                      service=service)


ENTITY_SPECS: dict[str, EntitySpec] = {entity: build_spec(entity, service) for entity, service in ENTITIES.items()}


def spec_for(entity: str) -> EntitySpec:
    """The spec of ``entity`` (a key of :data:`ENTITY_SPECS`); KeyError names the known entities."""
    try:
        return ENTITY_SPECS[entity]
    except KeyError:
        raise KeyError(f"unknown entity {entity!r}; choose one of {', '.join(ENTITY_SPECS)}") from None
