"""Server-side state of SSO logins in Redis: requests we sent, assertions already used, pending OIDC flows.

Kept on the server, not in the session cookie, because the IdP's POST to our ACS is cross-site in production and
arrives without the SameSite=Lax session cookie. Every helper fails closed: if Redis cannot answer, the login is
refused (``state_unavailable``) rather than let an unsolicited or replayed response through.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import redis

from app.extensions import redis_store
from app.services.sso.identity import SsoRefused

UNAVAILABLE = "Single sign-on is unavailable for a moment. Please try again."


def _call(operation, *args, **kwargs):
    try:
        return operation(*args, **kwargs)
    except redis.RedisError as exc:
        raise SsoRefused("state_unavailable", UNAVAILABLE) from exc


def remember_request(org_id: int, request_id: str, data: dict[str, Any], ttl_seconds: int) -> None:
    """Remember an AuthnRequest we sent, so only its answer is accepted, once."""
    _call(redis_store.client.set, f"sso:req:{org_id}:{request_id}", json.dumps(data), ex=ttl_seconds)


def take_request(org_id: int, request_id: str) -> dict[str, Any] | None:
    """The data of a request we sent and have not seen answered yet; consumed by this call."""
    raw = _call(redis_store.client.getdel, f"sso:req:{org_id}:{request_id}")
    return json.loads(raw) if raw else None


def first_use(org_id: int, kind: str, value: str, ttl_seconds: int) -> bool:
    """True the first time ``value`` (an assertion or response id) is seen while it is still valid."""
    return bool(_call(redis_store.client.set, f"sso:used:{org_id}:{kind}:{value}", b"1", nx=True,
                      ex=max(int(ttl_seconds), 1)))


def put_flow(data: dict[str, Any], ttl_seconds: int) -> str:
    """Store a pending login (e.g. OIDC state, nonce, PKCE verifier) and return an opaque handle for the session."""
    handle = secrets.token_urlsafe(24)
    _call(redis_store.client.set, f"sso:flow:{handle}", json.dumps(data), ex=ttl_seconds)
    return handle


def take_flow(handle: str | None) -> dict[str, Any] | None:
    """The pending login stored under ``handle``; consumed by this call so a callback works once."""
    if not handle:
        return None
    raw = _call(redis_store.client.getdel, f"sso:flow:{handle}")
    return json.loads(raw) if raw else None


def put_verified_login(org_id: int, data: dict[str, Any], ttl_seconds: int) -> str:
    """Keep a verified SAML login until the browser comes back same-site to finish it; return a one-time token."""
    return put_flow({"kind": "saml_login", "org": org_id, "login": data}, ttl_seconds)


def take_verified_login(org_id: int, token: str | None) -> dict[str, Any] | None:
    """The verified login stored under ``token`` for ``org_id``; consumed by this call, whoever presents it."""
    data = take_flow(token)
    if not data or data.get("kind") != "saml_login" or data.get("org") != org_id:
        return None
    return data["login"]
