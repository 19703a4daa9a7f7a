"""Tasks belong to a project; they have no natural key besides ``external_id``."""

from __future__ import annotations

from decimal import Decimal

from app.models import PRIORITIES, TASK_STATUSES, Person, Project, Task
from app.services.records import FieldSpec, ListFilter, RecordService

service = RecordService(
    model=Task,
    label="task",
    fields={
        "project_id": FieldSpec(required=True, related=Project),
        "title": FieldSpec(required=True, max_length=300),
        "description": FieldSpec(max_length=20000),
        "status": FieldSpec(required=True, choices=TASK_STATUSES),
        "priority": FieldSpec(required=True, choices=PRIORITIES),
        "assignee_id": FieldSpec(related=Person),
        "estimate_hours": FieldSpec(minimum=Decimal(0), maximum=Decimal("100000")),
        "due_date": FieldSpec(),
        "external_id": FieldSpec(max_length=255, unique=True),
    },
    search_columns=("title", "description"),
    sort_columns=("title", "status", "priority", "due_date", "updated_at"),
    default_sort="title",
    filters=(
        ListFilter("status", "Status", "status", choices=TASK_STATUSES),
        ListFilter("priority", "Priority", "priority", choices=PRIORITIES),
        ListFilter("project", "Project", "project_id", kind="related", related=Project),
        ListFilter("assignee", "Assignee", "assignee_id", kind="related", related=Person),
    ),
)
