"""Scopes that API keys and OAuth tokens carry. ``admin`` implies every other scope."""

from __future__ import annotations

from collections.abc import Iterable

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


def clean_scopes(scopes: Iterable[str] | str | None, errors: dict, empty_message: str) -> list[str]:
    """Scopes from a form, the API or the CLI, in SCOPES order; problems go into ``errors['scopes']``."""
    if isinstance(scopes, str):
        scopes = scopes.split()
    wanted = {s.strip() for s in (scopes or []) if s and s.strip()}
    if unknown := unknown_scopes(wanted):
        errors["scopes"] = f"Unknown scopes: {', '.join(unknown)}. Known scopes: {', '.join(SCOPES)}."
    elif not wanted:
        errors["scopes"] = empty_message
    return [s for s in SCOPES if s in wanted]
