"""A worker SIGKILLed in the middle of an import: no half chunk, and the retried job ends with exact counts.

The worker is the real ``flask --app wsgi worker`` process; it and its forked work-horse are both
SIGKILLed, as the OOM killer or a lost machine would. Chunks are made small so the kill
lands between many committed chunks. After the kill every committed chunk is whole (records, undo
records and the resume point agree), RQ's own cleanup is run as if its abandoned-job timeout had passed,
the sweeper queues the job again, and a new worker resumes after the last committed chunk.

A second test sends a cancel to a running worker and sees it stop between chunks.
"""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
from flask import Flask
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from app.extensions import db, redis_store
from app.models import BackgroundJob, ImportJob, ImportRowChange, ImportStatus, JobStatus, Organization, Person
from app.services import import_jobs, jobs
from tests.factories import OrganizationFactory
from tests.integration.test_worker_process import PROCESS_TIMEOUT, PROJECT_ROOT, cli_env

ROWS = 12_000
CHUNK = 200
RUN_TIMEOUT = 600  # a whole import on a busy CI machine; the test ends as soon as the worker does


def people_csv(rows: int) -> bytes:
    lines = ["email,name,department,hourly_rate"]
    lines += [f"person{i}@example.com,Person {i},Dept {i % 7},{i % 90 + 10}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the worker and its work-horse (RQ forks the horse into a session of its own)."""
    try:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        try:
            member.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    process.wait(timeout=PROCESS_TIMEOUT)


@pytest.fixture
def start_worker(app: Flask, tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start ``flask worker``; any still alive at the end is killed with its work-horse."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        db.session.rollback()  # no read transaction held across the subprocess's writes (SQLite)
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker", *args], cwd=PROJECT_ROOT,
            env=cli_env(app, IMPORT_CHUNK_SIZE=str(CHUNK)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        kill(process)
    for log in sorted(tmp_path.glob("worker-*.log")):  # shown by pytest when the test failed
        print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")


def snapshot(import_id: int, org_id: int) -> tuple[ImportJob, int, int]:
    """The job, the organisation's people and the job's undo records, read fresh (and the read ended)."""
    db.session.rollback()
    job = db.session.get(ImportJob, import_id)
    db.session.refresh(job)
    persons = db.session.scalar(select(func.count()).select_from(Person).where(Person.organization_id == org_id))
    changes = db.session.scalar(select(func.count()).select_from(ImportRowChange)
                                .where(ImportRowChange.import_job_id == import_id))
    db.session.rollback()
    return job, persons, changes


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = RUN_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def queued_import() -> tuple[int, int]:
    """(import id, organisation id) of a 12,000-row people import (60 chunks) queued with on_error=skip."""
    org = OrganizationFactory()
    job = import_jobs.upload(org, None, "people", "people.csv", io.BytesIO(people_csv(ROWS)))
    import_jobs.start_run(job, "upsert", "skip")
    return job.id, org.id


def test_worker_killed_mid_import_resumes_to_exact_counts(app, start_worker, queued_import):
    import_id, org_id = queued_import
    worker = start_worker()

    def some_chunks_committed() -> bool:
        job, _, _ = snapshot(import_id, org_id)
        return job.rows_done >= 3 * CHUNK

    wait_for(some_chunks_committed, "the worker to commit a few chunks")
    kill(worker)

    job, persons, changes = snapshot(import_id, org_id)
    assert job.status == ImportStatus.RUNNING  # nobody got to record an end
    assert 0 < job.rows_done < ROWS, "the kill should land mid-import; make the file larger if this fails"
    assert job.rows_done % CHUNK == 0
    assert persons == changes == job.rows_done == job.created_count  # whole chunks only, bookkeeping included
    killed_at = job.rows_done

    # RQ marks a dead worker's job abandoned once its heartbeat entry (90 s to live) expires, and the
    # sweeper runs that cleanup itself; make the 90 s pass now rather than wait, then sweep as a worker does.
    StartedJobRegistry("imports", connection=redis_store.client).cleanup(time.time() + 24 * 3600)
    assert jobs.sweep_lost_jobs()["recovered"] == 1
    restarted = start_worker("--burst")
    assert restarted.wait(timeout=RUN_TIMEOUT) == 0

    job, persons, changes = snapshot(import_id, org_id)
    assert job.status == ImportStatus.COMPLETED, job.error_message
    assert job.counts == {"created": ROWS, "updated": 0, "unchanged": 0, "failed": 0}
    assert job.rows_done == job.total_rows == ROWS
    assert persons == changes == ROWS
    emails = select(func.count(func.distinct(Person.email))).where(Person.organization_id == org_id)
    assert db.session.scalar(emails) == ROWS
    background = db.session.get(BackgroundJob, job.background_job_id)
    assert (background.status, background.attempts) == (JobStatus.COMPLETED, 2)
    assert f"resuming after row {killed_at} of the file" in background.log


def test_cancel_reaches_a_running_worker_between_chunks(app, start_worker, queued_import):
    import_id, org_id = queued_import
    start_worker("--burst")
    wait_for(lambda: snapshot(import_id, org_id)[0].rows_done >= CHUNK, "the first committed chunk")

    import_jobs.cancel(db.session.get(ImportJob, import_id))
    wait_for(lambda: snapshot(import_id, org_id)[0].status == ImportStatus.CANCELLED, "the cancel")

    job, persons, changes = snapshot(import_id, org_id)
    assert 0 < job.created_count < ROWS
    assert persons == changes == job.created_count == job.rows_done
    assert db.session.get(Organization, org_id) is not None
