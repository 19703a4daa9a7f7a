"""Schemas of the core records, generated from the services' declarations.

Each entity's ``RecordService`` says which fields exist and their rules (required,
choices, length, bounds, related model); the model's columns give the types. From
those this module builds, per entity: the record as returned, the body of POST and
PUT, the body of PATCH and the list query. The OpenAPI document therefore shows the
rules the services enforce, and cannot drift from them.

References to other records are ids (``client_id``); on input each may instead be
given by the other record's natural key (``client`` by name, ``project`` by code,
``person`` / ``assignee`` / ``manager`` / ``author`` by email), so scripts need no
lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import marshmallow as ma
from marshmallow import validate
from sqlalchemy import JSON, Boolean, Date, Integer, Numeric, String

from app.blueprints.api.schemas.common import PageLinksSchema, PageMetaSchema, Text, UTCDateTime
from app.services import entities
from app.services.querying import MAX_PER_PAGE
from app.services.records import MAX_ID, FieldSpec, ListFilter, RecordService

# Shown in the OpenAPI document; "entity.field" wins over "field".
DESCRIPTIONS: dict[str, str] = {
    "people.email": "Work email address, unique in the organisation and stored lower-case: the person's natural key.",
    "people.name": "Full name.",
    "people.title": "Job title.",
    "department": "Department the person works in.",
    "cost_centre": "Cost centre their time is booked to.",
    "manager_id": "Id of the person's manager, a person of the same organisation.",
    "skills": "Skills; stored sorted, without duplicates.",
    "hourly_rate": "Cost of an hour of the person's time, in the organisation's currency.",
    "weekly_capacity": "Hours a week the person can work.",
    "active": "False for records kept only for history.",
    "clients.name": "Client name, unique in the organisation: the client's natural key.",
    "contact_email": "Where invoices and questions go.",
    "phone": "Phone number, as people would dial it.",
    "website": "Web address, starting with http:// or https://.",
    "notes": "Free text for the team.",
    "code": "Short code without spaces, unique in the organisation and stored upper-case: the project's natural key.",
    "projects.name": "Project name.",
    "client_id": "Id of the client the project is for.",
    "projects.status": "Where the project stands.",
    "tasks.status": "Where the task stands.",
    "priority": "How urgent it is.",
    "start_date": "First day (ISO 8601 date).",
    "end_date": "Last day (ISO 8601 date), on or after start_date.",
    "budget": "Budget in the organisation's currency.",
    "description": "Longer description.",
    "project_id": "Id of the project.",
    "tasks.title": "What has to be done.",
    "assignee_id": "Id of the person doing the task.",
    "estimate_hours": "Estimated effort in hours.",
    "due_date": "When the task is due (ISO 8601 date).",
    "person_id": "Id of the person.",
    "task_id": "Id of a task of the same project.",
    "comments.task_id": "Id of the task the comment is on.",
    "assignments.hours": "Hours planned over the period.",
    "time_entries.hours": "Hours spent that day.",
    "spent_on": "The day the time was spent (ISO 8601 date).",
    "billable": "Whether the time is billed to the client.",
    "note": "What the time was spent on.",
    "body": "The comment's text.",
    "author_id": "Id of the person who wrote the comment.",
    "external_id": "The record's id in the system it came from (imports, syncs); unique in the organisation.",
}

# One realistic record per entity: field examples in the OpenAPI document.
EXAMPLES: dict[str, dict[str, Any]] = {
    "people": {
        "email": "ada@example.com", "name": "Ada Lovelace", "title": "Analyst", "department": "Research",
        "cost_centre": "CC-7", "manager_id": 12, "manager": "grace@example.com", "skills": ["maths", "poetry"],
        "hourly_rate": "120.00", "weekly_capacity": "37.50", "active": True, "external_id": "HR-1815",
    },
    "clients": {
        "name": "Acme Ltd", "contact_email": "billing@acme.example", "phone": "+44 20 7946 0000",
        "website": "https://acme.example", "notes": "Pays on time", "active": True, "external_id": "CRM-311",
    },
    "projects": {
        "code": "WEB-2026", "name": "Website relaunch", "client_id": 3, "client": "Acme Ltd", "status": "active",
        "priority": "high", "start_date": "2026-01-05", "end_date": "2026-06-30", "budget": "50000.00",
        "description": "New public site", "external_id": "JIRA-WEB",
    },
    "tasks": {
        "project_id": 7, "project": "WEB-2026", "title": "Design the home page", "description": "Wireframes first",
        "status": "in_progress", "priority": "high", "assignee_id": 12, "assignee": "ada@example.com",
        "estimate_hours": "12.50", "due_date": "2026-02-27", "external_id": "WEB-42",
    },
    "assignments": {
        "person_id": 12, "person": "ada@example.com", "project_id": 7, "project": "WEB-2026", "task_id": 31,
        "hours": "20.00", "start_date": "2026-01-05", "end_date": "2026-03-27", "external_id": "PLAN-9",
    },
    "time_entries": {
        "person_id": 12, "person": "ada@example.com", "project_id": 7, "project": "WEB-2026", "task_id": 31,
        "spent_on": "2026-02-03", "hours": "7.50", "billable": True, "note": "Kick-off workshop",
        "external_id": "TS-5521",
    },
    "comments": {
        "task_id": 31, "author_id": 12, "author": "ada@example.com", "body": "Looks good to me",
        "external_id": "WEB-42-c1",
    },
}


@dataclass(frozen=True)
class Reference:
    """A related record given by natural key: ``alias`` (e.g. ``project``) stands for ``field`` (``project_id``)."""

    field: str
    alias: str
    service: RecordService

    @property
    def key(self) -> str:
        return self.service.natural_key


@dataclass(frozen=True)
class EntitySchemas:
    """Everything the API needs about one entity."""

    slug: str
    service: RecordService
    record: ma.Schema  # the record as returned
    create: ma.Schema  # POST and PUT bodies
    patch: ma.Schema  # PATCH bodies
    query: ma.Schema  # list query parameters
    page: ma.Schema  # list response
    references: tuple[Reference, ...]

    @property
    def url(self) -> str:
        return "/" + self.slug.replace("_", "-")

    @property
    def title(self) -> str:
        return self.slug.replace("_", " ").capitalize()


def _describe(slug: str, name: str) -> str:
    return DESCRIPTIONS.get(f"{slug}.{name}") or DESCRIPTIONS.get(name, "")


def _number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _value_field(slug: str, service: RecordService, name: str, spec: FieldSpec, *, output: bool) -> ma.fields.Field:
    """One field of the record, typed by its column and bounded by its FieldSpec."""
    column = service.model.__table__.c[name]
    meta: dict[str, Any] = {"description": _describe(slug, name)}
    if name in EXAMPLES[slug]:
        meta["example"] = EXAMPLES[slug][name]
    kwargs: dict[str, Any] = {"allow_none": column.nullable, "metadata": meta}
    column_type = column.type
    if spec.related is not None or isinstance(column_type, Integer):
        return ma.fields.Integer(strict=True, validate=validate.Range(1, MAX_ID), **kwargs)
    if isinstance(column_type, Boolean):
        return ma.fields.Boolean(**kwargs)
    if isinstance(column_type, Date):
        return ma.fields.Date(**kwargs)
    if isinstance(column_type, JSON):
        return ma.fields.List(Text(validate=validate.Length(max=200)), **kwargs)
    if isinstance(column_type, Numeric):
        return _decimal_field(spec, column_type, output=output, **kwargs)
    length = spec.max_length or (column_type.length if isinstance(column_type, String) else None)
    validators = [validate.Length(max=length)] if length else []
    if spec.choices:
        validators.append(validate.OneOf(spec.choices))
    return Text(validate=validators, **kwargs)


def _decimal_field(spec: FieldSpec, column_type: Numeric, *, output: bool, **kwargs) -> ma.fields.Field:
    """Money and hours: exact decimals, returned as strings ("12.50") and accepted as numbers or strings."""
    meta = kwargs["metadata"]
    if output:
        meta.update(type="string", format="decimal", pattern=r"^-?\d+(\.\d+)?$")
        return ma.fields.Decimal(as_string=True, **kwargs)
    bounds = {k: v for k, v in (("min", spec.minimum), ("max", spec.maximum)) if v is not None}
    for key, openapi in (("min", "minimum"), ("max", "maximum")):
        if key in bounds:
            meta[openapi] = _number(bounds[key])
    meta["description"] += ' A number, or a string such as "12.50".'
    if "example" in meta:
        meta["example"] = float(meta["example"])
    # Rounded to the column's scale on input, so a value never overflows the column after rounding.
    return ma.fields.Decimal(
        places=column_type.scale, allow_nan=False, validate=validate.Range(**bounds) if bounds else None, **kwargs
    )


def _references(service: RecordService) -> tuple[Reference, ...]:
    refs = []
    for name, spec in service.fields.items():
        if spec.related is None or not name.endswith("_id"):
            continue
        related = entities.service_for_model(spec.related)
        if related.natural_key:
            refs.append(Reference(field=name, alias=name.removesuffix("_id"), service=related))
    return tuple(refs)


def _reference_field(slug: str, ref: Reference) -> ma.fields.Field:
    meta = {"description": f"The {ref.service.label}'s {ref.key}, instead of {ref.field}."}
    if ref.alias in EXAMPLES[slug]:
        meta["example"] = EXAMPLES[slug][ref.alias]
    return Text(load_only=True, validate=validate.Length(min=1, max=500), metadata=meta)


def _input_schema(slug: str, service: RecordService, refs: tuple[Reference, ...], *, partial: bool) -> type:
    aliased = {ref.field: ref for ref in refs}
    fields: dict[str, ma.fields.Field] = {}
    for name, spec in service.fields.items():
        field = _value_field(slug, service, name, spec, output=False)
        ref = aliased.get(name)
        if ref is not None:
            field.metadata["description"] += f" Or give {ref.alias} (the {ref.service.label}'s {ref.key})."
        # A reference may come by natural key instead, so the id alone is never required.
        field.required = spec.required and not partial and ref is None
        if spec.required and ref is not None:
            field.metadata["description"] += f" Required: give {name} or {ref.alias}."
        fields[name] = field
    for ref in refs:
        fields[ref.alias] = _reference_field(slug, ref)
    name = _model_name(service) + ("Patch" if partial else "Input")
    return ma.Schema.from_dict(fields, name=f"{name}Schema")


def _record_schema(slug: str, service: RecordService) -> type:
    fields: dict[str, ma.fields.Field] = {
        "id": ma.fields.Integer(required=True, metadata={"description": "The record's id", "example": 42}),
        "version": ma.fields.Integer(
            required=True, metadata={"description": "Bumped on every change; the ETag and If-Match value", "example": 3}
        ),
    }
    for name, spec in service.fields.items():
        field = _value_field(slug, service, name, spec, output=True)
        field.required = True
        fields[name] = field
    fields["created_at"] = UTCDateTime(required=True, metadata={"description": "When the record was created"})
    fields["updated_at"] = UTCDateTime(required=True, metadata={"description": "When the record last changed"})
    return ma.Schema.from_dict(fields, name=f"{_model_name(service)}Schema")


def _filter_field(flt: ListFilter) -> ma.fields.Field:
    meta = {"description": f"Only records whose {flt.label.lower()} is this"}
    if flt.kind == "bool":
        return ma.fields.Boolean(metadata=meta)
    if flt.kind == "related":
        meta["description"] = f"Only records of the {flt.label.lower()} with this id"
        return ma.fields.Integer(validate=validate.Range(1, MAX_ID), metadata=meta)
    if flt.kind in {"date_from", "date_to"}:
        edge = "on or after" if flt.kind == "date_from" else "on or before"
        return ma.fields.Date(metadata={"description": f"Only records whose {flt.column} is {edge} this date"})
    if flt.kind == "choice" and flt.choices:
        return ma.fields.String(validate=validate.OneOf(flt.choices), metadata=meta)
    return ma.fields.String(validate=validate.Length(max=200), metadata=meta)


def sort_values(service: RecordService) -> list[str]:
    names = ["id", *service.sort_columns]
    return [v for name in names for v in (name, f"-{name}")]


def _query_schema(service: RecordService) -> type:
    fields: dict[str, ma.fields.Field] = {
        "page": ma.fields.Integer(
            load_default=1, validate=validate.Range(min=1),
            metadata={"description": "Page number; a page past the last answers the last page"},
        ),
        "per_page": ma.fields.Integer(
            load_default=25, validate=validate.Range(1, MAX_PER_PAGE),
            metadata={"description": f"Records per page, at most {MAX_PER_PAGE}"},
        ),
        "sort": ma.fields.String(
            load_default="id", validate=validate.OneOf(sort_values(service)),
            metadata={"description": "Order by this field; a leading '-' sorts descending. Ties are ordered by id."},
        ),
        "q": ma.fields.String(
            validate=validate.Length(max=200),
            metadata={"description": f"Text search in {', '.join(service.search_columns)}"},
        ),
        "external_id": ma.fields.String(
            validate=validate.Length(max=255), metadata={"description": "Only the record with this external id"}
        ),
        "updated_since": UTCDateTime(
            metadata={"description": "Only records changed at or after this ISO 8601 date and time (UTC if no offset)"}
        ),
    }
    for flt in service.filters:
        fields[flt.name] = _filter_field(flt)
    return ma.Schema.from_dict(fields, name=f"{_model_name(service)}QuerySchema")


def _page_schema(service: RecordService, record: type) -> type:
    fields = {
        "data": ma.fields.List(
            ma.fields.Nested(record), required=True, metadata={"description": "This page's records"}
        ),
        "meta": ma.fields.Nested(PageMetaSchema, required=True),
        "links": ma.fields.Nested(PageLinksSchema, required=True),
    }
    return ma.Schema.from_dict(fields, name=f"{_model_name(service)}PageSchema")


def _model_name(service: RecordService) -> str:
    return service.model.__name__


def build(slug: str) -> EntitySchemas:
    service = entities.service_for(slug)
    refs = _references(service)
    record = _record_schema(slug, service)
    return EntitySchemas(
        slug=slug,
        service=service,
        record=record(),
        create=_input_schema(slug, service, refs, partial=False)(),
        patch=_input_schema(slug, service, refs, partial=True)(),
        query=_query_schema(service)(),
        page=_page_schema(service, record)(),
        references=refs,
    )


SCHEMAS: dict[str, EntitySchemas] = {slug: build(slug) for slug in entities.ENTITIES}
