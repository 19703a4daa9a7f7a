"""Assignments, time entries and comments: records that tie people to projects and tasks."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import Assignment, Comment, Organization, Person, Project, Task, TimeEntry
from app.services.records import Errors, FieldSpec, ListFilter, RecordService


def _task_in_project(values: dict[str, Any]) -> Errors:
    task_id, project_id = values.get("task_id"), values.get("project_id")
    if task_id is None or project_id is None:
        return {}
    if db.session.scalar(select(Task.project_id).where(Task.id == task_id)) != project_id:
        return {"task_id": ["This task belongs to another project; pick a task of the chosen project."]}
    return {}


def _check_assignment(org: Organization, values: dict[str, Any], instance: Assignment | None) -> Errors:
    errors = _task_in_project(values)
    start, end = values.get("start_date"), values.get("end_date")
    if start and end and end < start:
        errors["end_date"] = [f"The end date must be on or after the start date ({start.isoformat()})."]
    return errors


def _check_time_entry(org: Organization, values: dict[str, Any], instance: TimeEntry | None) -> Errors:
    return _task_in_project(values)


assignments = RecordService(
    model=Assignment,
    label="assignment",
    fields={
        "person_id": FieldSpec(required=True, related=Person),
        "project_id": FieldSpec(required=True, related=Project),
        "task_id": FieldSpec(related=Task),
        "hours": FieldSpec(required=True, minimum=Decimal("0.01"), maximum=Decimal("100000")),
        "start_date": FieldSpec(),
        "end_date": FieldSpec(),
        "external_id": FieldSpec(max_length=255, unique=True),
    },
    search_columns=("external_id",),
    sort_columns=("start_date", "end_date", "hours", "updated_at"),
    default_sort="-start_date",
    filters=(
        ListFilter("person", "Person", "person_id", kind="related", related=Person),
        ListFilter("project", "Project", "project_id", kind="related", related=Project),
        ListFilter("from", "Starts from", "start_date", kind="date_from"),
        ListFilter("to", "Starts until", "start_date", kind="date_to"),
    ),
    check=_check_assignment,
    check_reads=("task_id", "project_id", "start_date", "end_date"),
)

time_entries = RecordService(
    model=TimeEntry,
    label="time entry",
    fields={
        "person_id": FieldSpec(required=True, related=Person),
        "project_id": FieldSpec(required=True, related=Project),
        "task_id": FieldSpec(related=Task),
        "spent_on": FieldSpec(required=True),
        "hours": FieldSpec(required=True, minimum=Decimal("0.01"), maximum=Decimal(24)),
        "billable": FieldSpec(),
        "note": FieldSpec(max_length=5000),
        "external_id": FieldSpec(max_length=255, unique=True),
    },
    search_columns=("note",),
    sort_columns=("spent_on", "hours", "updated_at"),
    default_sort="-spent_on",
    filters=(
        ListFilter("person", "Person", "person_id", kind="related", related=Person),
        ListFilter("project", "Project", "project_id", kind="related", related=Project),
        ListFilter("billable", "Billable", "billable", kind="bool"),
        ListFilter("from", "From", "spent_on", kind="date_from"),
        ListFilter("to", "To", "spent_on", kind="date_to"),
    ),
    check=_check_time_entry,
    check_reads=("task_id", "project_id"),
)

comments = RecordService(
    model=Comment,
    label="comment",
    fields={
        "task_id": FieldSpec(required=True, related=Task),
        "author_id": FieldSpec(related=Person),
        "body": FieldSpec(required=True, max_length=20000),
        "external_id": FieldSpec(max_length=255, unique=True),
    },
    search_columns=("body",),
    sort_columns=("created_at", "updated_at"),
    default_sort="-created_at",
    filters=(
        ListFilter("task", "Task", "task_id", kind="related", related=Task),
        ListFilter("author", "Author", "author_id", kind="related", related=Person),
    ),
)
