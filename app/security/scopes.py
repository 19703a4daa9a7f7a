"""Scopes that API keys and OAuth tokens carry. ``admin`` implies every other scope."""

from __future__ import annotations

SCOPES: dict[str, str] = {
    "data.read": "Read people, clients, projects, tasks, assignments, time entries and comments",
    "data.write": "Create, change and delete those records",
    "imports.run": "Upload files and run imports and exports",
    "integrations.read": "See connections, sync runs and their logs",
    "integrations.write": "Create and change connections and field mappings",
    "integrations.sync": "Start syncs",
    "webhooks.manage": "Create, change and test webhooks",
    "admin": "Everything, including API keys and OAuth apps",
}


def grants(held: frozenset[str] | set[str], needed: str) -> bool:
    return needed in held or "admin" in held


def unknown_scopes(scopes: list[str] | set[str]) -> list[str]:
    return sorted(set(scopes) - set(SCOPES))
