"""Background jobs of the organisation: history, one job's log, and a JSON status to poll."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request

from app.blueprints.helpers import int_arg
from app.models import JobStatus
from app.security import current_org, require_permission
from app.services import jobs

bp = Blueprint("jobs", __name__, url_prefix="/jobs")


@bp.get("/")
@require_permission("integrations.read")
def index():
    status = request.args.get("status", "")
    status = status if status in set(JobStatus) else ""
    results = jobs.list_jobs(current_org(), int_arg("page"), status=status)
    return render_template("jobs/index.html", results=results, kinds=jobs.JOB_KINDS, statuses=list(JobStatus),
                           status=status)


@bp.get("/<int:job_id>")
@require_permission("integrations.read")
def detail(job_id: int):
    job = jobs.get_job(current_org(), job_id)
    return render_template("jobs/detail.html", job=job, kinds=jobs.JOB_KINDS)


@bp.get("/<int:job_id>/status")
@require_permission("integrations.read")
def status(job_id: int):
    job = jobs.get_job(current_org(), job_id)
    return jsonify(jobs.serialize_job(job))
