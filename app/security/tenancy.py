"""The current organisation of a request: chosen from the user's active memberships.

A session may be limited to some of the user's organisations (``ALLOWED_KEY``, a list of organisation ids):
a single sign-on vouches for the user in the organisation whose identity provider signed them in, and only
there (an organisation's IdP is run by that organisation's admins, who must not reach the user's other
organisations); a password sign-in does not reach organisations that require single sign-on. Without the key,
every active membership is open (a password sign-in of a user none of whose organisations require SSO).
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import g, request, session
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db
from app.models import Membership, Organization

SESSION_KEY = "org_id"
ALLOWED_KEY = "allowed_org_ids"
SSO_ORG_KEY = "sso_org_id"  # the organisation whose identity provider signed this session in
# Asset requests need no organisation; skipping them saves a query per file.
STATIC_ENDPOINTS = frozenset({"static", "bootstrap.static"})


def restrict_session(org_ids: Iterable[int], *, sso_org_id: int | None = None) -> None:
    """Limit the signed-in session to ``org_ids`` (call right after ``login_user``); note the vouching IdP's org."""
    session[ALLOWED_KEY] = sorted(set(org_ids))
    if sso_org_id is not None:
        session[SSO_ORG_KEY] = sso_org_id
    else:
        session.pop(SSO_ORG_KEY, None)


def allowed_org_ids() -> set[int] | None:
    """The organisations this session may enter, or None when it may enter all of the user's organisations."""
    allowed = session.get(ALLOWED_KEY)
    return None if allowed is None else {int(org_id) for org_id in allowed}


def load_current_org() -> None:
    """before_request: set ``g.org`` and ``g.membership`` (both None when signed out)."""
    g.org = None
    g.membership = None
    g.memberships = []
    if request.endpoint in STATIC_ENDPOINTS or not current_user.is_authenticated:
        return
    query = (
        select(Membership)
        .join(Organization)
        .where(Membership.user_id == current_user.id, Membership.is_active.is_(True))
        .order_by(Organization.name)
    )
    allowed = allowed_org_ids()
    if allowed is not None:
        query = query.where(Membership.organization_id.in_(allowed))
    memberships = db.session.scalars(query).all()
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
    """Make ``org_id`` current if the user is an active member there and this session may enter it."""
    if any(m.organization_id == org_id for m in g.get("memberships", [])):
        session[SESSION_KEY] = org_id
        return True
    return False
