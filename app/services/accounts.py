"""Organisations, users and memberships: first-run setup, members, invitations, sign-in."""

from __future__ import annotations

import re

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select

from app.errors import Conflict, DomainError, NotFound, ValidationFailed
from app.extensions import db
from app.models import Membership, Organization, Role, User, utcnow
from app.security.passwords import hash_password, password_problem, verify_password
from app.security.throttling import login_throttle
from app.services import audit
from app.services.audit import Actor

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
INVITATION_MAX_AGE = 7 * 24 * 3600


class SignInFailed(DomainError):
    status_code = 401

    def __init__(self, message: str = "Email or password is incorrect.") -> None:
        super().__init__(message)


def needs_setup() -> bool:
    """True until the first user exists: then /setup is the only way in."""
    return db.session.scalar(select(func.count(User.id))) == 0


def setup_first_run(org_name: str, org_slug: str, email: str, name: str, password: str) -> tuple[Organization, User]:
    if not needs_setup():
        raise Conflict("Interchange is already set up.")
    actor = Actor(user=None, label_override="setup")
    org = create_org(org_slug, org_name, actor, commit=False)
    user, _ = create_user(email, org, Role.ADMIN, actor, password=password, name=name, commit=False)
    db.session.commit()
    return org, user


def create_org(slug: str, name: str, actor: Actor, *, commit: bool = True) -> Organization:
    slug = slug.strip().lower()
    name = name.strip()
    errors = {}
    if not SLUG_RE.match(slug):
        errors["slug"] = "Use lower-case letters, digits and dashes (1 to 63 characters)."
    elif db.session.scalar(select(Organization.id).where(Organization.slug == slug)):
        errors["slug"] = f"An organisation with the slug {slug!r} already exists."
    if not name:
        errors["name"] = "Give the organisation a name."
    if errors:
        raise ValidationFailed(errors)
    org = Organization(slug=slug, name=name[:200])
    db.session.add(org)
    db.session.flush()
    audit.record(org, actor, "org.created", org)
    if commit:
        db.session.commit()
    return org


def get_org_by_slug(slug: str) -> Organization:
    org = db.session.scalar(select(Organization).where(Organization.slug == slug.strip().lower()))
    if org is None:
        raise NotFound(f"Organisation {slug!r}")
    return org


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    email: str,
    org: Organization,
    role: Role | str,
    actor: Actor,
    *,
    password: str | None = None,
    name: str = "",
    commit: bool = True,
) -> tuple[User, Membership]:
    """Create the user (or reuse one with that email) and make them a member of ``org``."""
    email = normalise_email(email)
    errors = {}
    if not EMAIL_RE.match(email) or len(email) > 320:
        errors["email"] = "Enter a valid email address."
    try:
        role = Role(role)
    except ValueError:
        errors["role"] = f"Role must be one of {', '.join(r.value for r in Role)}."
    if password is not None and (problem := password_problem(password)):
        errors["password"] = problem
    if errors:
        raise ValidationFailed(errors)
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name.strip()[:200], is_active=True)
        if password is not None:
            user.password_hash = hash_password(password)
        db.session.add(user)
        db.session.flush()
        audit.record(org, actor, "user.created", user)
    elif password is not None:
        raise ValidationFailed({"email": "This user already exists; they keep their own password."})
    membership = db.session.scalar(
        select(Membership).where(Membership.user_id == user.id, Membership.organization_id == org.id)
    )
    if membership is not None:
        raise ValidationFailed({"email": f"{email} is already a member of {org.name}."})
    membership = Membership(user=user, organization=org, role=role.value, is_active=True)
    db.session.add(membership)
    db.session.flush()
    audit.record(org, actor, "member.added", user, details={"role": role.value})
    if commit:
        db.session.commit()
    return user, membership


def list_members(org: Organization) -> list[Membership]:
    return list(
        db.session.scalars(
            select(Membership).join(User).where(Membership.organization_id == org.id).order_by(User.email)
        )
    )


def get_membership(org: Organization, membership_id: int) -> Membership:
    membership = db.session.scalar(
        select(Membership).where(Membership.id == membership_id, Membership.organization_id == org.id)
    )
    if membership is None:
        raise NotFound("Member")
    return membership


def active_admins(org: Organization) -> int:
    """How many active admins ``org`` has (an organisation must keep at least one)."""
    return db.session.scalar(
        select(func.count(Membership.id)).where(
            Membership.organization_id == org.id, Membership.role == Role.ADMIN.value, Membership.is_active.is_(True)
        )
    )


