"""Configuring an organisation's identity provider: SAML metadata import or hand entry, OIDC, sign-in policy.

Shared by the Single sign-on page and the CLI. Every change is validated with a precise message per field
(``ValidationFailed``; nothing is stored on error) and audited with what changed (secrets only as "changed").

requests, cryptography's X.509 and python3-saml's metadata parser (~7 MB resident together) are imported inside
the functions that need them: every process imports this module, few ever configure SSO.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select

from app.errors import ValidationFailed
from app.extensions import db
from app.models import GroupRoleMapping, IdentityProvider, Membership, Organization, Role, SsoProtocol, User
from app.security import outbound, vault
from app.services import audit
from app.services.audit import Actor
from app.services.sso.identity import OidcSettings

DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
METADATA_MAX_BYTES = 1024 * 1024
METADATA_TIMEOUT = 10
DENY = "deny"


@dataclass
class SamlIdp:
    """The IdP side of a SAML configuration, from metadata or typed in."""

    entity_id: str
    sso_url: str
    slo_url: str | None = None
    certificates: list[str] = field(default_factory=list)  # one, or two while the IdP rotates its key
    nameid_format: str | None = None


@dataclass
class OidcIdp:
    issuer: str
    client_id: str
    client_secret: str | None = None  # None: keep the stored one (the form never shows it back)
    scopes: str | None = None


@dataclass
class SsoPolicy:
    """Everything shared by both protocols. ``None`` leaves a setting as it is (the CLI sets only what it is given).

    ``default_role`` is a role name or "deny"; ``group_roles`` replaces the whole table when given.
    """

    enabled: bool | None = None
    email_attribute: str | None = None
    name_attribute: str | None = None
    groups_attribute: str | None = None
    email_domains: list[str] | None = None
    require_sso: bool | None = None
    break_glass_email: str | None = None  # "" clears it
    default_role: str | None = None
    group_roles: list[tuple[str, str]] | None = None
    allow_idp_initiated: bool | None = None


def get_provider(org: Organization) -> IdentityProvider | None:
    return db.session.scalar(IdentityProvider.for_org(org.id))


def generate_sp_keypair(org: Organization) -> tuple[str, str]:
    """A self-signed RSA-2048 certificate and key for signing our AuthnRequests and logout messages (10 years)."""
    from cryptography import x509  # lazy, like the other heavy imports here (see the module docstring)
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Interchange SP {org.slug}"[:64])])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650)).sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert_pem, key_pem


def ensure_provider(org: Organization, protocol: str = SsoProtocol.SAML.value) -> IdentityProvider:
    """The organisation's provider row, created (with our SP signing key) on first configuration; not committed."""
    provider = get_provider(org)
    if provider is None:
        provider = IdentityProvider(organization_id=org.id, protocol=protocol, enabled=True, email_domains=[],
                                    allow_idp_initiated=False, require_sso=False)
        db.session.add(provider)
    if not provider.sp_certificate or not provider.sp_private_key_encrypted:
        cert, key = generate_sp_keypair(org)
        provider.sp_certificate = cert
        provider.sp_private_key_encrypted = vault.encrypt(key)
    return provider


# --- SAML metadata -----------------------------------------------------------------------------------------------

def fetch_metadata(url: str) -> bytes:
    """Download IdP metadata: http(s) only, no redirects, a timeout and a size limit; errors name the URL's problem."""
    import requests  # lazy, like the other heavy imports here (see the module docstring)

    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationFailed({"metadata_url": "Enter an http:// or https:// URL."})
    if not outbound.host_allowed(parts.hostname):
        raise ValidationFailed({"metadata_url": "This address is private or local; metadata must come from a "
                                                "public address."})
    try:
        with requests.get(url.strip(), timeout=METADATA_TIMEOUT, allow_redirects=False, stream=True) as response:
            if response.status_code != 200:
                raise ValidationFailed({"metadata_url": f"The URL answered HTTP {response.status_code}, not 200."})
            body = b""
            for chunk in response.iter_content(65536):
                body += chunk
                if len(body) > METADATA_MAX_BYTES:
                    raise ValidationFailed({"metadata_url": "The metadata is larger than 1 MB."})
            return body
    except requests.RequestException as exc:
        raise ValidationFailed({"metadata_url": f"Could not download the metadata: {type(exc).__name__}."}) from exc


