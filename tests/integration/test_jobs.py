"""Background jobs end to end: the row, the RQ queue entry, the runner, the sweeper and the job pages.

Jobs run on a real RQ worker (``rq_burst``) against the test Redis; Redis loss is
real too (``flushdb`` empties it as a restart without persistence would).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq.job import Job
from sqlalchemy import select

from app.errors import ValidationFailed
from app.extensions import db, redis_store
from app.models import AuditEvent, BackgroundJob, JobStatus, Role, utcnow
from app.services import jobs, maintenance
from app.services.audit import Actor
from tests.factories import AuditEventFactory
from tests.jobs_for_tests import DOMAIN_MESSAGE, SECRET_IN_CRASH, TEST_KINDS, UNREACHABLE_REDIS_URL, app_with_redis
from workers import runner


@pytest.fixture
def admin(make_member):
    return make_member(Role.ADMIN)


@pytest.fixture
def org(admin):
    return admin.memberships[0].organization


@pytest.fixture
def test_kinds():
    """Register the test-only job kinds for one test."""
    jobs.JOB_KINDS.update(TEST_KINDS)
    yield
    for kind in TEST_KINDS:
        jobs.JOB_KINDS.pop(kind, None)


@pytest.fixture
def start(org, admin):
    """Start a job of ``kind`` in the admin's organisation; returns the row id."""

    def start_job(kind: str = "audit_retention", params: dict | None = None) -> int:
        params = {"days": 30} if params is None and kind == "audit_retention" else params
        return jobs.start_job(org, Actor(user=admin), kind, params).id

    return start_job


def reload(job_id: int) -> BackgroundJob:
    db.session.expire_all()
    return db.session.get(BackgroundJob, job_id)


def test_start_job_creates_queued_row_and_rq_job_on_its_queue(start, test_kinds):
    job_id = start("test_progress", {"total": 4})

    row = reload(job_id)
    rq_job = Job.fetch(f"job-{job_id}", connection=redis_store.client)
    assert row.status == JobStatus.QUEUED
    assert row.queue == "imports"
    assert rq_job.origin == "imports"
    assert rq_job.args == (job_id,)
    assert rq_job.func_name == "tests.jobs_for_tests.report_progress"
    assert jobs.queue("imports").job_ids == [f"job-{job_id}"]
    assert jobs.queue("default").count == 0


def test_audit_retention_job_completes_with_log_and_result(start, org, rq_burst):
    org_id = org.id
    AuditEventFactory.create_batch(3, organization_id=org_id, created_at=utcnow() - timedelta(days=45))
    recent = AuditEventFactory(organization_id=org_id, created_at=utcnow() - timedelta(days=5)).id
    job_id = start()

    rq_burst()

    row = reload(job_id)
    assert row.status == JobStatus.COMPLETED
    assert row.started_at is not None and row.finished_at is not None
    assert row.started_at <= row.finished_at
    assert row.attempts == 1
    assert row.error is None
    assert row.result == {"deleted": 3}
    lines = row.log.splitlines()
    assert lines[0].endswith(" started")
    assert lines[-1].endswith(" finished")
    assert "deleted 3 audit events older than 30 days" in row.log
    remaining = set(db.session.scalars(select(AuditEvent.id).where(AuditEvent.organization_id == org_id)))
    assert recent in remaining
    assert len(remaining) == 3  # the recent event, "job.started" and "audit.purged"


def test_audit_retention_rejects_too_short_retention(org, admin):
    with pytest.raises(ValidationFailed) as raised:
        maintenance.start_audit_retention(org, Actor(user=admin), 7)

    assert "days" in raised.value.errors
    assert db.session.scalars(select(BackgroundJob)).all() == []


def test_job_delivered_twice_runs_once(start, rq_burst):
    job_id = start()
    rq_burst()
    first = reload(job_id)
    finished_at, log = first.finished_at, first.log

    assert jobs.enqueue(first) is True
    rq_burst()

    row = reload(job_id)
    assert row.status == JobStatus.COMPLETED
    assert row.attempts == 1
    assert row.finished_at == finished_at
    assert row.log == log
    assert row.log.count(" started") == 1


def test_claim_is_granted_to_one_delivery_only(start):
    job_id = start()

    first = runner.claim(job_id)
    second = runner.claim(job_id)

    assert first is not None and first.id == job_id
    assert second is None
    row = reload(job_id)
    assert row.status == JobStatus.RUNNING
    assert row.attempts == 1


