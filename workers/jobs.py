"""Job functions: thin wrappers that load their row and call a service."""

from __future__ import annotations

from app.extensions import db
from app.models import BackgroundJob, ExportJob
from app.services import exports, import_jobs, jobs, maintenance
from workers.runner import JobRun, in_app_context, job_runner


@job_runner
def run_audit_retention(job: BackgroundJob, run: JobRun) -> dict:
    """Delete an organisation's audit events older than ``params['days']``. Safe to run twice."""
    deleted = maintenance.purge_audit_events(job.organization_id, job.params["days"], progress=run.progress)
    run.log(f"deleted {deleted} audit events older than {job.params['days']} days")
    return {"deleted": deleted}


@job_runner
def run_import_validation(job: BackgroundJob, run: JobRun) -> dict:
    """Validate an uploaded import (a dry run of the pipeline). A redelivery starts the dry run over."""
    return import_jobs.execute_validation(job.params["import_id"], run)


@job_runner
def run_import(job: BackgroundJob, run: JobRun) -> dict:
    """Run an import; a redelivery after a crash resumes after the last committed chunk."""
    return import_jobs.execute_run(job.params["import_id"], run)


@job_runner
def run_import_undo(job: BackgroundJob, run: JobRun) -> dict:
    """Undo an import in one transaction; safe to deliver twice (an undone import is left alone)."""
    return import_jobs.execute_undo(job.params["import_id"], run)


@job_runner
def run_export(job: BackgroundJob, run: JobRun) -> dict:
    """Write the file of ``params['export_id']``. Safe to run twice: a finished export is left as it is."""
    export = db.session.get(ExportJob, job.params["export_id"])
    if export is None:
        run.log("the export was deleted before it ran; nothing to do")
        return {}
    result = exports.execute_export(export, progress=run.progress)
    run.log(f"exported {result['rows']} {export.entity} rows as {export.format}")
    return result


@in_app_context
def sweep_lost_jobs() -> dict:
    """Periodic: re-enqueue jobs whose queue entry Redis lost. Not a row of its own."""
    return jobs.sweep_lost_jobs()
