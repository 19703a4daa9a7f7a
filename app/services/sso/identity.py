"""The protocol-neutral result of an SSO login, the refusal error, and the settings the OIDC module receives.

The protocol modules (saml.py, oidc.py) know nothing about users, memberships or the database: they verify what
the identity provider sent and return an ``SsoIdentity`` or raise ``SsoRefused``. Everything after that (JIT
provisioning, role mapping, audit) is shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import DomainError


@dataclass(frozen=True)
class SsoIdentity:
    """Who the identity provider says signed in."""

    subject: str  # SAML NameID or OIDC sub
    email: str
    name: str | None
    groups: tuple[str, ...]
    attributes: dict[str, list[str]] = field(default_factory=dict)  # everything the IdP sent, for "Test connection"


class SsoRefused(DomainError):
    """A login the IdP or our checks refused.

    ``message`` is plain and safe to show to the person signing in (it leaks nothing about keys or internals);
    ``reason`` is a short code (e.g. ``replayed``, ``bad_signature``, ``state_mismatch``) written to the audit log;
    ``detail`` (optional) is what the library said, for the audit log only, never shown to the user.
    """

    status_code = 403

    def __init__(self, reason: str, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class OidcSettings:
    """What the OIDC module needs, built from the organisation's IdentityProvider row (secret already decrypted)."""

    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    email_claim: str = "email"
    name_claim: str = "name"
    groups_claim: str = "groups"
