"""Who is calling the REST API: ``Authorization: Bearer <API key | OAuth access token>``.

``require_scope`` guards every API view: it authenticates, checks the scope,
applies the caller's rate limit and leaves the principal on ``g.principal``.
It tags the view with ``required_scope`` so a test can walk every endpoint.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import wraps
from time import monotonic

import redis
from flask import current_app, g, request
from sqlalchemy import or_, select

from app.errors import DomainError
from app.extensions import db, redis_store
from app.models import ApiKey, Membership, OAuthToken, Organization, User, utcnow
from app.security import api_keys, rate_limits
from app.security.hashing import keyed_hash
from app.security.scopes import grants
from app.services.audit import Actor

log = logging.getLogger(__name__)

ACCESS_TOKEN_PREFIX = "ica_"
LAST_USED_SECONDS = 60


class Unauthenticated(DomainError):
    status_code = 401


class InsufficientScope(DomainError):
    status_code = 403


@dataclass
class Principal:
    """An authenticated API caller, bound to one organisation."""

    organization: Organization
    scopes: frozenset[str]
    kind: str  # "api_key" or "oauth"
    subject_id: int  # ApiKey.id or OAuthToken.id
    rate_limit: str | None = None
    rate_key: str = ""
    label: str = ""
    extra: dict = field(default_factory=dict)


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send an API key or OAuth access token as 'Authorization: Bearer <token>'.")
    return token.strip()


def _ip_allowed(allowlist: list[str], address: str | None) -> bool:
    if not allowlist:
        return True
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in allowlist)


def _from_api_key(key: str, address: str | None) -> Principal:
    if not api_keys.is_well_formed(key):
        raise Unauthenticated("The API key is not valid.")
    digest = api_keys.hash_key(key)
    # One query for the key and its organisation: this runs on every API request.
    row = db.session.execute(
        select(ApiKey, Organization)
        .join(Organization, Organization.id == ApiKey.organization_id)
        .where(or_(ApiKey.key_hash == digest, ApiKey.previous_key_hash == digest))
    ).first()
    if row is None:
        raise Unauthenticated("The API key is not valid.")
    api_key, organization = row
    now = utcnow()
    if api_key.revoked_at is not None:
        raise Unauthenticated("This API key has been revoked.")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise Unauthenticated("This API key has expired.")
    if api_key.key_hash != digest and (api_key.previous_expires_at is None or api_key.previous_expires_at <= now):
        raise Unauthenticated("This API key was regenerated and its grace period is over; use the new key.")
    if not _ip_allowed(api_key.ip_allowlist or [], address):
        raise Unauthenticated(f"This API key may not be used from the address {address}.")
    _touch_last_used(api_key, digest, address)
    return Principal(
        organization=organization,
        scopes=frozenset(api_key.scopes or []),
        kind="api_key",
        subject_id=api_key.id,
        rate_limit=api_key.rate_limit or organization.api_rate_limit,
        rate_key=f"key:{api_key.id}",
        label=str(api_key),
    )


def _touch_last_used(api_key: ApiKey, digest: str, address: str | None) -> None:
    """Record use at most once a minute per key: the row is written rarely and Redis asked rarely.

    This process remembers when it last claimed the minute for a key (by hash, so
    reused row ids never collide), so most requests cost neither a Redis round
    trip nor a write; across processes the Redis flag decides who writes.
    """
    claimed = current_app.extensions.setdefault("api_key_last_used", {})
    now = monotonic()
    if now - claimed.get(digest, -LAST_USED_SECONDS) < LAST_USED_SECONDS:
        return
    claimed[digest] = now
    try:
        fresh = redis_store.client.set(f"apikey:used:{api_key.id}", "1", nx=True, ex=LAST_USED_SECONDS)
    except (redis.RedisError, OSError):
        fresh = False
    if fresh:
        api_key.last_used_at = utcnow()
        api_key.last_used_ip = (address or "")[:45] or None
        db.session.commit()


def _from_oauth_token(token: str) -> Principal:
    row = db.session.scalar(select(OAuthToken).where(OAuthToken.access_token_hash == keyed_hash(token)))
    if row is None:
        raise Unauthenticated("The access token is not valid.")
    if row.access_revoked_at is not None:
        raise Unauthenticated("This access token has been revoked.")
    if row.issued_at + timedelta(seconds=row.expires_in) <= utcnow():
        raise Unauthenticated("This access token has expired.")
    client = row.client
    if client.revoked_at is not None:
        raise Unauthenticated("The OAuth app of this access token has been revoked.")
    if row.user_id is not None and not _member_is_active(row.user_id, row.organization_id):
        # A user removed from the organisation takes the access they granted with them, at once.
        raise Unauthenticated("The user who granted this access token is no longer an active member.")
    organization = db.session.get(Organization, row.organization_id)
    return Principal(
        organization=organization,
        scopes=frozenset(row.scope.split()),
        kind="oauth",
        subject_id=row.id,
        rate_limit=client.rate_limit or organization.api_rate_limit,
        rate_key=f"oauth:{client.id}",
        label=client.name,
        extra={"client_id": client.client_id, "user_id": row.user_id},
    )


def _member_is_active(user_id: int, organization_id: int) -> bool:
    return db.session.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.user_id == user_id,
            Membership.organization_id == organization_id,
            Membership.is_active.is_(True),
            User.is_active.is_(True),
        )
    ) is not None


def authenticate() -> Principal:
    token = _bearer_token()
    if token.startswith(api_keys.KEY_PREFIX):
        return _from_api_key(token, request.remote_addr)
    if token.startswith(ACCESS_TOKEN_PREFIX):
        return _from_oauth_token(token)
    raise Unauthenticated("The bearer token is neither an Interchange API key nor an access token.")


def current_principal() -> Principal:
    return g.principal


def require_scope(scope: str) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            try:
                principal = authenticate()
            except Unauthenticated:
                # Failed credentials count against the caller's address, so guessing is limited too.
                rate_limits.enforce(f"ip:{request.remote_addr}", current_app.config["API_ANONYMOUS_RATE_LIMIT"])
                raise
            g.principal = principal
            rate_limits.enforce(principal.rate_key, principal.rate_limit or current_app.config["API_RATE_LIMIT"])
            if not grants(principal.scopes, scope):
                raise InsufficientScope(f"This request needs the '{scope}' scope, which the credential lacks.")
            return view(*args, **kwargs)

        wrapped.required_scope = scope
        return wrapped

    return decorator


def api_actor() -> Actor:
    """The audit actor for the current API request: the credential, not a person.

    Audit events name the key or the OAuth app (``api-key:CI (ick_1a2b3c4d…)``), so an
    admin can tell which credential changed a record.
    """
    principal = current_principal()
    kind = "api-key" if principal.kind == "api_key" else principal.kind
    return Actor(user=None, ip_address=request.remote_addr, label_override=f"{kind}:{principal.label}"[:200])
