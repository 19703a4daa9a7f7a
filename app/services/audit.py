"""The audit trail: every admin action and every access-changing event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, or_, select

from app.extensions import db
from app.models import AuditEvent, Organization, User, utcnow
from app.services.querying import contains, escape_like


@dataclass(frozen=True)
class Actor:
    """Who is acting and from where; views build it from the request, the CLI from its flags."""

    user: User | None
    ip_address: str | None = None
    label_override: str | None = None

    @property
    def label(self) -> str:
        if self.label_override:
            return self.label_override
        return self.user.email if self.user else "system"


SYSTEM = Actor(user=None, label_override="system")


def record(
    org: Organization | None,
    actor: Actor,
    action: str,
    obj: Any = None,
    *,
    details: dict | None = None,
    object_type: str | None = None,
) -> AuditEvent:
    """Add an audit event to the session; it commits with the change it describes."""
    event = AuditEvent(
        organization_id=org.id if org else None,
        actor_id=actor.user.id if actor.user else None,
        actor_label=actor.label,
        action=action,
        object_type=object_type or (type(obj).__name__ if obj is not None else None),
        object_id=str(obj.id) if getattr(obj, "id", None) is not None else None,
        object_label=str(obj)[:300] if obj is not None else None,
        details=details or {},
        ip_address=actor.ip_address,
        created_at=utcnow(),
    )
    db.session.add(event)
    return event


@dataclass
class AuditFilters:
    actor: str = ""
    action: str = ""
    obj: str = ""
    date_from: date | None = None
    date_to: date | None = None


def query_events(org: Organization, filters: AuditFilters) -> Select:
    query = select(AuditEvent).where(AuditEvent.organization_id == org.id)
    if filters.actor:
        query = query.where(contains(AuditEvent.actor_label, filters.actor))
    if filters.action:
        query = query.where(AuditEvent.action.ilike(f"{escape_like(filters.action)}%", escape="\\"))
    if filters.obj:
        query = query.where(
            or_(
                contains(AuditEvent.object_type, filters.obj),
                contains(AuditEvent.object_label, filters.obj),
                AuditEvent.object_id == filters.obj,
            )
        )
    if filters.date_from:
        query = query.where(AuditEvent.created_at >= datetime.combine(filters.date_from, time.min))
    if filters.date_to:
        query = query.where(AuditEvent.created_at < datetime.combine(filters.date_to + timedelta(days=1), time.min))
    return query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())


def action_names(org: Organization) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.organization_id == org.id).distinct().order_by(AuditEvent.action)
        )
    )

