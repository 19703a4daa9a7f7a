"""What the dashboard shows: record counts, recent jobs, queue health."""

from __future__ import annotations

from dataclasses import dataclass

from app.models import BackgroundJob, Organization
from app.services import entities, jobs


@dataclass
class Overview:
    counts: dict[str, int]
    recent_jobs: list[BackgroundJob]
    queues: list[jobs.QueueHealth]
    workers: int | None


def overview(org: Organization) -> Overview:
    queues, workers = jobs.queue_health()
    return Overview(
        counts={slug: service.count(org) for slug, service in entities.ENTITIES.items()},
        recent_jobs=jobs.recent_jobs(org),
        queues=queues,
        workers=workers,
    )
