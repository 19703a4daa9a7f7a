"""The core record types by their URL and API name."""

from __future__ import annotations

from app.services import clients, people, projects, tasks, work
from app.services.records import RecordService

ENTITIES: dict[str, RecordService] = {
    "people": people.service,
    "clients": clients.service,
    "projects": projects.service,
    "tasks": tasks.service,
    "assignments": work.assignments,
    "time_entries": work.time_entries,
    "comments": work.comments,
}


def service_for(slug: str) -> RecordService:
    return ENTITIES[slug]


def service_for_model(model: type) -> RecordService:
    return next(s for s in ENTITIES.values() if s.model is model)