def parse_metadata(xml: bytes | str, field_name: str = "metadata_file") -> SamlIdp:
    """Read entity ID, SSO and SLO URLs, signing certificates and NameID format from IdP metadata."""
    from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser  # lazy: loads lxml

    if isinstance(xml, str):
        xml = xml.encode()
    if not xml.strip():
        raise ValidationFailed({field_name: "The metadata is empty."})
    try:
        data = OneLogin_Saml2_IdPMetadataParser.parse(xml)
    except Exception as exc:  # noqa: BLE001 - lxml/DTD/entity errors: one plain message
        raise ValidationFailed({field_name: "This is not well-formed XML metadata (DTDs and entities are not "
                                            "allowed)."}) from exc
    idp = data.get("idp") or {}
    if not idp.get("entityId"):
        raise ValidationFailed({field_name: "No IDPSSODescriptor with an entityID was found in the metadata."})
    sso = (idp.get("singleSignOnService") or {}).get("url")
    if not sso:
        raise ValidationFailed({field_name: "The metadata has no SingleSignOnService with the HTTP-Redirect binding."})
    certificates = idp.get("x509certMulti", {}).get("signing") or ([idp["x509cert"]] if idp.get("x509cert") else [])
    if not certificates:
        raise ValidationFailed({field_name: "The metadata has no signing certificate (KeyDescriptor use=\"signing\")."})
    return SamlIdp(entity_id=idp["entityId"], sso_url=sso, slo_url=(idp.get("singleLogoutService") or {}).get("url"),
                   certificates=list(dict.fromkeys(certificates))[:2],
                   nameid_format=(data.get("sp") or {}).get("NameIDFormat"))


def normalise_certificate(text: str, field_name: str) -> str:
    """A PEM certificate from PEM or bare base64; a precise error when it is not an X.509 certificate."""
    from cryptography import x509  # lazy, like the other heavy imports here (see the module docstring)

    body = "".join(line for line in text.strip().splitlines() if "-----" not in line)
    body = "".join(body.split())
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) \
        + "\n-----END CERTIFICATE-----\n"
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise ValidationFailed({field_name: "This is not a PEM or base64 X.509 certificate."}) from exc
    if certificate.not_valid_after_utc < datetime.now(UTC):
        raise ValidationFailed({field_name: f"This certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}."})
    return pem


def _url_problem(url: str | None, required: bool) -> str | None:
    if not url:
        return "Enter the URL." if required else None
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return "Enter an http:// or https:// URL."
    return None


# --- policy -------------------------------------------------------------------------------------------------------

def _apply_policy(org: Organization, provider: IdentityProvider, policy: SsoPolicy, errors: dict) -> None:
    for name in ("email_attribute", "name_attribute", "groups_attribute"):
        value = getattr(policy, name)
        if value is not None:
            if len(value.strip()) > 255:
                errors[name] = "At most 255 characters."
            setattr(provider, name, value.strip())
    if policy.enabled is not None:
        provider.enabled = policy.enabled
    if policy.allow_idp_initiated is not None:
        provider.allow_idp_initiated = policy.allow_idp_initiated
    if policy.email_domains is not None:
        domains = list(dict.fromkeys(d.strip().lower().lstrip("@") for d in policy.email_domains if d.strip()))
        bad = [d for d in domains if not DOMAIN_RE.match(d)]
        if bad:
            errors["email_domains"] = f"Not a domain name: {', '.join(bad)}."
        else:
            others = db.session.scalars(
                select(IdentityProvider).where(IdentityProvider.organization_id != org.id)
            ).all()
            taken = sorted({d for other in others for d in (other.email_domains or []) if d in domains})
            if taken:
                errors["email_domains"] = f"Already claimed by another organisation: {', '.join(taken)}."
        provider.email_domains = domains
    if policy.default_role is not None:
        if policy.default_role == DENY or policy.default_role == "":
            provider.default_role = None
        elif policy.default_role in {r.value for r in Role}:
            provider.default_role = policy.default_role
        else:
            errors["default_role"] = "Choose a role or deny."
    if policy.group_roles is not None:
        _apply_group_roles(org, provider, policy.group_roles, errors)
    if policy.break_glass_email is not None:
        provider.break_glass_user_id = None
        if policy.break_glass_email.strip():
            user = db.session.scalar(
                select(User).join(Membership).where(
                    User.email == policy.break_glass_email.strip().lower(), Membership.organization_id == org.id,
                    Membership.is_active.is_(True), Membership.role == Role.ADMIN.value,
                )
            )
            if user is None:
                errors["break_glass_email"] = "This must be the email of an active admin of this organisation."
            elif not user.password_hash:
                errors["break_glass_email"] = "This admin has no password yet, so could not sign in without SSO."
            else:
                provider.break_glass_user_id = user.id
    if policy.require_sso is not None:
        provider.require_sso = policy.require_sso
    if provider.require_sso and provider.break_glass_user_id is None and "break_glass_email" not in errors:
        errors["break_glass_email"] = "Name a break-glass admin before requiring SSO, so the organisation cannot " \
                                      "be locked out if the identity provider fails."


