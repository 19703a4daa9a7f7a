"""``job_runner``: the frame around every job function.

It claims the row atomically (so a second delivery of the same job does
nothing), records start, end, log lines and progress on the row, and turns
exceptions into a status: a DomainError is ``failed`` with its message, any
other exception is ``errored`` with a reference and the traceback goes to the
worker log only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from time import monotonic

from flask import current_app
from rq import get_current_job
from sqlalchemy import update

from app.errors import DomainError
from app.extensions import db
from app.models import BackgroundJob, JobStatus, utcnow

log = logging.getLogger(__name__)

PROGRESS_FLUSH_SECONDS = 1.0


class JobRun:
    """Handed to a job function: report progress and write log lines."""

    def __init__(self, job: BackgroundJob) -> None:
        self.job = job
        self._last_flush = 0.0

    def log(self, message: str) -> None:
        self.job.log = (self.job.log or "") + f"{utcnow():%Y-%m-%d %H:%M:%S} {message}\n"
        log.info(message, extra={"job_id": self.job.id, "kind": self.job.kind})

    def progress(self, done: int, total: int | None = None) -> None:
        """Cheap to call per chunk: Redis meta every call, the row at most once a second."""
        self.job.progress_done = done
        if total is not None:
            self.job.progress_total = total
        rq_job = get_current_job()
        if rq_job is not None:
            rq_job.meta.update(done=done, total=self.job.progress_total)
            rq_job.save_meta()
        if monotonic() - self._last_flush >= PROGRESS_FLUSH_SECONDS:
            self.job.heartbeat_at = utcnow()
            db.session.commit()
            self._last_flush = monotonic()


def claim(job_id: int) -> BackgroundJob | None:
    """Move the row from queued to running; None if another delivery got there first."""
    now = utcnow()
    result = db.session.execute(
        update(BackgroundJob)
        .where(BackgroundJob.id == job_id, BackgroundJob.status == JobStatus.QUEUED.value)
        .values(status=JobStatus.RUNNING.value, started_at=now, heartbeat_at=now, attempts=BackgroundJob.attempts + 1)
    )
    db.session.commit()
    if result.rowcount != 1:
        return None
    return db.session.get(BackgroundJob, job_id)


def _finish(job_id: int, status: JobStatus, error: str | None = None, result: dict | None = None) -> None:
    job = db.session.get(BackgroundJob, job_id)
    job.status = status.value
    job.finished_at = utcnow()
    job.error = error
    if result is not None:
        job.result = result
    db.session.commit()


def execute(fn: Callable, job_id: int) -> None:
    job = claim(job_id)
    if job is None:
        log.info("job already claimed or finished; nothing to do", extra={"job_id": job_id})
        return
    run = JobRun(job)
    run.log("started")
    try:
        result = fn(job, run)
    except DomainError as exc:
        db.session.rollback()
        log.info("job failed", extra={"job_id": job_id, "error": exc.message})
        _finish(job_id, JobStatus.FAILED, error=exc.message)
    except Exception:
        db.session.rollback()
        log.exception("job crashed", extra={"job_id": job_id})
        _finish(job_id, JobStatus.ERRORED, error=f"The job stopped on an internal error (reference job-{job_id}). "
                                                    "The details are in the worker log.")
    else:
        run.log("finished")
        db.session.commit()
        _finish(job_id, JobStatus.COMPLETED, result=result or {})
    finally:
        db.session.remove()


def in_app_context(fn: Callable) -> Callable:
    """Run ``fn`` inside the current app context, or a fresh app's when the worker has none."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            current_app._get_current_object()
        except RuntimeError:
            from app import create_app

            with create_app().app_context():
                return fn(*args, **kwargs)
        return fn(*args, **kwargs)

    return wrapper


def job_runner(fn: Callable) -> Callable[[int], None]:
    """Wrap ``fn(job, run)`` into an RQ job function taking the row id."""

    @in_app_context
    @wraps(fn)
    def wrapper(job_id: int) -> None:
        execute(fn, job_id)

    return wrapper
