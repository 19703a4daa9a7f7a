"""A short-lived per-process memory of API keys already checked, so most requests skip the database.

An entry is a snapshot of the key row and its organisation, stored under the key's keyed
hash. It is trusted only while a *generation* token in Redis still equals the one read
before the row was loaded; ``require_scope`` reads that token in the same Redis round
trip as the rate limit, so a cached request costs no query and no extra round trip.

Any committed ORM change to an ``ApiKey`` or ``Organization`` row (revoke, regenerate,
organisation default limit, rename, delete) publishes a new random token after the
commit, so every process drops its entries on its next request: revocation takes effect
at once. Expiry, grace periods and IP allow-lists are checked against the snapshot on
every request, so they need no invalidation.

Safety nets, because a revoked key must never be accepted:

- the token is random, never a counter: a flushed or restarted Redis answers nothing, which
  matches no entry, so the next request goes to the database;
- when Redis cannot be reached the entry is not used (the database decides) and the whole
  process cache is dropped, since revocations during the outage could not be published;
- entries live at most ``API_KEY_CACHE_SECONDS`` (default 30; 0 turns the cache off), which
  bounds the one case the token cannot cover: a revocation whose publication failed while
  this process, reaching Redis, did not see the outage.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from time import monotonic

import redis
from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session, make_transient_to_detached

from app.extensions import redis_store
from app.models import ApiKey, Organization

log = logging.getLogger(__name__)

GENERATION_KEY = "apikeys:generation"
_CHANGED = "api_credentials_changed"


@dataclass(frozen=True)
class CachedKey:
    """What authenticating a key needs from its row and its organisation's, as of ``generation``."""

    key_id: int
    organization: Organization  # detached snapshot; merged into the request's session when used
    scopes: frozenset[str]
    ip_allowlist: tuple[str, ...]
    rate_limit: str | None
    label: str
    key_hash: str
    expires_at: datetime | None
    revoked_at: datetime | None
    previous_expires_at: datetime | None
    generation: bytes | None = None
    loaded_at: float = 0.0

    @classmethod
    def from_rows(cls, key: ApiKey, organization: Organization, generation: bytes | None) -> CachedKey:
        return cls(
            key_id=key.id,
            organization=_detached_copy(organization),
            scopes=frozenset(key.scopes or []),
            ip_allowlist=tuple(key.ip_allowlist or []),
            rate_limit=key.rate_limit or organization.api_rate_limit,
            label=str(key),
            key_hash=key.key_hash,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            previous_expires_at=key.previous_expires_at,
            generation=generation,
            loaded_at=monotonic(),
        )


def _detached_copy(organization: Organization) -> Organization:
    """A copy of the row's column values that no session owns, so requests can merge it without a query."""
    copy = Organization(**{attr.key: getattr(organization, attr.key) for attr in Organization.__mapper__.column_attrs})
    make_transient_to_detached(copy)
    return copy


def _entries() -> dict[str, CachedKey]:
    return current_app.extensions.setdefault("api_key_cache", {})


def lookup(digest: str) -> CachedKey | None:
    """The entry for ``digest`` if it is younger than API_KEY_CACHE_SECONDS (its generation is checked later)."""
    entry = _entries().get(digest)
    if entry is not None and monotonic() - entry.loaded_at < current_app.config["API_KEY_CACHE_SECONDS"]:
        return entry
    return None


def store(digest: str, entry: CachedKey) -> None:
    if entry.generation is not None and current_app.config["API_KEY_CACHE_SECONDS"] > 0:
        _entries()[digest] = entry


def forget(digest: str) -> None:
    _entries().pop(digest, None)


def clear() -> None:
    _entries().clear()


def read_generation() -> bytes | None:
    """The current token, made if Redis has none; None when Redis cannot be reached (nothing is cached then)."""
    client = redis_store.client
    try:
        token = client.get(GENERATION_KEY)
        if token is None:
            client.set(GENERATION_KEY, secrets.token_hex(16), nx=True)
            token = client.get(GENERATION_KEY)
    except (redis.RedisError, OSError) as exc:
        log.warning("API key cache: Redis unreachable; keys are checked in the database", extra={"error": str(exc)})
        clear()
        return None
    return token


def publish() -> None:
    """A new token: every process's entries stop matching. Called after commits that change keys or organisations."""
    clear()
    try:
        redis_store.client.set(GENERATION_KEY, secrets.token_hex(16))
    except (redis.RedisError, OSError) as exc:
        log.error(
            "API key cache: could not publish a key change; other processes may use their cached copy for up to "
            "API_KEY_CACHE_SECONDS",
            extra={"error": str(exc)},
        )


def _note_changes(session: Session, _flush_context) -> None:
    # In after_flush, dirty and deleted still list what this flush wrote.
    for instance in (*session.dirty, *session.deleted):
        if isinstance(instance, ApiKey | Organization):
            session.info[_CHANGED] = True
            return


def _publish_after_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False) and has_app_context():
        publish()


def _drop_note(session: Session, _previous_transaction=None) -> None:
    session.info.pop(_CHANGED, None)


def init_app() -> None:
    """Listen on every ORM session (idempotent: several apps in one process share the listeners)."""
    for name, listener in (("after_flush", _note_changes), ("after_commit", _publish_after_commit),
                           ("after_soft_rollback", _drop_note)):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)
