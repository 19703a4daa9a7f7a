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
from sqlalchemy import or_, select, update

from app.errors import DomainError
from app.extensions import db, redis_store
from app.models import ApiKey, Membership, OAuthClient, OAuthToken, Organization, User, utcnow
from app.security import api_key_cache, api_keys, rate_limits
from app.security.api_key_cache import CachedKey
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


def _from_api_key(key: str, address: str | None) -> tuple[Principal, CachedKey | None]:
    """The key's principal, from this process's cache when it has the key (then also the entry used).

    A cached entry still has to be confirmed by the generation token, which ``authorize`` reads in
    the rate limit's round trip; ``authenticate`` reads it on its own.
    """
    if not api_keys.is_well_formed(key):
        raise Unauthenticated("The API key is not valid.")
    digest = api_keys.hash_key(key)
    entry = api_key_cache.lookup(digest)
    if entry is not None:
        _check_key(entry, digest, address)
        organization = db.session.merge(entry.organization, load=False)
        return _key_principal(entry, organization, digest), entry
    generation = api_key_cache.read_generation()  # before the row: a change committed after it is seen next time
    # One query for the key and its organisation.
    row = db.session.execute(
        select(ApiKey, Organization)
        .join(Organization, Organization.id == ApiKey.organization_id)
        .where(or_(ApiKey.key_hash == digest, ApiKey.previous_key_hash == digest))
    ).first()
    if row is None:
        raise Unauthenticated("The API key is not valid.")
    fresh = CachedKey.from_rows(row[0], row[1], generation)
    _check_key(fresh, digest, address)
    api_key_cache.store(digest, fresh)
    return _key_principal(fresh, row[1], digest), None


def _check_key(entry: CachedKey, digest: str, address: str | None) -> None:
    now = utcnow()
    if entry.revoked_at is not None:
        raise Unauthenticated("This API key has been revoked.")
    if entry.expires_at is not None and entry.expires_at <= now:
        raise Unauthenticated("This API key has expired.")
    if entry.key_hash != digest and (entry.previous_expires_at is None or entry.previous_expires_at <= now):
        raise Unauthenticated("This API key was regenerated and its grace period is over; use the new key.")
    if not _ip_allowed(entry.ip_allowlist, address):
        raise Unauthenticated(f"This API key may not be used from the address {address}.")


def _key_principal(entry: CachedKey, organization: Organization, digest: str) -> Principal:
    return Principal(
        organization=organization,
        scopes=entry.scopes,
        kind="api_key",
        subject_id=entry.key_id,
        rate_limit=entry.rate_limit,
        rate_key=f"key:{entry.key_id}",
        label=entry.label,
        extra={"digest": digest},
    )


def _record_use(principal: Principal) -> None:
    """Note a confirmed key's use (never before a cached key is confirmed: a revoked key is not 'used')."""
    if principal.kind == "api_key":
        _touch_last_used(principal.subject_id, principal.extra["digest"], request.remote_addr)


def _touch_last_used(key_id: int, digest: str, address: str | None) -> None:
    """Record use at most once a minute per key: the row is written rarely and Redis asked rarely.

    This process remembers when it last claimed the minute for a key (by hash, so
    reused row ids never collide), so most requests cost neither a Redis round
    trip nor a write; across processes the Redis flag decides who writes. The
    write is a plain UPDATE of two columns, which does not count as a change of
    the key for the key cache.
    """
    claimed = current_app.extensions.setdefault("api_key_last_used", {})
    now = monotonic()
    if now - claimed.get(digest, -LAST_USED_SECONDS) < LAST_USED_SECONDS:
        return
    claimed[digest] = now
    try:
        fresh = redis_store.client.set(f"apikey:used:{key_id}", "1", nx=True, ex=LAST_USED_SECONDS)
    except (redis.RedisError, OSError):
        fresh = False
    if fresh:
        db.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(last_used_at=utcnow(), last_used_ip=(address or "")[:45] or None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


def _from_oauth_token(token: str) -> Principal:
    # One query for the token, its app and its organisation (row.client then comes from the identity map).
    found = db.session.execute(
        select(OAuthToken, OAuthClient, Organization)
        .join(OAuthClient, OAuthClient.id == OAuthToken.client_id)
        .join(Organization, Organization.id == OAuthToken.organization_id)
        .where(OAuthToken.access_token_hash == keyed_hash(token))
    ).first()
    if found is None:
        raise Unauthenticated("The access token is not valid.")
    row, client, organization = found
    if row.access_revoked_at is not None:
        raise Unauthenticated("This access token has been revoked.")
    if row.issued_at + timedelta(seconds=row.expires_in) <= utcnow():
        raise Unauthenticated("This access token has expired.")
    if client.revoked_at is not None:
        raise Unauthenticated("The OAuth app of this access token has been revoked.")
    if row.user_id is not None and not _member_is_active(row.user_id, row.organization_id):
        # A user removed from the organisation takes the access they granted with them, at once.
        raise Unauthenticated("The user who granted this access token is no longer an active member.")
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


def _authenticate() -> tuple[Principal, CachedKey | None]:
    token = _bearer_token()
    if token.startswith(api_keys.KEY_PREFIX):
        return _from_api_key(token, request.remote_addr)
    if token.startswith(ACCESS_TOKEN_PREFIX):
        return _from_oauth_token(token), None
    raise Unauthenticated("The bearer token is neither an Interchange API key nor an access token.")


def _from_database(principal: Principal) -> Principal:
    """Authenticate again without the cache: its entry for this key is stale or cannot be confirmed."""
    api_key_cache.forget(principal.extra["digest"])
    return _authenticate()[0]


def authenticate() -> Principal:
    """The caller of this request (no rate limit), a cached key confirmed by its own Redis round trip."""
    principal, entry = _authenticate()
    if entry is not None and api_key_cache.read_generation() != entry.generation:
        principal = _from_database(principal)
    _record_use(principal)
    return principal


def authorize(scope: str) -> Principal:
    """Authenticate, count the request against the caller's rate limit, check ``scope``: ``require_scope``'s work.

    A key known to this process costs no query and one Redis round trip, which both counts the request
    and reads the key cache's generation; if that shows a change (or Redis cannot be reached) the key is
    checked again in the database before anything is answered, so a revoked key is refused at once.
    """
    try:
        principal, entry = _authenticate()
        spec = _limit_of(principal)
        generation_key = api_key_cache.GENERATION_KEY if entry else None
        counted = rate_limits.count(principal.rate_key, spec, also_get=generation_key)
        if entry is not None and (not counted.available or counted.extra != entry.generation):
            if not counted.available:
                api_key_cache.clear()
            principal = _from_database(principal)  # raises Unauthenticated for a key revoked meanwhile
            if _limit_of(principal) != spec:
                counted = rate_limits.count(principal.rate_key, _limit_of(principal))
    except Unauthenticated:
        # Failed credentials count against the caller's address, so guessing is limited too.
        rate_limits.enforce(f"ip:{request.remote_addr}", current_app.config["API_ANONYMOUS_RATE_LIMIT"])
        raise
    _record_use(principal)
    g.principal = principal
    rate_limits.apply(counted)
    if not grants(principal.scopes, scope):
        raise InsufficientScope(f"This request needs the '{scope}' scope, which the credential lacks.")
    return principal


def _limit_of(principal: Principal) -> str:
    return principal.rate_limit or current_app.config["API_RATE_LIMIT"]


def current_principal() -> Principal:
    return g.principal


def require_scope(scope: str) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            authorize(scope)
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
