"""Clients: the natural key is the name, unique per organisation."""

from __future__ import annotations

from typing import Any

from app.models import Client, Organization
from app.services.records import Errors, FieldSpec, ListFilter, RecordService


def _check(org: Organization, values: dict[str, Any], instance: Client | None) -> Errors:
    email = values.get("contact_email")
    if email and ("@" not in email or " " in email):
        return {"contact_email": ["Enter a valid email address, such as billing@example.com."]}
    website = values.get("website")
    if website and not website.startswith(("http://", "https://")):
        return {"website": ["Start the address with http:// or https://."]}
    return {}


service = RecordService(
    model=Client,
    label="client",
    fields={
        "name": FieldSpec(required=True, max_length=200, unique=True),
        "contact_email": FieldSpec(max_length=320),
        "phone": FieldSpec(max_length=50),
        "website": FieldSpec(max_length=500),
        "notes": FieldSpec(max_length=10000),
        "active": FieldSpec(),
        "external_id": FieldSpec(max_length=255, unique=True),
    },
    search_columns=("name", "contact_email", "notes"),
    sort_columns=("name", "updated_at", "created_at"),
    default_sort="name",
    filters=(ListFilter("active", "Active", "active", kind="bool"),),
    check=_check,
    check_reads=("contact_email", "website"),
)
