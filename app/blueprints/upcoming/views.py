"""Areas whose features are not built yet: each shows an honest empty state.

An area leaves this list when its own blueprint lands (imports, exports, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template

from app.security import require_permission

bp = Blueprint("upcoming", __name__)


@dataclass(frozen=True)
class Area:
    endpoint: str
    path: str
    title: str
    what: str
    permission: str


AREAS = (
    Area("connections", "/connections", "Connections",
         "Connect Jira, Redmine and other systems and keep their data in sync.", "integrations.read"),
    Area("webhooks", "/webhooks", "Webhooks",
         "Send signed notifications of changes to other systems.", "integrations.read"),
)


def _make_view(area: Area):
    @require_permission(area.permission)
    def view():
        return render_template("upcoming/area.html", area=area)

    view.__name__ = area.endpoint
    return view


for _area in AREAS:
    bp.add_url_rule(_area.path, _area.endpoint, _make_view(_area))