@pytest.mark.parametrize(
    ("kind", "status"),
    [("test_fails", JobStatus.FAILED), ("test_crashes", JobStatus.ERRORED)],
)
def test_job_exception_sets_status(start, rq_burst, test_kinds, kind, status):
    job_id = start(kind)

    rq_burst()

    row = reload(job_id)
    assert row.status == status
    assert row.finished_at is not None
    assert row.result == {}


def test_failed_job_error_is_the_domain_message(start, rq_burst, test_kinds):
    job_id = start("test_fails")

    rq_burst()

    assert reload(job_id).error == DOMAIN_MESSAGE


def test_errored_job_error_gives_reference_not_exception_text(start, rq_burst, test_kinds):
    job_id = start("test_crashes")

    rq_burst()

    row = reload(job_id)
    assert f"job-{job_id}" in row.error
    assert SECRET_IN_CRASH not in row.error
    assert "RuntimeError" not in row.error
    assert "Traceback" not in row.error and "Traceback" not in row.log


def test_job_progress_is_recorded_on_row_and_rq_meta(start, rq_burst, test_kinds):
    job_id = start("test_progress", {"total": 4})

    rq_burst()

    row = reload(job_id)
    assert (row.progress_done, row.progress_total) == (4, 4)
    assert row.result == {"processed": 4}
    rq_job = Job.fetch(f"job-{job_id}", connection=redis_store.client)
    assert rq_job.get_meta() == {"done": 4, "total": 4}


def test_status_endpoint_returns_row_state(client, login_as, admin, start, rq_burst, test_kinds):
    job_id = start("test_progress", {"total": 4})
    login_as(admin)
    rq_burst()

    response = client.get(f"/jobs/{job_id}/status")

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == job_id
    assert body["kind"] == "test_progress"
    assert body["status"] == "completed"
    assert (body["processed"], body["total"]) == (4, 4)
    assert body["result"] == {"processed": 4}
    assert body["error"] is None
    assert body["started_at"] and body["finished_at"]


def test_status_endpoint_hides_other_organisations_jobs(client, login_as, make_member, start):
    job_id = start()
    outsider = make_member(Role.ADMIN)
    login_as(outsider)

    response = client.get(f"/jobs/{job_id}/status")

    assert response.status_code == 404
    assert b"queued" not in response.data


def test_status_endpoint_requires_sign_in(client, start):
    job_id = start()

    response = client.get(f"/jobs/{job_id}/status")

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_jobs_list_shows_failed_job(client, login_as, admin, start, rq_burst, test_kinds):
    job_id = start("test_fails")
    login_as(admin)
    rq_burst()

    response = client.get("/jobs/?status=failed")

    assert response.status_code == 200
    assert f'href="/jobs/{job_id}"'.encode() in response.data
    assert b"Test: fails" in response.data
    assert b">failed</span>" in response.data


def test_jobs_list_filter_excludes_other_statuses(client, login_as, admin, start, rq_burst, test_kinds):
    start("test_fails")
    login_as(admin)
    rq_burst()

    response = client.get("/jobs/?status=completed")

    assert response.status_code == 200
    assert b"No jobs" in response.data
    assert b"Test: fails" not in response.data


@pytest.mark.parametrize(
    ("kind", "shown", "hidden"),
    [
        ("test_fails", DOMAIN_MESSAGE, None),
        ("test_crashes", "The job stopped on an internal error", SECRET_IN_CRASH),
    ],
)
def test_job_detail_explains_why_it_stopped(client, login_as, admin, start, rq_burst, test_kinds, kind, shown, hidden):
    job_id = start(kind)
    login_as(admin)
    rq_burst()

    response = client.get(f"/jobs/{job_id}")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Why it stopped" in page
    assert shown in page
    assert hidden is None or hidden not in page


def test_job_detail_shows_log_and_result_of_completed_job(client, login_as, admin, start, rq_burst):
    job_id = start()
    login_as(admin)
    rq_burst()

    response = client.get(f"/jobs/{job_id}")

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Audit log retention" in page
    assert "deleted: 0" in page
    assert " started" in page and " finished" in page
    assert "Why it stopped" not in page


def test_job_survives_redis_loss_and_sweeper_requeues_it(start, rq_burst):
    job_id = start()
    redis_store.client.flushdb()  # a Redis restart without persistence

    assert reload(job_id).status == JobStatus.QUEUED
    counts = jobs.sweep_lost_jobs()
    rq_burst()

    assert counts == {"requeued": 1, "recovered": 0, "abandoned": 0}
    assert reload(job_id).status == JobStatus.COMPLETED


def test_sweeper_leaves_job_still_on_its_queue(start):
    job_id = start()

    counts = jobs.sweep_lost_jobs()

    assert counts == {"requeued": 0, "recovered": 0, "abandoned": 0}
    assert jobs.queue("default").job_ids == [f"job-{job_id}"]


