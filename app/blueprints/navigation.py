"""The sidebar as data, and what every template may use."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, g, request

from app.security import can, current_role


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    permission: str = "integrations.read"
    section: str = ""

    def is_current(self, endpoint: str | None) -> bool:
        """Whether the page at ``endpoint`` belongs to this item: every page of an area lights its entry.

        The data pages share one blueprint, so they match by entity (``data.people_list`` and
        ``data.people_detail``); the empty-state areas share one too, so they match exactly.
        """
        if endpoint is None:
            return False
        if endpoint == self.endpoint:
            return True
        blueprint, _, view = endpoint.partition(".")
        own_blueprint, _, own_view = self.endpoint.partition(".")
        if blueprint != own_blueprint or blueprint == "upcoming":
            return False
        return blueprint != "data" or view.rsplit("_", 1)[0] == own_view.rsplit("_", 1)[0]


NAVIGATION = (
    NavItem("Dashboard", "dashboard.index"),
    NavItem("People", "data.people_list", section="Data"),
    NavItem("Clients", "data.clients_list", section="Data"),
    NavItem("Projects", "data.projects_list", section="Data"),
    NavItem("Tasks", "data.tasks_list", section="Data"),
    NavItem("Assignments", "data.assignments_list", section="Data"),
    NavItem("Time entries", "data.time_entries_list", section="Data"),
    NavItem("Comments", "data.comments_list", section="Data"),
    NavItem("Imports", "imports.history", section="Integrate"),
    NavItem("Exports", "exports.index", section="Integrate"),
    NavItem("Connections", "upcoming.connections", section="Integrate"),
    NavItem("Webhooks", "upcoming.webhooks", section="Integrate"),
    NavItem("Background jobs", "jobs.index", section="Integrate"),
    NavItem("API keys", "api_keys.index", "integrations.admin", section="Access"),
    NavItem("OAuth apps", "oauth_apps.index", "integrations.admin", section="Access"),
    NavItem("Single sign-on", "sso_settings.index", "integrations.admin", section="Access"),
    NavItem("Members", "members.index", "integrations.admin", section="Access"),
    NavItem("Audit log", "audit.index", "integrations.admin", section="Access"),
)


def init_app(app: Flask) -> None:
    @app.context_processor
    def inject_console() -> dict:
        return {
            "navigation": [item for item in NAVIGATION if g.get("membership") and can(item.permission)],
            "current_org": g.get("org"),
            "current_memberships": g.get("memberships", []),
            "current_role": current_role(),
            "can": can,
        }

    @app.template_filter("datetime")
    def format_datetime(value) -> str:
        return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""

    @app.template_global()
    def url_with(**changes) -> str:
        """The current URL with some query arguments replaced (sorting, paging, filters)."""
        from flask import url_for

        args = request.args.to_dict()
        args.update({k: v for k, v in changes.items() if v is not None})
        for key in [k for k, v in changes.items() if v is None]:
            args.pop(key, None)
        return url_for(request.endpoint, **(request.view_args or {}), **args)