def _apply_group_roles(org: Organization, provider: IdentityProvider, rows: list[tuple[str, str]],
                       errors: dict) -> None:
    wanted: dict[str, str] = {}
    problems = []
    for number, (group, role) in enumerate(rows, start=1):
        group = group.strip()
        if not group and not role:
            continue
        if not group:
            problems.append(f"row {number}: enter the group.")
        elif len(group) > 255:
            problems.append(f"row {number}: the group is longer than 255 characters.")
        elif role not in {r.value for r in Role}:
            problems.append(f"row {number}: choose a role for {group!r}.")
        elif group in wanted:
            problems.append(f"row {number}: {group!r} is listed twice.")
        else:
            wanted[group] = role
    if problems:
        errors["group_roles"] = problems
        return
    existing = {m.group: m for m in provider.group_roles}
    for group, mapping in existing.items():
        if group not in wanted:
            provider.group_roles.remove(mapping)
    for group, role in wanted.items():
        if group in existing:
            existing[group].role = role
        else:
            provider.group_roles.append(GroupRoleMapping(organization_id=org.id, group=group, role=role))


# --- saving -------------------------------------------------------------------------------------------------------

AUDITED = ("protocol", "enabled", "saml_entity_id", "saml_sso_url", "saml_slo_url", "saml_nameid_format",
           "allow_idp_initiated", "oidc_issuer", "oidc_client_id", "oidc_scopes", "email_attribute", "name_attribute",
           "groups_attribute", "email_domains", "require_sso", "break_glass_user_id", "default_role")


def _snapshot(provider: IdentityProvider) -> dict:
    values = {name: getattr(provider, name, None) for name in AUDITED}
    values["certificates"] = [c[-60:] for c in (provider.saml_certificate, provider.saml_certificate_next) if c]
    values["group_roles"] = sorted(f"{m.group}={m.role}" for m in provider.group_roles)
    return values


def _save(org: Organization, actor: Actor, provider: IdentityProvider, before: dict, errors: dict,
          secret_changed: bool = False) -> IdentityProvider:
    if errors:
        db.session.rollback()
        raise ValidationFailed(errors)
    db.session.flush()
    after = _snapshot(provider)
    changes = {k: {"from": before.get(k), "to": v} for k, v in after.items() if before.get(k) != v}
    if "certificates" in changes:
        changes["certificates"] = "changed"
    if secret_changed:
        changes["oidc_client_secret"] = "changed"
    audit.record(org, actor, "sso.configured", provider, details={"changes": changes})
    db.session.commit()
    return provider