@pytest.fixture
def lost_running_job(start):
    """A job claimed by a worker that then died with Redis: running on the row, unknown to RQ."""

    def make(attempts: int, heartbeat_age: timedelta = timedelta(hours=2)) -> int:
        job_id = start()
        runner.claim(job_id)
        row = reload(job_id)
        row.attempts = attempts
        row.heartbeat_at = utcnow() - heartbeat_age
        db.session.commit()
        redis_store.client.flushdb()
        return job_id

    return make


def test_sweeper_requeues_lost_running_job_with_attempts_left(lost_running_job, rq_burst):
    job_id = lost_running_job(attempts=2)

    counts = jobs.sweep_lost_jobs()

    assert counts == {"requeued": 0, "recovered": 1, "abandoned": 0}
    row = reload(job_id)
    assert row.status == JobStatus.QUEUED
    assert "worker lost; queued again" in row.log
    rq_burst()
    row = reload(job_id)
    assert row.status == JobStatus.COMPLETED
    assert row.attempts == 3


def test_sweeper_gives_up_lost_running_job_after_max_attempts(lost_running_job, rq_burst):
    job_id = lost_running_job(attempts=jobs.MAX_ATTEMPTS)

    counts = jobs.sweep_lost_jobs()
    rq_burst()

    assert counts == {"requeued": 0, "recovered": 0, "abandoned": 1}
    row = reload(job_id)
    assert row.status == JobStatus.ERRORED
    assert row.finished_at is not None
    assert "interrupted too many times" in row.error
    assert jobs.queue("default").count == 0


def test_sweeper_leaves_running_job_with_fresh_heartbeat(lost_running_job):
    job_id = lost_running_job(attempts=1, heartbeat_age=timedelta(seconds=5))

    counts = jobs.sweep_lost_jobs()

    assert counts == {"requeued": 0, "recovered": 0, "abandoned": 0}
    assert reload(job_id).status == JobStatus.RUNNING


def test_sweeper_recovers_running_job_that_rq_marked_abandoned_at_once(start):
    """A worker killed outright: RQ's cleanup marked its job failed; the row's heartbeat is recent."""
    job_id = start()
    jobs.queue("default").remove(reload(job_id).rq_job_id)  # a worker took it off the queue...
    runner.claim(job_id)
    Job.fetch(reload(job_id).rq_job_id, connection=redis_store.client).set_status("failed")  # ...and died

    counts = jobs.sweep_lost_jobs()

    assert counts == {"requeued": 0, "recovered": 1, "abandoned": 0}
    assert reload(job_id).status == JobStatus.QUEUED
    assert jobs.queue("default").job_ids == [f"job-{job_id}"]


def test_sweeper_leaves_running_job_rq_still_runs(start):
    job_id = start()
    runner.claim(job_id)
    Job.fetch(reload(job_id).rq_job_id, connection=redis_store.client).set_status("started")

    assert jobs.sweep_lost_jobs(stale_after=timedelta(0)) == {"requeued": 0, "recovered": 0, "abandoned": 0}
    assert reload(job_id).status == JobStatus.RUNNING


def test_sweeper_with_zero_staleness_recovers_any_lost_running_job(lost_running_job):
    job_id = lost_running_job(attempts=1, heartbeat_age=timedelta(seconds=5))

    counts = jobs.sweep_lost_jobs(stale_after=timedelta(0))

    assert counts["recovered"] == 1
    assert reload(job_id).status == JobStatus.QUEUED


@pytest.fixture
def offline_app(app):
    """The same database, with Redis unreachable."""
    offline = app_with_redis(app, UNREACHABLE_REDIS_URL)
    with offline.app_context():
        yield offline


def test_enqueue_with_redis_down_leaves_row_queued(org, admin, offline_app):
    job = jobs.start_job(db.session.merge(org), Actor(user=db.session.merge(admin)), "audit_retention", {"days": 30})

    assert jobs.enqueue(job) is False
    row = reload(job.id)
    assert row.status == JobStatus.QUEUED
    assert row.attempts == 0


def test_jobs_worker_schedules_one_repeating_sweeper():
    from workers.main import SWEEP_JOB_ID, schedule_sweeper

    schedule_sweeper()
    schedule_sweeper()  # a second worker starting must not stack a second copy
    job = Job.fetch(SWEEP_JOB_ID, connection=redis_store.client)
    assert job.func_name == "workers.jobs.sweep_lost_jobs"
    assert job.get_status() in ("queued", "scheduled")
    assert jobs.queue("default").job_ids.count(SWEEP_JOB_ID) == 1
