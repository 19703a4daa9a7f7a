"""API keys: create, list, revoke and regenerate an organisation's keys.

The console page, the REST API (``/api/v1/api-keys``) and the CLI all call
these functions. A key's secret exists only in the return value of
``create_key`` / ``regenerate_key``: the database keeps its keyed hash and a
public prefix, and neither audit details nor logs ever see it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from limits import parse as parse_rate_limit
from sqlalchemy import select

from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.models import ApiKey, Organization, utcnow
from app.security import api_keys as key_format
from app.security.scopes import clean_scopes
from app.services import audit
from app.services.audit import Actor

NAME_MAX = 200
EXPIRY_DAYS = (1, 3650)
GRACE_HOURS = (0, 168)
MAX_ALLOWLIST = 100
RATE_LIMIT_MAX = 1_000_000
RATE_LIMIT_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")


def key_status(key: ApiKey, now: datetime | None = None) -> str:
    """``revoked``, ``expired``, ``grace`` (the previous secret still works) or ``active``."""
    now = now or utcnow()
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    if key.previous_key_hash and key.previous_expires_at is not None and key.previous_expires_at > now:
        return "grace"
    return "active"


def _clean_name(name: str | None, errors: dict) -> str:
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the key a name that says who or what uses it."
    elif "\x00" in name:
        errors["name"] = "The name may not contain NUL characters."
    elif len(name) > NAME_MAX:
        errors["name"] = f"Use at most {NAME_MAX} characters."
    return name


def _clean_allowlist(entries: Iterable[str] | str | None, errors: dict) -> list[str]:
    if isinstance(entries, str):
        entries = entries.split()
    networks, bad = [], []
    for entry in (e.strip() for e in (entries or []) if e and e.strip()):
        try:
            network = ipaddress.ip_network(entry, strict=False).with_prefixlen
        except ValueError:
            bad.append(entry[:60])
            continue
        if network not in networks:
            networks.append(network)
    if bad:
        errors["ip_allowlist"] = f"Not an IP address or CIDR range: {', '.join(bad)} (e.g. 203.0.113.0/24)."
    elif len(networks) > MAX_ALLOWLIST:
        errors["ip_allowlist"] = f"Use at most {MAX_ALLOWLIST} ranges."
    return networks


def _clean_rate_limit(spec: str | None, errors: dict) -> str | None:
    spec = (spec or "").strip()
    if not spec:
        return None
    match = RATE_LIMIT_RE.match(spec)
    if not match or not 1 <= int(match.group(1)) <= RATE_LIMIT_MAX:
        errors["rate_limit"] = (
            f"Write the limit as N/second, N/minute, N/hour or N/day with N from 1 to {RATE_LIMIT_MAX} "
            "(e.g. 120/minute)."
        )
        return None
    normalised = f"{int(match.group(1))}/{match.group(2)}"
    try:
        parse_rate_limit(normalised)
    except ValueError:
        errors["rate_limit"] = f"{spec!r} is not a rate limit."
        return None
    return normalised


def _clean_int(value, bounds: tuple[int, int], field: str, unit: str, errors: dict) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or not bounds[0] <= number <= bounds[1]:
        errors[field] = f"Use a whole number of {unit} from {bounds[0]} to {bounds[1]}."
        return None
    return number


def create_key(
    org: Organization,
    actor: Actor,
    name: str,
    scopes: Iterable[str] | str,
    expires_in_days: int | None = None,
    ip_allowlist: Iterable[str] | str = (),
    rate_limit: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is shown this once and never stored.

    Raises:
        ValidationFailed: a field breaks a rule (each field with its own message).
    """
    errors: dict[str, str] = {}
    name = _clean_name(name, errors)
    scope_list = clean_scopes(scopes, errors, "Choose at least one scope.")
    days = _clean_int(expires_in_days, EXPIRY_DAYS, "expires_in_days", "days", errors)
    networks = _clean_allowlist(ip_allowlist, errors)
    limit = _clean_rate_limit(rate_limit, errors)
    if errors:
        raise ValidationFailed(errors)
    secret = key_format.generate_key()
    now = utcnow()
    key = ApiKey(
        organization_id=org.id,
        name=name,
        prefix=key_format.display_prefix(secret),
        key_hash=key_format.hash_key(secret),
        scopes=scope_list,
        ip_allowlist=networks,
        rate_limit=limit,
        expires_at=now + timedelta(days=days) if days else None,
        created_by_id=actor.user.id if actor.user else None,
        created_at=now,
    )
    db.session.add(key)
    db.session.flush()
    audit.record(org, actor, "api_key.created", key, details={
        "prefix": key.prefix, "scopes": scope_list, "expires_at": key.expires_at.isoformat() if days else None,
        "ip_allowlist": networks, "rate_limit": limit,
    })
    db.session.commit()
    return key, secret


def list_keys(org: Organization) -> list[ApiKey]:
    """Every key of the organisation, newest first (revoked ones too: the list is their record)."""
    query = (
        select(ApiKey)
        .where(ApiKey.organization_id == org.id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    )
    return list(db.session.scalars(query))


def get_key(org: Organization, key_id: int) -> ApiKey:
    key = db.session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.organization_id == org.id))
    if key is None:
        raise NotFound("API key")
    return key


def revoke_key(org: Organization, actor: Actor, key_id: int) -> ApiKey:
    """Stop the key (and any previous secret in its grace period) at once. Revoking twice changes nothing."""
    key = get_key(org, key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(org, actor, "api_key.revoked", key, details={"prefix": key.prefix})
        db.session.commit()
    return key


def regenerate_key(org: Organization, actor: Actor, key_id: int, grace_hours: int = 0) -> tuple[ApiKey, str]:
    """Give the key a new secret; the old one keeps working for ``grace_hours`` (0: stops at once).

    Only one previous secret is kept: regenerating again ends the earlier one's grace period.

    Raises:
        NotFound: no such key in this organisation.
        Conflict: the key is revoked or expired (create a new one instead).
        ValidationFailed: grace_hours outside 0..168.
    """
    key = get_key(org, key_id)
    errors: dict[str, str] = {}
    hours = _clean_int(grace_hours, GRACE_HOURS, "grace_hours", "hours", errors) or 0
    if errors:
        raise ValidationFailed(errors)
    status = key_status(key)
    if status in ("revoked", "expired"):
        raise Conflict(f"This API key is {status}; create a new key instead of regenerating it.")
    secret = key_format.generate_key()
    now = utcnow()
    old_prefix = key.prefix
    key.previous_key_hash = key.key_hash
    key.previous_expires_at = now + timedelta(hours=hours)
    key.key_hash = key_format.hash_key(secret)
    key.prefix = key_format.display_prefix(secret)
    audit.record(org, actor, "api_key.regenerated", key, details={
        "previous_prefix": old_prefix, "prefix": key.prefix, "grace_hours": hours,
    })
    db.session.commit()
    return key, secret


def set_default_rate_limit(org: Organization, actor: Actor, spec: str | None) -> str | None:
    """The organisation's limit for keys and OAuth apps that have none of their own; blank: the server default."""
    errors: dict = {}
    limit = _clean_rate_limit(spec, errors)
    if errors:
        raise ValidationFailed(errors)
    if org.api_rate_limit != limit:
        audit.record(org, actor, "org.api_rate_limit_changed", org,
                     details={"from": org.api_rate_limit, "to": limit})
        org.api_rate_limit = limit
        db.session.commit()
    return limit
