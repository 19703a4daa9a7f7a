"""The worker process: one RQ worker listening on every queue, in priority order."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask
from rq import Repeat, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy.orm import configure_mappers

from app.extensions import db, redis_store
from app.services import jobs
from workers import QUEUE_NAMES

log = logging.getLogger(__name__)

SWEEP_INTERVAL = timedelta(seconds=60)
SWEEP_JOB_ID = "periodic-sweep-lost-jobs"


def schedule_sweeper() -> None:
    """Keep one repeating sweep on the schedule (deterministic id, so workers never stack copies)."""
    try:
        existing = Job.fetch(SWEEP_JOB_ID, connection=redis_store.client)
        if existing.get_status() in ("queued", "scheduled", "started", "deferred"):
            return
    except NoSuchJobError:
        pass
    jobs.queue("default").enqueue(
        "workers.jobs.sweep_lost_jobs",
        job_id=SWEEP_JOB_ID,
        repeat=Repeat(times=10**9, interval=int(SWEEP_INTERVAL.total_seconds())),
        result_ttl=600,
    )


class InterchangeWorker(Worker):
    """An RQ worker whose forked work-horse never reuses the parent's database connections."""

    def main_work_horse(self, *args, **kwargs):
        db.engine.dispose(close=False)
        return super().main_work_horse(*args, **kwargs)


def run_worker(app: Flask, burst: bool = False) -> None:
    configure_mappers()
    recovered = jobs.sweep_lost_jobs()
    log.info("worker starting", extra={"queues": QUEUE_NAMES, **recovered})
    if not burst:
        schedule_sweeper()
    worker = InterchangeWorker([jobs.queue(name) for name in QUEUE_NAMES], connection=redis_store.client)
    worker.work(burst=burst, with_scheduler=not burst, logging_level=app.config.get("LOG_LEVEL", "INFO"))
