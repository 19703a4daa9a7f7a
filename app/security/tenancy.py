"""The current organisation of a request: chosen from the user's active memberships."""

from __future__ import annotations

from flask import g, request, session
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db
from app.models import Membership, Organization

SESSION_KEY = "org_id"
# Asset requests need no organisation; skipping them saves a query per file.
STATIC_ENDPOINTS = frozenset({"static", "bootstrap.static"})


def load_current_org() -> None:
    """before_request: set ``g.org`` and ``g.membership`` (both None when signed out)."""
    g.org = None
    g.membership = None
    g.memberships = []
    if request.endpoint in STATIC_ENDPOINTS or not current_user.is_authenticated:
        return
    memberships = db.session.scalars(
        select(Membership)
        .join(Organization)
        .where(Membership.user_id == current_user.id, Membership.is_active.is_(True))
        .order_by(Organization.name)
    ).all()
    g.memberships = memberships
    if not memberships:
        return
    chosen = next((m for m in memberships if m.organization_id == session.get(SESSION_KEY)), memberships[0])
    session[SESSION_KEY] = chosen.organization_id
    g.membership = chosen
    g.org = chosen.organization


def current_org() -> Organization:
    return g.org


def switch_org(org_id: int) -> bool:
    """Make ``org_id`` current if the user is an active member there."""
    if any(m.organization_id == org_id for m in g.get("memberships", [])):
        session[SESSION_KEY] = org_id
        return True
    return False
