"""Sign-in completion shared by SAML and OIDC, home-realm discovery and the require-SSO rule for passwords.

The protocol modules hand over a verified ``SsoIdentity``; this module decides whether that person may enter the
organisation and with which role, creates them on first login (just in time), and audits every sign-in and
refusal with its reason.
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import IdentityProvider, Membership, Organization, Role, User, utcnow
from app.security.throttling import allow_event
from app.services import audit
from app.services.accounts import EMAIL_RE, active_admins, normalise_email
from app.services.audit import Actor
from app.services.sso.identity import SsoIdentity, SsoRefused

log = logging.getLogger(__name__)

DEACTIVATED = "Your account is deactivated. Ask an admin of your organisation to reactivate it."
NO_ROLE = "Your account is not allowed into this organisation. Ask your administrator to add you to a group that " \
          "has access."
NO_EMAIL = "Your identity provider did not send an email address, so you cannot be signed in."
WRONG_DOMAIN = "This organisation does not accept sign-ins for your email domain."
ELSEWHERE = "An account with your email already exists. Ask an admin of this organisation to add you as a member " \
            "first."


def role_for(provider: IdentityProvider, identity: SsoIdentity) -> Role | None:
    """The highest role among the identity's mapped groups, else the default role; None means deny."""
    mapping = {m.group: Role(m.role) for m in provider.group_roles}
    granted = [mapping[g] for g in identity.groups if g in mapping]
    if granted:
        return max(granted, key=lambda role: role.rank)
    return Role(provider.default_role) if provider.default_role else None


def _domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower()


def _email_and_role(provider: IdentityProvider, identity: SsoIdentity) -> tuple[str, Role | None]:
    email = normalise_email(identity.email or "")
    if not email or not EMAIL_RE.match(email) or len(email) > 320:
        raise SsoRefused("no_email", NO_EMAIL)
    if provider.email_domains and _domain(email) not in provider.email_domains:
        raise SsoRefused("domain_not_claimed", WRONG_DOMAIN)
    return email, role_for(provider, identity)


def check_identity(org: Organization, provider: IdentityProvider, identity: SsoIdentity) -> tuple[str, Role]:
    """The normalised email and the role this identity gets, or ``SsoRefused``; changes nothing (Test connection)."""
    email, role = _email_and_role(provider, identity)
    if role is None:
        raise SsoRefused("no_mapped_role", NO_ROLE)
    return email, role


def _admin_kept(org: Organization, provider: IdentityProvider, user: User, membership: Membership) -> str | None:
    """Why this admin must stay admin whatever the IdP says ("break_glass", "last_admin"), or None.

    Same invariant as ``accounts.change_role``: an IdP group change (or an admin in no mapped group) must not leave
    the organisation without an admin, nor demote the break-glass admin who can still sign in with a password.
    """
    if membership.role != Role.ADMIN.value:
        return None
    if provider.break_glass_user_id == user.id:
        return "break_glass"
    if active_admins(org) <= 1:
        return "last_admin"
    return None


def record_refusal(org: Organization, refused: SsoRefused, *, protocol: str, who: str | None = None,
                   ip_address: str | None = None) -> None:
    """Audit a refused SSO sign-in with its reason code (and the library's words, never shown to the user).

    At most ``SSO_REFUSAL_AUDIT_LIMIT`` rows per organisation and address: beyond that (anonymous junk posts to
    the ACS/SLS) a refusal is only logged, so nobody can flood an organisation's audit log.
    """
    details = {"reason": refused.reason, "protocol": protocol}
    if refused.detail:
        details["detail"] = refused.detail
    if ip_address and not allow_event("sso_refusal_audit", f"{org.id}:{ip_address}",
                                      current_app.config["SSO_REFUSAL_AUDIT_LIMIT"]):
        log.warning("sso sign-in refused (audit rate exceeded, not audited)",
                    extra={"organization_id": org.id, "ip_address": ip_address, **details})
        return
    user = db.session.scalar(select(User).where(User.email == normalise_email(who))) if who else None
    actor = Actor(user=user, ip_address=ip_address, label_override=None if user else (who or "sso")[:320])
    audit.record(org, actor, "auth.sso_login_refused", user, details=details)
    db.session.commit()