def configure_saml(org: Organization, actor: Actor, idp: SamlIdp, policy: SsoPolicy | None = None) -> IdentityProvider:
    """Make ``org`` sign in through this SAML IdP (created with our SP key on first use)."""
    provider = ensure_provider(org, SsoProtocol.SAML.value)
    before = _snapshot(provider) if provider.id else {}
    errors: dict = {}
    entity_id = (idp.entity_id or "").strip()
    if not entity_id:
        errors["entity_id"] = "Enter the identity provider's entity ID."
    elif len(entity_id) > 1024:
        errors["entity_id"] = "At most 1024 characters."
    if problem := _url_problem((idp.sso_url or "").strip(), required=True):
        errors["sso_url"] = problem
    if problem := _url_problem((idp.slo_url or "").strip() or None, required=False):
        errors["slo_url"] = problem
    certificates = [c for c in idp.certificates if c and c.strip()]
    if not certificates:
        errors["certificate"] = "Paste the identity provider's signing certificate."
    if len(certificates) > 2:
        errors["certificate"] = "At most two signing certificates (the current one and the next)."
    pems = []
    for index, text in enumerate(certificates[:2]):
        name = "certificate" if index == 0 else "certificate_next"
        try:
            pems.append(normalise_certificate(text, name))
        except ValidationFailed as exc:
            errors.update(exc.errors)
    provider.protocol = SsoProtocol.SAML.value
    provider.saml_entity_id = entity_id
    provider.saml_sso_url = (idp.sso_url or "").strip()
    provider.saml_slo_url = (idp.slo_url or "").strip() or None
    provider.saml_certificate = pems[0] if pems else None
    provider.saml_certificate_next = pems[1] if len(pems) > 1 else None
    if idp.nameid_format:
        provider.saml_nameid_format = idp.nameid_format.strip()
    _apply_policy(org, provider, policy or SsoPolicy(), errors)
    return _save(org, actor, provider, before, errors)


def configure_oidc(org: Organization, actor: Actor, idp: OidcIdp, policy: SsoPolicy | None = None) -> IdentityProvider:
    """Make ``org`` sign in through this OpenID provider; the client secret is stored encrypted."""
    provider = ensure_provider(org, SsoProtocol.OIDC.value)
    before = _snapshot(provider) if provider.id else {}
    errors: dict = {}
    issuer = (idp.issuer or "").strip()  # as typed: OIDC compares issuers exactly, trailing "/" included
    if problem := _url_problem(issuer, required=True):
        errors["issuer"] = problem
    client_id = (idp.client_id or "").strip()
    if not client_id:
        errors["client_id"] = "Enter the client ID."
    elif len(client_id) > 255:
        errors["client_id"] = "At most 255 characters."
    secret_changed = bool(idp.client_secret)
    if idp.client_secret:
        provider.oidc_client_secret_encrypted = vault.encrypt(idp.client_secret)
    elif not provider.oidc_client_secret_encrypted:
        errors["client_secret"] = "Enter the client secret."
    if idp.scopes is not None:
        scopes = list(dict.fromkeys(idp.scopes.split()))
        if "openid" not in scopes:
            errors["scopes"] = "The scopes must include openid."
        provider.oidc_scopes = " ".join(scopes)
    provider.protocol = SsoProtocol.OIDC.value
    provider.oidc_issuer = issuer
    provider.oidc_client_id = client_id
    _apply_policy(org, provider, policy or SsoPolicy(), errors)
    return _save(org, actor, provider, before, errors, secret_changed=secret_changed)


def update_policy(org: Organization, actor: Actor, policy: SsoPolicy) -> IdentityProvider:
    """Change only the shared settings (domains, require SSO, roles) of an existing provider."""
    provider = get_provider(org)
    if provider is None:
        raise ValidationFailed({"protocol": "Configure SAML or OpenID Connect first."})
    before = _snapshot(provider)
    errors: dict = {}
    _apply_policy(org, provider, policy, errors)
    return _save(org, actor, provider, before, errors)


def oidc_settings(provider: IdentityProvider) -> OidcSettings:
    """What the OIDC module needs, with the client secret decrypted."""
    return OidcSettings(
        issuer=provider.oidc_issuer or "",
        client_id=provider.oidc_client_id or "",
        client_secret=vault.decrypt(provider.oidc_client_secret_encrypted) if provider.oidc_client_secret_encrypted
        else "",
        scopes=tuple(provider.oidc_scopes.split()),
        email_claim=provider.email_attribute or "email",
        name_claim=provider.name_attribute or "name",
        groups_claim=provider.groups_attribute or "groups",
    )
