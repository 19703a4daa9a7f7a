"""OAuth 2.0 server state: registered apps, authorization codes and tokens.

The authlib wiring (app/security/oauth_server.py) decides *what* the protocol
allows; this module keeps the rows. Nothing secret is stored in clear: client
secrets, codes, access and refresh tokens are kept as keyed hashes
(app/security/hashing.py) and exist in clear only in a return value.

Lifetimes: codes 60 s and single use; access tokens (``ica_``) 1 h; refresh
tokens (``icr_``) 30 d, rotated on every use. Every token issued from one
authorization code shares a ``family_id``; presenting a rotated refresh token
again (a sign that it leaked) revokes the whole family.

Who may approve: an active member of the app's organisation whose role may do
in the console what each requested scope allows through the API
(``SCOPE_PERMISSIONS``): viewers grant read scopes, editors also write and
import scopes, operators also ``integrations.sync``, admins everything.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update

from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.models import (
    Membership,
    OAuthAuthorizationCode,
    OAuthClient,
    OAuthToken,
    Organization,
    Role,
    User,
    utcnow,
)
from app.security.api_auth import ACCESS_TOKEN_PREFIX
from app.security.hashing import keyed_hash, random_base62
from app.security.permissions import role_has_permission
from app.security.scopes import SCOPES, clean_scopes
from app.services import audit
from app.services.audit import Actor

CLIENT_ID_PREFIX = "icc_"
CLIENT_SECRET_PREFIX = "ics_"
REFRESH_TOKEN_PREFIX = "icr_"
RANDOM_LENGTH = 43  # base62: about 256 random bits

CODE_LIFETIME = timedelta(seconds=60)
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_LIFETIME = timedelta(days=30)

CODE_GRANTS = ("authorization_code", "refresh_token")
CLIENT_CREDENTIALS = "client_credentials"
NAME_MAX = 200
MAX_REDIRECT_URIS = 20
REDIRECT_URI_MAX = 2000
# Native apps receive the code on the loopback interface over plain http (RFC 8252 §7.3).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# The console permission a member's role needs to grant each scope to an app.
SCOPE_PERMISSIONS: dict[str, str] = {
    "data.read": "integrations.read",
    "integrations.read": "integrations.read",
    "data.write": "integrations.write",
    "imports.run": "integrations.write",
    "integrations.write": "integrations.write",
    "webhooks.manage": "integrations.write",
    "integrations.sync": "integrations.sync",
    "admin": "integrations.admin",
}


# --- registration (the OAuth apps page) -------------------------------------------------------------------------


def _clean_redirect_uri(uri: str) -> str | None:
    """The reason ``uri`` may not be registered, or None when it may."""
    if len(uri) > REDIRECT_URI_MAX or any(c.isspace() for c in uri):
        return f"{uri[:60]}: not a single URL of at most {REDIRECT_URI_MAX} characters."
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return f"{uri[:60]}: not a URL."
    if "#" in uri:
        return f"{uri[:60]}: a redirect URI may not have a fragment (#...)."
    if not host or parts.username or parts.password:
        return f"{uri[:60]}: give a full URL with a host and no user name or password."
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return None
    return f"{uri[:60]}: use https (plain http only for native apps on 127.0.0.1 or localhost)."


def _clean_redirect_uris(uris: Iterable[str] | str | None, errors: dict) -> list[str]:
    if isinstance(uris, str):
        uris = uris.splitlines()
    cleaned: list[str] = []
    problems = []
    for uri in (u.strip() for u in (uris or []) if u and u.strip()):
        if (problem := _clean_redirect_uri(uri)) is not None:
            problems.append(problem)
        elif uri not in cleaned:
            cleaned.append(uri)
    if problems:
        errors["redirect_uris"] = problems
    elif len(cleaned) > MAX_REDIRECT_URIS:
        errors["redirect_uris"] = f"Register at most {MAX_REDIRECT_URIS} redirect URIs."
    return cleaned


def _grant_types(confidential: bool, redirect_uris: list[str], client_credentials: bool, errors: dict) -> list[str]:
    grants = list(CODE_GRANTS) if redirect_uris else []
    if client_credentials:
        if confidential:
            grants.append(CLIENT_CREDENTIALS)
        else:
            errors["client_credentials"] = "Only confidential apps (with a secret) may use client credentials."
    if not grants and "redirect_uris" not in errors and "client_credentials" not in errors:
        errors["redirect_uris"] = (
            "Add at least one redirect URI (for sign-in with consent)"
            + (", or allow client credentials." if confidential else ".")
        )
    return grants


def _new_secret() -> str:
    return CLIENT_SECRET_PREFIX + random_base62(RANDOM_LENGTH)


def register_client(
    org: Organization,
    actor: Actor,
    name: str,
    confidential: bool,
    redirect_uris: Iterable[str] | str,
    scopes: Iterable[str] | str,
    client_credentials: bool = False,
) -> tuple[OAuthClient, str | None]:
    """Register an app; return it with its client secret (None for a public app), shown this once.

    Raises:
        ValidationFailed: a field breaks a rule (https redirect URIs, known scopes, a usable grant).
    """
    errors: dict = {}
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        errors["name"] = f"Give the app a name of 1 to {NAME_MAX} characters; people see it on the consent page."
    uris = _clean_redirect_uris(redirect_uris, errors)
    scope_list = clean_scopes(scopes, errors, "Choose at least one scope the app may ask for.")
    grants = _grant_types(confidential, uris, client_credentials, errors)
    if errors:
        raise ValidationFailed(errors)
    secret = _new_secret() if confidential else None
    client = OAuthClient(
        organization_id=org.id,
        name=name,
        client_id=CLIENT_ID_PREFIX + random_base62(24),
        client_secret_hash=keyed_hash(secret) if secret else None,
        is_confidential=confidential,
        redirect_uris=uris,
        scopes=scope_list,
        grant_types=grants,
        created_by_id=actor.user.id if actor.user else None,
        created_at=utcnow(),
    )
    db.session.add(client)
    db.session.flush()
    audit.record(org, actor, "oauth_app.created", client, details={
        "client_id": client.client_id, "confidential": confidential, "redirect_uris": uris, "scopes": scope_list,
        "grant_types": grants,
    })
    db.session.commit()
    return client, secret


def list_clients(org: Organization) -> list[OAuthClient]:
    """Every app of the organisation, newest first (revoked ones too)."""
    query = OAuthClient.for_org(org.id).order_by(OAuthClient.created_at.desc(), OAuthClient.id.desc())
    return list(db.session.scalars(query))


def get_client(org: Organization, client_pk: int) -> OAuthClient:
    client = db.session.scalar(OAuthClient.for_org(org.id).where(OAuthClient.id == client_pk))
    if client is None:
        raise NotFound("OAuth app")
    return client


def rotate_secret(org: Organization, actor: Actor, client_pk: int) -> tuple[OAuthClient, str]:
    """Give a confidential app a new secret; the old one stops at once. Issued tokens keep working.

    Raises:
        NotFound: no such app in this organisation.
        Conflict: the app is public (it has no secret) or revoked.
    """
    client = get_client(org, client_pk)
    if not client.is_confidential:
        raise Conflict("A public app has no client secret to rotate.")
    if client.revoked_at is not None:
        raise Conflict("This app is revoked; register a new one instead.")
    secret = _new_secret()
    client.client_secret_hash = keyed_hash(secret)
    audit.record(org, actor, "oauth_app.secret_rotated", client, details={"client_id": client.client_id})
    db.session.commit()
    return client, secret


def revoke_client(org: Organization, actor: Actor, client_pk: int) -> OAuthClient:
    """Stop the app at once: its tokens, refresh tokens and pending codes no longer work. Idempotent."""
    client = get_client(org, client_pk)
    if client.revoked_at is None:
        now = utcnow()
        client.revoked_at = now
        _revoke_tokens(OAuthToken.client_id == client.id, now)
        db.session.execute(
            update(OAuthAuthorizationCode)
            .where(OAuthAuthorizationCode.client_id == client.id, OAuthAuthorizationCode.used_at.is_(None))
            .values(used_at=now)
        )
        audit.record(org, actor, "oauth_app.revoked", client, details={"client_id": client.client_id})
        db.session.commit()
    return client


# --- clients at the protocol endpoints ----------------------------------------------------------------------------


def find_active_client(client_id: str | None) -> OAuthClient | None:
    if not client_id or not client_id.startswith(CLIENT_ID_PREFIX):
        return None
    return db.session.scalar(
        select(OAuthClient).where(OAuthClient.client_id == client_id, OAuthClient.revoked_at.is_(None))
    )


def check_secret(client: OAuthClient, secret: str | None) -> bool:
    """Constant-time comparison of keyed hashes; a public app never authenticates with a secret."""
    if not client.client_secret_hash or not secret:
        return False
    return hmac.compare_digest(keyed_hash(secret), client.client_secret_hash)


def allowed_scope(client: OAuthClient, requested: str | None) -> str | None:
    """The scopes to grant: the request narrowed to the app's scopes (all of them when none are asked for).

    None when nothing asked for is allowed, which the protocol answers with ``invalid_scope``.
    """
    if not requested:
        return " ".join(client.scopes or [])
    asked = set(requested.split())
    granted = [s for s in SCOPES if s in asked and s in (client.scopes or [])]
    return " ".join(granted) or None


def approving_membership(client: OAuthClient, user: User, scope: str) -> Membership:
    """The user's membership that lets them grant ``scope`` to ``client``.

    Raises:
        Forbidden: the user is no active member of the app's organisation, or their role may not grant a scope.
    """
    membership = db.session.scalar(
        select(Membership).where(
            Membership.user_id == user.id,
            Membership.organization_id == client.organization_id,
            Membership.is_active.is_(True),
        )
    )
    org = db.session.get(Organization, client.organization_id)
    if membership is None:
        raise Forbidden(f"{client.name} belongs to {org.name}; only its active members can approve it.")
    beyond = [s for s in scope.split() if not role_has_permission(membership.role, SCOPE_PERMISSIONS[s])]
    if beyond:
        raise Forbidden(
            f"Your role in {org.name} ({Role(membership.role).label}) may not grant {', '.join(beyond)}. "
            "Ask an admin of the organisation to approve this app."
        )
    return membership


# --- authorization codes ------------------------------------------------------------------------------------------


def save_code(
    client: OAuthClient, user: User, code: str, redirect_uri: str, scope: str, challenge: str, method: str,
    actor: Actor,
) -> OAuthAuthorizationCode:
    """Store an approved authorization code (hashed) and audit the consent."""
    now = utcnow()
    row = OAuthAuthorizationCode(
        code_hash=keyed_hash(code), client_id=client.id, user_id=user.id, organization_id=client.organization_id,
        redirect_uri=redirect_uri, scope=scope, code_challenge=challenge, code_challenge_method=method,
        expires_at=now + CODE_LIFETIME, created_at=now,
    )
    db.session.add(row)
    org = db.session.get(Organization, client.organization_id)
    audit.record(org, actor, "oauth_app.authorized", client, details={"client_id": client.client_id, "scope": scope})
    db.session.commit()
    return row


def code_family(code: OAuthAuthorizationCode) -> str:
    """Every token issued from one code, through every rotation, shares this family id."""
    return f"code:{code.id}"


def find_code(client: OAuthClient, code: str) -> OAuthAuthorizationCode | None:
    """The unused, unexpired code issued to ``client``.

    A code presented again revokes the tokens it issued (RFC 6749 §4.1.2).
    """
    row = db.session.scalar(
        select(OAuthAuthorizationCode).where(
            OAuthAuthorizationCode.code_hash == keyed_hash(code), OAuthAuthorizationCode.client_id == client.id
        )
    )
    if row is None:
        return None
    if row.used_at is not None:
        revoke_family(code_family(row), reason="authorization code reused")
        return None
    return row if row.expires_at > utcnow() else None


def claim_code(code: OAuthAuthorizationCode) -> bool:
    """Mark the code used, atomically: of two concurrent exchanges only one wins."""
    result = db.session.execute(
        update(OAuthAuthorizationCode)
        .where(OAuthAuthorizationCode.id == code.id, OAuthAuthorizationCode.used_at.is_(None))
        .values(used_at=utcnow())
    )
    db.session.commit()
    return result.rowcount == 1


# --- tokens -------------------------------------------------------------------------------------------------------


def new_access_token() -> str:
    return ACCESS_TOKEN_PREFIX + random_base62(RANDOM_LENGTH)


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + random_base62(RANDOM_LENGTH)


def new_family() -> str:
    return secrets.token_hex(16)


def store_token(client: OAuthClient, token: dict, user_id: int | None, family_id: str) -> OAuthToken:
    """Keep the hashes of an issued token pair (``token`` is authlib's response body)."""
    now = utcnow()
    refresh = token.get("refresh_token")
    row = OAuthToken(
        client_id=client.id, user_id=user_id, organization_id=client.organization_id,
        access_token_hash=keyed_hash(token["access_token"]),
        refresh_token_hash=keyed_hash(refresh) if refresh else None,
        family_id=family_id, scope=token.get("scope", ""), issued_at=now,
        expires_in=int(token.get("expires_in", ACCESS_TOKEN_SECONDS)),
        refresh_expires_at=now + REFRESH_TOKEN_LIFETIME if refresh else None,
    )
    db.session.add(row)
    db.session.commit()
    return row


def find_token(value: str) -> tuple[OAuthToken, str] | None:
    """The row of an access or refresh token and which of the two ``value`` is (told apart by prefix)."""
    if value.startswith(ACCESS_TOKEN_PREFIX):
        column, kind = OAuthToken.access_token_hash, "access_token"
    elif value.startswith(REFRESH_TOKEN_PREFIX):
        column, kind = OAuthToken.refresh_token_hash, "refresh_token"
    else:
        return None
    row = db.session.scalar(select(OAuthToken).where(column == keyed_hash(value)))
    return (row, kind) if row is not None else None


def find_refresh_token(value: str) -> OAuthToken | None:
    """A usable refresh token's row. A rotated one presented again revokes its family and gives None."""
    found = find_token(value)
    if found is None or found[1] != "refresh_token":
        return None
    row = found[0]
    if row.rotated_at is not None:
        revoke_family(row.family_id, reason="rotated refresh token reused")
        return None
    return row if is_active(row, "refresh_token") else None


def claim_refresh_token(row: OAuthToken) -> bool:
    """Mark the refresh token rotated, atomically; losing the race means it was used twice: revoke the family."""
    result = db.session.execute(
        update(OAuthToken)
        .where(OAuthToken.id == row.id, OAuthToken.rotated_at.is_(None), OAuthToken.refresh_revoked_at.is_(None))
        .values(rotated_at=utcnow())
    )
    db.session.commit()
    if result.rowcount != 1:
        revoke_family(row.family_id, reason="refresh token used twice at once")
        return False
    return True


def _revoke_tokens(condition, now: datetime) -> None:
    db.session.execute(update(OAuthToken).where(condition, OAuthToken.access_revoked_at.is_(None))
                       .values(access_revoked_at=now))
    db.session.execute(update(OAuthToken).where(condition, OAuthToken.refresh_revoked_at.is_(None))
                       .values(refresh_revoked_at=now))


def revoke_family(family_id: str, reason: str) -> None:
    """Revoke every access and refresh token of the family and audit why (a leaked credential is likely)."""
    rows = list(db.session.scalars(select(OAuthToken).where(OAuthToken.family_id == family_id)))
    if not rows:
        return
    _revoke_tokens(OAuthToken.family_id == family_id, utcnow())
    client = rows[0].client
    org = db.session.get(Organization, client.organization_id)
    audit.record(org, Actor(user=None, label_override=f"oauth:{client.name}"), "oauth_token.family_revoked", client,
                 details={"client_id": client.client_id, "reason": reason, "tokens": len(rows)})
    db.session.commit()


def revoke_token(row: OAuthToken, kind: str) -> None:
    """RFC 7009: an access token alone, or a refresh token with every token of its grant (its family)."""
    if kind == "refresh_token":
        revoke_family(row.family_id, reason="refresh token revoked by the app")
        return
    if row.access_revoked_at is None:
        row.access_revoked_at = utcnow()
        db.session.commit()


def expires_at(row: OAuthToken, kind: str) -> datetime | None:
    if kind == "refresh_token":
        return row.refresh_expires_at
    return row.issued_at + timedelta(seconds=row.expires_in)


def is_revoked(row: OAuthToken, kind: str) -> bool:
    """Revoked itself, rotated (a refresh token), or issued to an app that was revoked since."""
    if row.client.revoked_at is not None:
        return True
    if kind == "refresh_token":
        return row.refresh_revoked_at is not None or row.rotated_at is not None
    return row.access_revoked_at is not None


def is_expired(row: OAuthToken, kind: str) -> bool:
    ends = expires_at(row, kind)
    return ends is not None and ends <= utcnow()


def is_active(row: OAuthToken, kind: str) -> bool:
    return not is_revoked(row, kind) and not is_expired(row, kind)


def introspection(row: OAuthToken, kind: str) -> dict:
    """RFC 7662 §2.2 fields of an active token, plus ``org`` (the organisation's slug) it is bound to."""
    client = row.client
    org = db.session.get(Organization, row.organization_id)
    body = {
        "active": True,
        "scope": row.scope,
        "client_id": client.client_id,
        "token_type": "Bearer" if kind == "access_token" else "refresh_token",
        "exp": int(expires_at(row, kind).timestamp()),
        "iat": int(row.issued_at.timestamp()),
        "sub": str(row.user_id) if row.user_id else client.client_id,
        "org": org.slug,
    }
    if row.user_id:
        body["username"] = row.user.email
    return body


def token_user(user_id: int | None, client: OAuthClient) -> User | None:
    """The user a code or refresh token acts for, if still an active member of the app's organisation."""
    if user_id is None:
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    member = db.session.scalar(
        select(Membership.id).where(
            Membership.user_id == user_id,
            Membership.organization_id == client.organization_id,
            Membership.is_active.is_(True),
        )
    )
    return user if member is not None else None