def change_role(org: Organization, actor: Actor, membership_id: int, role: Role | str) -> Membership:
    membership = get_membership(org, membership_id)
    try:
        role = Role(role)
    except ValueError as exc:
        raise ValidationFailed({"role": "Choose a valid role."}) from exc
    old = membership.role
    if old == role.value:
        return membership
    if old == Role.ADMIN.value and membership.is_active and active_admins(org) <= 1:
        raise Conflict("An organisation needs at least one active admin; promote someone else first.")
    membership.role = role.value
    audit.record(org, actor, "member.role_changed", membership.user, details={"from": old, "to": role.value})
    db.session.commit()
    return membership


def set_member_active(org: Organization, actor: Actor, membership_id: int, active: bool) -> Membership:
    membership = get_membership(org, membership_id)
    if membership.is_active == active:
        return membership
    if not active:
        if actor.user is not None and membership.user_id == actor.user.id:
            raise Conflict("You cannot deactivate yourself.")
        if membership.role == Role.ADMIN.value and active_admins(org) <= 1:
            raise Conflict("An organisation needs at least one active admin.")
    membership.is_active = active
    audit.record(org, actor, "member.activated" if active else "member.deactivated", membership.user)
    db.session.commit()
    return membership


def _invitation_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="invitation")


def invite_member(
    org: Organization, actor: Actor, email: str, role: Role | str, name: str = ""
) -> tuple[User, str | None]:
    """Add a member and, for a brand-new account, return a one-time token to set its first password.

    Interchange sends no email; the admin copies the link to the person. A person who already has an
    account (a password, or a membership elsewhere) gets no token: a link that sets the password of an
    existing account would let one organisation's admin take over a member of another. The token
    carries the user's current password hash, so it stops working once used.
    """
    user, membership = create_user(email, org, role, actor, name=name, commit=False)
    db.session.commit()
    if user.password_hash or any(m.id != membership.id for m in user.memberships):
        return user, None
    return user, invitation_token(user)


def invitation_token(user: User) -> str:
    return _invitation_serializer().dumps({"uid": user.id, "ph": user.password_hash or ""})


def user_for_invitation(token: str) -> User:
    try:
        data = _invitation_serializer().loads(token, max_age=INVITATION_MAX_AGE)
    except SignatureExpired as exc:
        raise DomainError("This invitation link has expired; ask your admin for a new one.") from exc
    except BadSignature as exc:
        raise DomainError("This invitation link is not valid.") from exc
    user = db.session.get(User, data.get("uid"))
    # Only a first password: a link must never reset the password of an account already in use.
    if user is None or user.password_hash or data.get("ph") or not user.is_active:
        raise DomainError("This invitation link has already been used or is no longer valid.")
    return user


def accept_invitation(token: str, password: str, ip_address: str | None) -> User:
    user = user_for_invitation(token)
    if problem := password_problem(password):
        raise ValidationFailed({"password": problem})
    user.password_hash = hash_password(password)
    actor = Actor(user=user, ip_address=ip_address)
    for membership in user.memberships:
        audit.record(membership.organization, actor, "user.password_set", user)
    db.session.commit()
    return user


def authenticate(email: str, password: str, ip_address: str) -> User:
    """Check a password sign-in, with throttling, and audit the outcome either way."""
    email = normalise_email(email)
    throttle = login_throttle()
    throttle.check(email, ip_address)
    user = db.session.scalar(select(User).where(User.email == email))
    ok = verify_password(user.password_hash if user else None, password)
    actor = Actor(user=user, ip_address=ip_address, label_override=None if user else email[:320])
    orgs = [m.organization for m in user.memberships] if user else [None]
    if not ok:
        throttle.record_failure(email, ip_address)
        for org in orgs:
            audit.record(org, actor, "auth.login_failed", user, details={"reason": "bad_credentials"})
        db.session.commit()
        raise SignInFailed()
    active_orgs = [m.organization for m in user.memberships if m.is_active]
    if not user.is_active or not active_orgs:
        for org in orgs:
            audit.record(org, actor, "auth.login_refused", user, details={"reason": "deactivated"})
        db.session.commit()
        raise SignInFailed("Your account is deactivated. Ask an admin of your organisation to reactivate it.")
    from app.services.sso.login import password_barred_orgs  # sso.login builds on this module

    barred = password_barred_orgs(user)
    if barred and {org.id for org in barred} >= {org.id for org in active_orgs}:
        for org in active_orgs:
            audit.record(org, actor, "auth.login_refused", user, details={"reason": "sso_required"})
        db.session.commit()
        raise SignInFailed(f"{barred[0].name} signs in through single sign-on: leave the password empty and "
                           "continue.")
    active_orgs = [org for org in active_orgs if org not in barred]
    throttle.record_success(email)
    user.last_login_at = utcnow()
    for org in active_orgs:
        audit.record(org, actor, "auth.login_succeeded", user)
    db.session.commit()
    return user


def record_logout(user: User, org: Organization | None, ip_address: str | None) -> None:
    audit.record(org, Actor(user=user, ip_address=ip_address), "auth.logout", user)
    db.session.commit()
