from __future__ import annotations

from flask import Blueprint, render_template

from app.blueprints.data.pages import PAGES
from app.security import current_org, require_permission
from app.services import dashboard, jobs

bp = Blueprint("dashboard", __name__)


@bp.get("/")
@require_permission("integrations.read")
def index():
    overview = dashboard.overview(current_org())
    return render_template("dashboard/index.html", overview=overview, pages=PAGES, kinds=jobs.JOB_KINDS)
