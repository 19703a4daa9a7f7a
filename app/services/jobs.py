"""Background jobs: create the row, enqueue after commit, sweep what Redis lost.

The row is the truth. Redis only carries the queue entry; if Redis loses it
(restart without persistence), ``sweep_lost_jobs`` enqueues the row again, and
the runner's atomic claim makes a second delivery harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import redis
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import select

from app.errors import NotFound, ValidationFailed
from app.extensions import db, redis_store
from app.models import BackgroundJob, JobStatus, Organization, utcnow
from app.services import audit
from app.services.audit import Actor
from app.services.querying import Page, paginate
from workers import QUEUE_NAMES, QUEUE_TIMEOUTS

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
LOST_RQ_STATUSES = (None, "failed", "stopped", "canceled")  # RQ no longer runs or holds the job


@dataclass(frozen=True)
class JobKind:
    label: str
    function: str  # dotted path RQ imports in the worker
    queue: str


JOB_KINDS: dict[str, JobKind] = {
    "audit_retention": JobKind("Audit log retention", "workers.jobs.run_audit_retention", "default"),
    "import_validate": JobKind("Import validation", "workers.jobs.run_import_validation", "imports"),
    "import_run": JobKind("Import", "workers.jobs.run_import", "imports"),
    "import_undo": JobKind("Import undo", "workers.jobs.run_import_undo", "imports"),
    "export": JobKind("Export", "workers.jobs.run_export", "exports"),
}


def queue(name: str) -> Queue:
    return Queue(name, connection=redis_store.client, default_timeout=QUEUE_TIMEOUTS[name])


def start_job(org: Organization | None, actor: Actor, kind: str, params: dict | None = None) -> BackgroundJob:
    """Persist a queued job row, commit, then put it on its queue."""
    spec = JOB_KINDS[kind]
    job = BackgroundJob(
        organization_id=org.id if org else None,
        kind=kind,
        queue=spec.queue,
        status=JobStatus.QUEUED.value,
        params=params or {},
        created_by_id=actor.user.id if actor.user else None,
    )
    db.session.add(job)
    db.session.flush()
    audit.record(org, actor, "job.started", job, object_type="BackgroundJob", details={"kind": kind})
    db.session.commit()
    enqueue(job)
    return job


def enqueue(job: BackgroundJob) -> bool:
    """Put a committed row on its queue. A Redis outage leaves it queued for the sweeper."""
    spec = JOB_KINDS[job.kind]
    try:
        queue(spec.queue).enqueue(
            spec.function, job.id, job_id=job.rq_job_id, job_timeout=QUEUE_TIMEOUTS[spec.queue],
            result_ttl=3600, failure_ttl=7 * 24 * 3600,
        )
    except redis.RedisError as exc:
        log.warning("could not enqueue job; the sweeper will retry", extra={"job": job.id, "error": str(exc)})
        return False
    return True


def _expire_abandoned_rq_jobs() -> None:
    """Run RQ's own abandoned-job cleanup now instead of at a worker's next maintenance (every 10 minutes).

    RQ keeps a running job's started-registry entry alive with the worker's heartbeat (every 30 s, 90 s
    to live); once a killed worker's entry expires, the cleanup marks the job failed (AbandonedJobError).
    """
    try:
        for name in QUEUE_NAMES:
            StartedJobRegistry(name, connection=redis_store.client).cleanup()
    except redis.RedisError as exc:
        log.warning("could not check RQ for abandoned jobs", extra={"error": str(exc)})


def _rq_job_status(job: BackgroundJob) -> str | None:
    try:
        return Job.fetch(job.rq_job_id, connection=redis_store.client).get_status(refresh=False)
    except NoSuchJobError:
        return None


def sweep_lost_jobs(stale_after: timedelta | None = None) -> dict[str, int]:
    """Re-enqueue queued rows whose queue entry is gone; recover running rows whose worker died.

    A running row counts as lost when RQ says nothing runs its job any more (failed, stopped,
    cancelled: a worker killed outright is marked so by RQ's abandoned-job cleanup, run here first,
    about 90 s after its last heartbeat), or when Redis no longer knows the job and the row's own
    heartbeat is older than its queue's timeout (a worker may still be running it). A lost row is
    queued again (jobs are idempotent and resume) up to MAX_ATTEMPTS, then marked errored.
    """
    counts = {"requeued": 0, "recovered": 0, "abandoned": 0}
    _expire_abandoned_rq_jobs()
    now = utcnow()
    rows = db.session.scalars(
        select(BackgroundJob).where(BackgroundJob.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
    ).all()
    for job in rows:
        rq_status = _rq_job_status(job)
        if job.status == JobStatus.QUEUED.value:
            if rq_status in LOST_RQ_STATUSES and enqueue(job):
                counts["requeued"] += 1
            continue
        # "is None", not "or": timedelta(0) is falsy but means "any heartbeat is stale".
        limit = stale_after if stale_after is not None else timedelta(seconds=QUEUE_TIMEOUTS[job.queue] + 60)
        heartbeat = job.heartbeat_at or job.started_at or job.created_at
        if rq_status is not None and rq_status not in LOST_RQ_STATUSES:
            continue
        if rq_status is None and now - heartbeat < limit:
            continue
        if job.attempts >= MAX_ATTEMPTS:
            job.status = JobStatus.ERRORED.value
            job.finished_at = now
            job.error = "The job was interrupted too many times (worker lost) and was given up."
            counts["abandoned"] += 1
        else:
            job.status = JobStatus.QUEUED.value
            job.log = (job.log or "") + f"{now:%Y-%m-%d %H:%M:%S} worker lost; queued again\n"
            counts["recovered"] += 1
    db.session.commit()
    for job in rows:
        # A dead worker's job is "failed" in RQ once its registry entry expired: queue it again now,
        # not one sweep later.
        if job.status == JobStatus.QUEUED.value and _rq_job_status(job) in LOST_RQ_STATUSES:
            enqueue(job)
    return counts


def get_job(org: Organization, job_id: int) -> BackgroundJob:
    job = db.session.scalar(
        select(BackgroundJob).where(BackgroundJob.id == job_id, BackgroundJob.organization_id == org.id)
    )
    if job is None:
        raise NotFound("Job")
    return job


def list_jobs(org: Organization, page: int = 1, status: str = "", kind: str = "") -> Page:
    query = select(BackgroundJob).where(BackgroundJob.organization_id == org.id)
    if status:
        query = query.where(BackgroundJob.status == status)
    if kind:
        query = query.where(BackgroundJob.kind == kind)
    return paginate(query.order_by(BackgroundJob.created_at.desc(), BackgroundJob.id.desc()), page, 25)


def recent_jobs(org: Organization, limit: int = 10) -> list[BackgroundJob]:
    return list(
        db.session.scalars(
            select(BackgroundJob)
            .where(BackgroundJob.organization_id == org.id)
            .order_by(BackgroundJob.created_at.desc(), BackgroundJob.id.desc())
            .limit(limit)
        )
    )


@dataclass
class QueueHealth:
    name: str
    queued: int
    started: int
    failed: int


def queue_health() -> tuple[list[QueueHealth], int | None]:
    """Per-queue counts and the number of live workers; (…, None) when Redis is unreachable."""
    try:
        conn = redis_store.client
        rows = [
            QueueHealth(
                name=name,
                queued=queue(name).count,
                started=StartedJobRegistry(name, connection=conn).count,
                failed=FailedJobRegistry(name, connection=conn).count,
            )
            for name in QUEUE_NAMES
        ]
        return rows, Worker.count(connection=conn)
    except (redis.RedisError, OSError) as exc:
        log.warning("queue health unavailable", extra={"error": str(exc)})
        return [], None


def validate_retention_days(days: int | None) -> int:
    if days is None or days < 30 or days > 3650:
        raise ValidationFailed({"days": "Keep at least 30 and at most 3650 days of audit events."})
    return days


def serialize_job(job: BackgroundJob) -> dict:
    """The status a page polls: the row is the truth; live progress is on it too."""
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "processed": job.progress_done,
        "total": job.progress_total,
        "result": job.result,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
