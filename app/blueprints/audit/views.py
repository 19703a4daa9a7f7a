"""The audit log: filter by actor, action, object and date; start a retention purge."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import DataRequired

from app.blueprints.helpers import current_actor, int_arg, text_arg
from app.errors import ValidationFailed
from app.security import current_org, require_permission
from app.services import audit, maintenance
from app.services.querying import paginate

bp = Blueprint("audit", __name__, url_prefix="/audit")


class RetentionForm(FlaskForm):
    days = IntegerField("Keep events for (days)", default=365, validators=[DataRequired()])


def _date_arg(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


@bp.get("/")
@require_permission("integrations.admin")
def index():
    org = current_org()
    filters = audit.AuditFilters(
        actor=text_arg("actor", 320),
        action=text_arg("action", 100),
        obj=text_arg("object", 300),
        date_from=_date_arg("from"),
        date_to=_date_arg("to"),
    )
    results = paginate(audit.query_events(org, filters), int_arg("page"), 50)
    return render_template("audit/index.html", results=results, filters=filters,
                           actions=audit.action_names(org), retention_form=RetentionForm())


@bp.post("/retention")
@require_permission("integrations.admin")
def retention():
    form = RetentionForm()
    if form.validate_on_submit():
        try:
            job = maintenance.start_audit_retention(current_org(), current_actor(), form.days.data)
        except ValidationFailed as exc:
            flash(" ".join(exc.errors.get("days", [exc.message])), "danger")
        else:
            flash("The purge runs in the background.", "success")
            return redirect(url_for("jobs.detail", job_id=job.id))
    else:
        flash("Enter a number of days.", "danger")
    return redirect(url_for("audit.index"))