def complete_login(org: Organization, provider: IdentityProvider, identity: SsoIdentity, *, protocol: str,
                   ip_address: str | None = None) -> User:
    """Turn a verified identity into a signed-in user of ``org``: JIT creation, role re-evaluated, audited.

    Refuses (``SsoRefused``, audited) a disabled provider, a missing email, an unclaimed domain, a deactivated user
    or membership, no mapped role with default "deny", and an existing user of another organisation whose email
    domain this organisation has not claimed (an IdP must not take over accounts it does not own).
    """
    kept = mapped = None
    try:
        if not provider.enabled:
            raise SsoRefused("disabled", "Single sign-on is turned off for this organisation.")
        email, role = _email_and_role(provider, identity)
        user = db.session.scalar(select(User).where(User.email == email))
        membership = None
        if user is not None:
            if not user.is_active:
                raise SsoRefused("deactivated", DEACTIVATED)
            membership = db.session.scalar(
                select(Membership).where(Membership.user_id == user.id, Membership.organization_id == org.id)
            )
            if membership is not None and not membership.is_active:
                raise SsoRefused("deactivated", DEACTIVATED)
            # Only the owner of the email's domain may link an existing account to itself (see H1 in the review:
            # any other organisation's IdP could assert the email of someone else's user).
            if membership is None and _domain(email) not in (provider.email_domains or []):
                raise SsoRefused("existing_user_elsewhere", ELSEWHERE)
            if membership is not None and role != Role.ADMIN and (kept := _admin_kept(org, provider, user,
                                                                                      membership)):
                mapped, role = role, Role.ADMIN
        if role is None:
            raise SsoRefused("no_mapped_role", NO_ROLE)
    except SsoRefused as refused:
        record_refusal(org, refused, protocol=protocol, who=identity.email or identity.subject,
                       ip_address=ip_address)
        raise
    actor = Actor(user=user, ip_address=ip_address, label_override=None if user else email)
    if user is None:
        user = User(email=email, name=(identity.name or "")[:200], is_active=True, password_hash=None)
        db.session.add(user)
        db.session.flush()
        actor = Actor(user=user, ip_address=ip_address)
        audit.record(org, actor, "user.created", user, details={"via": f"sso_{protocol}"})
    elif identity.name and not user.name:
        user.name = identity.name[:200]
    if membership is None:
        membership = Membership(user=user, organization=org, role=role.value, is_active=True)
        db.session.add(membership)
        db.session.flush()
        audit.record(org, actor, "member.added", user, details={"role": role.value, "via": f"sso_{protocol}"})
    elif membership.role != role.value:
        audit.record(org, actor, "member.role_changed", user,
                     details={"from": membership.role, "to": role.value, "via": f"sso_{protocol}"})
        membership.role = role.value
    if kept:
        audit.record(org, actor, "sso.role_kept", user,
                     details={"reason": kept, "role": Role.ADMIN.value, "mapped": mapped.value if mapped else None,
                              "via": f"sso_{protocol}"})
    user.last_login_at = utcnow()
    audit.record(org, actor, "auth.sso_login_succeeded", user,
                 details={"protocol": protocol, "subject": identity.subject[:200], "role": role.value,
                          "groups": list(identity.groups)[:50]})
    db.session.commit()
    return user


def discover(email: str) -> Organization | None:
    """Home-realm discovery: the organisation whose enabled identity provider claims this email's domain."""
    email = normalise_email(email or "")
    if "@" not in email:
        return None
    domain = _domain(email)
    for provider in db.session.scalars(select(IdentityProvider).where(IdentityProvider.enabled.is_(True))):
        if domain in (provider.email_domains or []):
            return db.session.get(Organization, provider.organization_id)
    return None


def password_barred_orgs(user: User) -> list[Organization]:
    """The user's active organisations that a password sign-in must not enter: they require single sign-on.

    Decided per organisation: "require SSO" of one organisation does not lock the user out of the others (nor
    can an organisation that added an existing user as a member). The named break-glass admin of an organisation
    may still enter it with a password.
    """
    org_ids = [m.organization_id for m in user.memberships if m.is_active]
    if not org_ids:
        return []
    providers = db.session.scalars(
        select(IdentityProvider).where(IdentityProvider.organization_id.in_(org_ids),
                                       IdentityProvider.require_sso.is_(True), IdentityProvider.enabled.is_(True))
        .order_by(IdentityProvider.organization_id)
    )
    return [db.session.get(Organization, provider.organization_id) for provider in providers
            if provider.break_glass_user_id != user.id]


def password_session_orgs(user: User) -> list[int] | None:
    """The organisations a password-signed-in session of ``user`` may enter; None: all of the user's."""
    barred = {org.id for org in password_barred_orgs(user)}
    if not barred:
        return None
    return [m.organization_id for m in user.memberships if m.is_active and m.organization_id not in barred]
