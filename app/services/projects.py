"""Projects: the natural key is the code, unique per organisation (stored upper-case)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.models import PRIORITIES, PROJECT_STATUSES, Client, Organization, Project
from app.services.records import Errors, FieldSpec, ListFilter, RecordService


def _upper(code: Any) -> Any:
    return code.upper() if isinstance(code, str) else code


def _check(org: Organization, values: dict[str, Any], instance: Project | None) -> Errors:
    errors: Errors = {}
    code = values.get("code") or ""
    if any(c.isspace() for c in code):
        errors["code"] = ["A project code has no spaces, such as WEB-2026."]
    start, end = values.get("start_date"), values.get("end_date")
    if start and end and end < start:
        errors["end_date"] = [f"The end date must be on or after the start date ({start.isoformat()})."]
    return errors


service = RecordService(
    model=Project,
    label="project",
    fields={
        "code": FieldSpec(required=True, max_length=50, unique=True),
        "name": FieldSpec(required=True, max_length=200),
        "client_id": FieldSpec(related=Client),
        "status": FieldSpec(required=True, choices=PROJECT_STATUSES),
        "priority": FieldSpec(required=True, choices=PRIORITIES),
        "start_date": FieldSpec(),
        "end_date": FieldSpec(),
        "budget": FieldSpec(minimum=Decimal(0), maximum=Decimal("999999999999.99")),
        "description": FieldSpec(max_length=20000),
        "external_id": FieldSpec(max_length=255, unique=True),
    },
    search_columns=("code", "name", "description"),
    sort_columns=("code", "name", "status", "priority", "start_date", "end_date", "updated_at"),
    default_sort="code",
    filters=(
        ListFilter("status", "Status", "status", choices=PROJECT_STATUSES),
        ListFilter("priority", "Priority", "priority", choices=PRIORITIES),
        ListFilter("client", "Client", "client_id", kind="related", related=Client),
    ),
    normalisers={"code": _upper},
    check=_check,
    check_reads=("code", "start_date", "end_date"),
)
