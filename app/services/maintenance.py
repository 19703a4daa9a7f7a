"""Housekeeping work that runs as background jobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete, func, select

from app.extensions import db
from app.models import AuditEvent, Organization, utcnow
from app.services import audit, jobs
from app.services.audit import Actor

BATCH = 5000


def start_audit_retention(org: Organization, actor: Actor, days: int):
    days = jobs.validate_retention_days(days)
    return jobs.start_job(org, actor, "audit_retention", {"days": days})


def purge_audit_events(org_id: int, days: int, progress: Callable[[int, int | None], None] | None = None) -> int:
    """Delete events older than ``days`` in batches, so a large purge never holds one huge transaction."""
    cutoff = utcnow() - timedelta(days=days)
    where = (AuditEvent.organization_id == org_id, AuditEvent.created_at < cutoff)
    total = db.session.scalar(select(func.count(AuditEvent.id)).where(*where)) or 0
    deleted = 0
    while True:
        ids = list(db.session.scalars(select(AuditEvent.id).where(*where).limit(BATCH)))
        if not ids:
            break
        db.session.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids)))
        db.session.commit()
        deleted += len(ids)
        if progress:
            progress(deleted, total)
    org = db.session.get(Organization, org_id)
    audit.record(org, audit.SYSTEM, "audit.purged", details={"days": days, "deleted": deleted})
    db.session.commit()
    return deleted
