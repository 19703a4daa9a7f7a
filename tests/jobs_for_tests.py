"""Test-only job functions and helpers for the background-job tests.

The job functions are real ``job_runner`` jobs that RQ imports by dotted path;
tests register them as kinds in ``JOB_KINDS`` (see ``TEST_KINDS``) for the
length of one test. ``app_with_redis`` builds a second app on the test database
bound to another Redis (an unreachable one, or a server the test restarts).
"""

from __future__ import annotations

from flask import Flask

from app import create_app
from app.errors import DomainError
from app.models import BackgroundJob
from app.services.jobs import JobKind
from workers.runner import JobRun, job_runner

UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"
DOMAIN_MESSAGE = "The source file has no header row."
SECRET_IN_CRASH = "password=hunter2 at db.internal:5432"


@job_runner
def fail_with_domain_error(job: BackgroundJob, run: JobRun) -> dict:
    raise DomainError(DOMAIN_MESSAGE)


@job_runner
def crash(job: BackgroundJob, run: JobRun) -> dict:
    raise RuntimeError(f"could not connect: {SECRET_IN_CRASH}")


@job_runner
def report_progress(job: BackgroundJob, run: JobRun) -> dict:
    """Two reports: the second inside the flush interval and without a total (the total is kept)."""
    run.progress(2, job.params["total"])
    run.progress(job.params["total"])
    return {"processed": job.params["total"]}


TEST_KINDS: dict[str, JobKind] = {
    "test_fails": JobKind("Test: fails", "tests.jobs_for_tests.fail_with_domain_error", "default"),
    "test_crashes": JobKind("Test: crashes", "tests.jobs_for_tests.crash", "default"),
    "test_progress": JobKind("Test: progress", "tests.jobs_for_tests.report_progress", "imports"),
}


def app_with_redis(app: Flask, redis_url: str) -> Flask:
    """A second app on ``app``'s database and storage, bound to the Redis at ``redis_url``."""
    keys = ("TESTING", "SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "INTERCHANGE_STORAGE", "INTERCHANGE_ENV",
            "WTF_CSRF_ENABLED", "SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE", "LOG_JSON", "LOG_LEVEL")
    return create_app({**{key: app.config[key] for key in keys}, "REDIS_URL": redis_url})
