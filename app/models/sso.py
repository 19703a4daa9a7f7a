"""Single sign-on configuration: one identity provider per organisation and its group-to-role mapping."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, OrgScoped, Timestamps
from app.models.orgs import User

NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"


class SsoProtocol(StrEnum):
    SAML = "saml"
    OIDC = "oidc"


class IdentityProvider(OrgScoped, Timestamps, Base):
    """How one organisation's members sign in through their company's identity provider.

    Secrets are stored encrypted (app/security/vault.py): the OIDC client secret and our own SAML signing key.
    ``default_role`` None means "deny": a user in no mapped group is refused.
    """

    __tablename__ = "identity_providers"
    __table_args__ = (UniqueConstraint("organization_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol: Mapped[str] = mapped_column(String(10), default=SsoProtocol.SAML.value)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    # SAML 2.0: the IdP, as imported from its metadata or entered by hand.
    saml_entity_id: Mapped[str | None] = mapped_column(String(1024))
    saml_sso_url: Mapped[str | None] = mapped_column(String(2048))
    saml_slo_url: Mapped[str | None] = mapped_column(String(2048))
    # Two certificates at once while the IdP rotates its signing key.
    saml_certificate: Mapped[str | None] = mapped_column(Text)
    saml_certificate_next: Mapped[str | None] = mapped_column(Text)
    saml_nameid_format: Mapped[str] = mapped_column(String(255), default=NAMEID_EMAIL)
    allow_idp_initiated: Mapped[bool] = mapped_column(Boolean, default=False)

    # OpenID Connect.
    oidc_issuer: Mapped[str | None] = mapped_column(String(2048))
    oidc_client_id: Mapped[str | None] = mapped_column(String(255))
    oidc_client_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    oidc_scopes: Mapped[str] = mapped_column(String(500), default="openid email profile")

    # Which SAML attribute / OIDC claim carries the email, the name and the groups ("" for email: the NameID).
    email_attribute: Mapped[str] = mapped_column(String(255), default="email")
    name_attribute: Mapped[str] = mapped_column(String(255), default="name")
    groups_attribute: Mapped[str] = mapped_column(String(255), default="groups")

    # Sign-in policy.
    email_domains: Mapped[list] = mapped_column(JSON, default=list)
    require_sso: Mapped[bool] = mapped_column(Boolean, default=False)
    break_glass_user_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    default_role: Mapped[str | None] = mapped_column(String(20))

    # Our side as a SAML service provider: a signing certificate per organisation, its key encrypted.
    sp_certificate: Mapped[str | None] = mapped_column(Text)
    sp_private_key_encrypted: Mapped[str | None] = mapped_column(Text)

    break_glass_user: Mapped[User | None] = relationship()
    group_roles: Mapped[list[GroupRoleMapping]] = relationship(
        back_populates="provider", cascade="all, delete-orphan", order_by="GroupRoleMapping.group"
    )

    def __str__(self) -> str:
        return f"{self.protocol.upper()} identity provider"


class GroupRoleMapping(OrgScoped, Base):
    """An IdP group value that grants a role; the highest role among a user's groups wins."""

    __tablename__ = "sso_group_roles"
    __table_args__ = (UniqueConstraint("provider_id", "group"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("identity_providers.id", ondelete="CASCADE"), index=True)
    group: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))

    provider: Mapped[IdentityProvider] = relationship(back_populates="group_roles")
