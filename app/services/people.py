"""People: the natural key is the email, matched case-insensitively."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.models import Organization, Person
from app.services.records import Errors, FieldSpec, ListFilter, RecordService


def _lower(email: Any) -> Any:
    return email.lower() if isinstance(email, str) else email


def _skill_list(skills: Any) -> list[str]:
    """Skills as a sorted list without repeats, from a list or a comma-separated text."""
    if isinstance(skills, str):
        skills = skills.split(",")
    return sorted({s.strip() for s in skills or [] if s and s.strip()}, key=str.lower)


def _check(org: Organization, values: dict[str, Any], instance: Person | None) -> Errors:
    errors: Errors = {}
    email = values.get("email") or ""
    if "@" not in email or email.startswith("@") or email.endswith("@") or " " in email:
        errors["email"] = ["Enter a valid email address, such as ada@example.com."]
    manager_id = values.get("manager_id")
    if instance is not None and manager_id is not None and manager_id == instance.id:
        errors["manager_id"] = ["A person cannot be their own manager."]
    return errors


service = RecordService(
    model=Person,
    label="person",
    fields={
        "email": FieldSpec(required=True, max_length=320, unique=True),
        "name": FieldSpec(required=True, max_length=200),
        "title": FieldSpec(max_length=200),
        "department": FieldSpec(max_length=200),
        "cost_centre": FieldSpec(max_length=100),
        "manager_id": FieldSpec(related=Person),
        "skills": FieldSpec(),
        "hourly_rate": FieldSpec(minimum=Decimal(0), maximum=Decimal("99999999.99")),
        "weekly_capacity": FieldSpec(minimum=Decimal(0), maximum=Decimal(168)),
        "active": FieldSpec(),
        "external_id": FieldSpec(max_length=255, unique=True),
    },
    search_columns=("name", "email", "title", "department"),
    sort_columns=("name", "email", "department", "title", "updated_at", "created_at"),
    default_sort="name",
    filters=(
        ListFilter("department", "Department", "department", kind="text"),
        ListFilter("active", "Active", "active", kind="bool"),
        ListFilter("manager", "Manager", "manager_id", kind="related", related=Person),
    ),
    normalisers={"email": _lower, "skills": _skill_list},
    check=_check,
    check_reads=("email", "manager_id"),
)
