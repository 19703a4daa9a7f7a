"""Business logic. Callers write ``services.accounts.create_user(...)``; nothing here reads a request."""

from app.services import (
    accounts,
    audit,
    clients,
    dashboard,
    entities,
    health,
    jobs,
    maintenance,
    people,
    projects,
    records,
    tasks,
    work,
)

__all__ = [
    "accounts", "audit", "clients", "dashboard", "entities", "health", "jobs", "maintenance", "people", "projects",
    "records", "tasks", "work",
]
