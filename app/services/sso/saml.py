"""SAML 2.0 service provider on python3-saml, with the checks the library leaves to us.

python3-saml runs strict (signed assertions required, deprecated algorithms refused, audience, destination,
recipient, issuer and InResponseTo checked). On its own it still accepts a *replayed* response and an *unsolicited*
one (DESIGN §7), so this module also:

- remembers every AuthnRequest it sends server-side (Redis, ``state.py``) and accepts a response only as the
  answer to one of them, once; without InResponseTo only when the organisation allows IdP-initiated login;
- remembers every response and assertion ID until the assertion expires and refuses it a second time;
- checks the time windows again with our own, smaller clock skew (``SAML_CLOCK_SKEW_SECONDS``).

Nothing here touches Flask's request: the blueprint passes an ``HttpRequest`` built from it (after ProxyFix, so
the URLs python3-saml compares against Destination and Recipient are the public ones).

python3-saml's working modules (and with them xmlsec: ~7.5 MB resident) are imported inside the functions that
use them: every process builds the app, which imports this module, but only SAML sign-ins need them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from onelogin.saml2.constants import OneLogin_Saml2_Constants  # plain constants: no lxml, no xmlsec
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError  # likewise

from app.models import IdentityProvider, Organization
from app.security import vault
from app.services.sso import state
from app.services.sso.identity import SsoIdentity, SsoRefused

if TYPE_CHECKING:
    from onelogin.saml2.response import OneLogin_Saml2_Response
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

REDIRECT = OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT
POST = OneLogin_Saml2_Constants.BINDING_HTTP_POST
REFUSED = "The sign-in response from your identity provider was not accepted. Please try again."
NOT_CONFIGURED = "Single sign-on is not set up for this organisation."
# python3-saml's error codes (integers) -> their names, for precise reason codes in the audit log.
VALIDATION_CODES = {
    value: name.lower() for name, value in vars(OneLogin_Saml2_ValidationError).items()
    if name.isupper() and isinstance(value, int)
}


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an HTTP request python3-saml needs, as the client saw them (scheme and host after ProxyFix)."""

    base_url: str  # scheme://host[:port], no trailing slash
    path: str
    args: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    query_string: str = ""

    def as_saml(self) -> dict:
        parts = urlsplit(self.base_url)
        return {
            "https": "on" if parts.scheme == "https" else "off",
            "http_host": parts.netloc,
            "script_name": self.path,
            "get_data": dict(self.args),
            "post_data": dict(self.form),
            "query_string": self.query_string,
            # Redirect-binding signatures are checked over the query exactly as the IdP encoded it.
            "validate_signature_from_qs": bool(self.query_string),
        }


@dataclass(frozen=True)
class SpEndpoints:
    """Our URLs for one organisation: the metadata URL doubles as the SP entity ID (DESIGN §5)."""

    entity_id: str
    acs_url: str
    sls_url: str

    @property
    def metadata_url(self) -> str:
        return self.entity_id


@dataclass(frozen=True)
class SamlLogin:
    """A verified SAML response: who, why we asked (``purpose``), and where to go next."""

    identity: SsoIdentity
    purpose: str  # "login" or "test"
    next_path: str | None
    name_id_format: str | None
    session_index: str | None
    requested_by: int | None = None
    request_id: str | None = None  # the AuthnRequest this answers; None for an IdP-initiated login

    def to_json(self) -> dict[str, Any]:
        """A JSON-able copy, kept server-side between the ACS and the same-site finish step."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SamlLogin:
        identity = dict(data["identity"])
        identity["groups"] = tuple(identity.get("groups") or ())
        return cls(**{**data, "identity": SsoIdentity(**identity)})


def sp_endpoints(base_url: str, slug: str) -> SpEndpoints:
    root = f"{base_url.rstrip('/')}/sso/{slug}/saml"
    return SpEndpoints(entity_id=f"{root}/metadata", acs_url=f"{root}/acs", sls_url=f"{root}/sls")


def _certificates(provider: IdentityProvider) -> list[str]:
    return [c for c in (provider.saml_certificate, provider.saml_certificate_next) if c]


def build_settings(org: Organization, provider: IdentityProvider, base_url: str,
                   *, sp_only: bool = False, want_messages_signed: bool = False) -> OneLogin_Saml2_Settings:
    """python3-saml settings for ``org``: strict, everything signed with SHA-256, deprecated algorithms refused.

    ``want_messages_signed``: the message itself must be signed (HTTP-Redirect logout messages: their
    ``Signature``/``SigAlg`` query parameters are the only proof they come from the IdP).
    """
    from onelogin.saml2.settings import OneLogin_Saml2_Settings  # lazy: loads lxml and xmlsec (see the docstring)

    endpoints = sp_endpoints(base_url, org.slug)
    private_key = vault.decrypt(provider.sp_private_key_encrypted) if provider.sp_private_key_encrypted else ""
    idp: dict = {
        "entityId": provider.saml_entity_id or "",
        "singleSignOnService": {"url": provider.saml_sso_url or "", "binding": REDIRECT},
        "x509certMulti": {"signing": _certificates(provider)},
    }
    if provider.saml_slo_url:
        idp["singleLogoutService"] = {"url": provider.saml_slo_url,
                                      "binding": REDIRECT}
    data = {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": endpoints.entity_id,
            "assertionConsumerService": {"url": endpoints.acs_url, "binding": POST},
            "singleLogoutService": {"url": endpoints.sls_url, "binding": REDIRECT},
            "NameIDFormat": provider.saml_nameid_format,
            "x509cert": provider.sp_certificate or "",
            "privateKey": private_key,
        },
        "idp": idp,
        "security": {
            "authnRequestsSigned": bool(private_key),
            "logoutRequestSigned": bool(private_key),
            "logoutResponseSigned": bool(private_key),
            "wantAssertionsSigned": True,
            # Many IdPs sign only the assertion (required below); logout messages ask for it (want_messages_signed).
            "wantMessagesSigned": want_messages_signed,
            "wantNameId": True,
            "wantAttributeStatement": False,
            "wantXMLValidation": True,
            "requestedAuthnContext": False,
            "rejectDeprecatedAlgorithm": True,
            "rejectUnsolicitedResponsesWithInResponseTo": True,
            "signatureAlgorithm": OneLogin_Saml2_Constants.RSA_SHA256,
            "digestAlgorithm": OneLogin_Saml2_Constants.SHA256,
            "allowSingleLabelDomains": True,
        },
    }
    return OneLogin_Saml2_Settings(data, sp_validation_only=sp_only)


def sp_metadata(org: Organization, provider: IdentityProvider, base_url: str) -> str:
    """Our SP metadata (entity ID, ACS, SLS, signing certificate) to paste into or load from the IdP."""
    settings = build_settings(org, provider, base_url, sp_only=True)
    metadata = settings.get_sp_metadata()
    errors = settings.validate_metadata(metadata)
    if errors:  # our own settings are wrong: a programming error, not user input
        raise RuntimeError(f"invalid SP metadata: {errors}")
    return metadata.decode() if isinstance(metadata, bytes) else metadata


def _require_ready(provider: IdentityProvider | None) -> IdentityProvider:
    if provider is None or not provider.enabled or provider.protocol != "saml" or not (
        provider.saml_entity_id and provider.saml_sso_url and provider.saml_certificate
    ):
        raise SsoRefused("not_configured", NOT_CONFIGURED)
    return provider


def begin_login(org: Organization, provider: IdentityProvider | None, http: HttpRequest, *, purpose: str = "login",
                next_path: str | None = None, requested_by: int | None = None,
                ttl_seconds: int = 600) -> tuple[str, str]:
    """Send the user to the IdP with a signed AuthnRequest whose ID we remember server-side.

    Returns the IdP URL and the request ID (the caller also keeps it in the browser's session, to bind the answer
    to the browser that asked).
    """
    from onelogin.saml2.auth import OneLogin_Saml2_Auth  # lazy: loads lxml and xmlsec (see the docstring)

    provider = _require_ready(provider)
    auth = OneLogin_Saml2_Auth(http.as_saml(), build_settings(org, provider, http.base_url))
    url = auth.login(return_to=next_path or "")
    request_id = auth.get_last_request_id()
    state.remember_request(org.id, request_id, {"purpose": purpose, "next": next_path, "by": requested_by},
                           ttl_seconds)
    return url, request_id


def _parse_time(value: str | None) -> datetime | None:
    from onelogin.saml2.utils import OneLogin_Saml2_Utils  # lazy: loads lxml and xmlsec (see the docstring)

    return datetime.fromtimestamp(OneLogin_Saml2_Utils.parse_SAML_to_time(value), UTC) if value else None


def _window(response: OneLogin_Saml2_Response, skew: timedelta, now: datetime) -> datetime:
    """Check Conditions and SubjectConfirmationData times with our skew; return when the assertion expires."""
    expiries = []
    for conditions in response._query_assertion("/saml:Conditions"):
        not_before = _parse_time(conditions.get("NotBefore"))
        if not_before and not_before > now + skew:
            raise SsoRefused("not_yet_valid", REFUSED)
        if expiry := _parse_time(conditions.get("NotOnOrAfter")):
            expiries.append(expiry)
    for data in response._query_assertion("/saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData"):
        if expiry := _parse_time(data.get("NotOnOrAfter")):
            expiries.append(expiry)
    if not expiries:
        raise SsoRefused("no_expiry", REFUSED, "the assertion carries no NotOnOrAfter")
    if min(expiries) + skew <= now:
        raise SsoRefused("expired", REFUSED)
    return max(expiries) + skew


def _first(attributes: dict[str, list[str]], name: str) -> str | None:
    values = [v.strip() for v in attributes.get(name, []) if v and v.strip()] if name else []
    return values[0] if values else None


def identity_from(provider: IdentityProvider, name_id: str, attributes: dict[str, list[str]]) -> SsoIdentity:
    """Map the NameID and attributes to an identity with the organisation's attribute names."""
    email = _first(attributes, provider.email_attribute) or (name_id if "@" in name_id else "")
    groups = tuple(dict.fromkeys(
        value.strip() for value in attributes.get(provider.groups_attribute, []) if value and value.strip()
    )) if provider.groups_attribute else ()
    return SsoIdentity(subject=name_id, email=email, name=_first(attributes, provider.name_attribute),
                       groups=groups, attributes={k: list(v) for k, v in attributes.items()})


def finish_login(org: Organization, provider: IdentityProvider | None, http: HttpRequest, *,
                 skew_seconds: int = 120, now: datetime | None = None) -> SamlLogin:
    """Verify the POSTed SAMLResponse and return who signed in; raise ``SsoRefused`` with a reason otherwise."""
    from onelogin.saml2.response import OneLogin_Saml2_Response  # lazy: loads lxml and xmlsec (see the docstring)

    provider = _require_ready(provider)
    encoded = http.form.get("SAMLResponse")
    if not encoded:
        raise SsoRefused("missing_response", REFUSED)
    settings = build_settings(org, provider, http.base_url)
    try:
        response = OneLogin_Saml2_Response(settings, encoded)
    except Exception as exc:  # noqa: BLE001 - undecodable, DTD, entity, not XML: all the same refusal
        raise SsoRefused("malformed", REFUSED, str(exc)[:300]) from exc

    in_response_to = response.document.get("InResponseTo")
    if in_response_to:
        sent = state.take_request(org.id, in_response_to)
        if sent is None:
            raise SsoRefused("unknown_request", REFUSED, f"InResponseTo {in_response_to[:80]} is not a pending request")
    elif provider.allow_idp_initiated:
        sent = {"purpose": "login", "next": http.form.get("RelayState"), "by": None}
    else:
        raise SsoRefused("unsolicited", REFUSED, "IdP-initiated login is off for this organisation")

    try:
        response.is_valid(http.as_saml(), in_response_to or None, raise_exceptions=True)
    except OneLogin_Saml2_ValidationError as exc:
        raise SsoRefused(VALIDATION_CODES.get(exc.code, "invalid_response"), REFUSED, str(exc)[:300]) from exc
    except (OneLogin_Saml2_Error, Exception) as exc:  # noqa: BLE001 - python3-saml raises bare Exception too
        raise SsoRefused("invalid_response", REFUSED, str(exc)[:300]) from exc

    now = now or datetime.now(UTC)
    expires_at = _window(response, timedelta(seconds=skew_seconds), now)
    ttl = (expires_at - now).total_seconds()
    for kind, value in (("response", response.get_id()), ("assertion", response.get_assertion_id())):
        if not value or not state.first_use(org.id, kind, value, ttl):
            raise SsoRefused("replayed", REFUSED, f"{kind} {str(value)[:80]} was already used")

    name_id = response.get_nameid() or ""
    if not name_id.strip():
        raise SsoRefused("no_name_id", REFUSED)
    return SamlLogin(
        identity=identity_from(provider, name_id, response.get_attributes()),
        purpose=sent.get("purpose", "login"),
        next_path=sent.get("next") or http.form.get("RelayState") or None,
        name_id_format=response.get_nameid_format(),
        session_index=response.get_session_index(),
        requested_by=sent.get("by"),
        request_id=in_response_to or None,
    )


def begin_logout(org: Organization, provider: IdentityProvider, http: HttpRequest, *, name_id: str,
                 name_id_format: str | None, session_index: str | None, ttl_seconds: int = 600) -> str | None:
    """The IdP's single-logout URL with a signed LogoutRequest, or None when the IdP offers no SLO."""
    from onelogin.saml2.auth import OneLogin_Saml2_Auth  # lazy: loads lxml and xmlsec (see the docstring)

    if not provider.saml_slo_url or provider.protocol != "saml":
        return None
    auth = OneLogin_Saml2_Auth(http.as_saml(), build_settings(org, provider, http.base_url))
    url = auth.logout(return_to="", name_id=name_id, session_index=session_index, name_id_format=name_id_format)
    state.remember_request(org.id, auth.get_last_request_id(), {"purpose": "logout"}, ttl_seconds)
    return url


def _signed_by_idp(provider: IdentityProvider, encoded: str) -> bool:
    """A POST-binding logout message carries an enveloped XML signature: it must verify with an IdP certificate."""
    from onelogin.saml2.utils import OneLogin_Saml2_Utils  # lazy: loads lxml and xmlsec (see the docstring)

    for cert in _certificates(provider):
        for element in ("LogoutResponse", "LogoutRequest"):
            try:
                if OneLogin_Saml2_Utils.validate_sign(OneLogin_Saml2_Utils.b64decode(encoded), cert=cert,
                                                      xpath=f"/samlp:{element}/ds:Signature"):
                    return True
            except Exception:  # noqa: BLE001, S112 - undecodable or unsigned: try the next, then refuse
                continue
    return False


@dataclass(frozen=True)
class SamlLogout:
    """A verified logout message: where to send the browser next (None: the logout ends here) and, for the IdP's
    own LogoutRequest, whose session it ends (compare with the local session before signing it out)."""

    url: str | None
    name_id: str | None = None


def process_logout(org: Organization, provider: IdentityProvider | None, http: HttpRequest,
                   *, post_binding: bool = False) -> SamlLogout:
    """Handle the IdP's LogoutResponse (to our request) or LogoutRequest (IdP-initiated) at the SLS.

    An invalid or unsigned message raises ``SsoRefused`` (and must change nothing).
    """
    from onelogin.saml2.auth import OneLogin_Saml2_Auth  # lazy: loads lxml and xmlsec (see the docstring)
    from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
    from onelogin.saml2.logout_response import OneLogin_Saml2_Logout_Response

    if provider is None or provider.protocol != "saml" or not provider.saml_slo_url:
        raise SsoRefused("not_configured", NOT_CONFIGURED)
    # POST binding: an enveloped XML signature, checked here; Redirect binding: Signature + SigAlg query
    # parameters, which python3-saml checks against the IdP certificates when the settings demand signed messages.
    auth = OneLogin_Saml2_Auth(http.as_saml(), build_settings(org, provider, http.base_url,
                                                              want_messages_signed=not post_binding))
    request_id = None
    message = http.args.get("SAMLResponse") or http.args.get("SAMLRequest") or ""
    if post_binding and not _signed_by_idp(provider, message):
        raise SsoRefused("logout_invalid", REFUSED, "POST-binding logout message not signed by the IdP")
    if not post_binding and not (http.args.get("Signature") and http.args.get("SigAlg")):
        raise SsoRefused("logout_invalid", REFUSED, "Redirect-binding logout message without Signature/SigAlg")
    if not post_binding and "SAMLResponse" in http.args and not auth.validate_response_signature(http.args):
        # Checked before the pending request is consumed, so a forged answer cannot burn a real one.
        raise SsoRefused("logout_invalid", REFUSED, auth.get_last_error_reason())
    if "SAMLResponse" in http.args:
        try:
            message = OneLogin_Saml2_Logout_Response(auth.get_settings(), http.args["SAMLResponse"])
            in_response_to = message.document.get("InResponseTo")
        except Exception as exc:  # noqa: BLE001
            raise SsoRefused("malformed", REFUSED, str(exc)[:300]) from exc
        if not in_response_to or state.take_request(org.id, in_response_to) is None:
            raise SsoRefused("unknown_request", REFUSED)
        request_id = in_response_to
    url = auth.process_slo(keep_local_session=True, request_id=request_id)
    if auth.get_errors():
        raise SsoRefused("logout_invalid", REFUSED, auth.get_last_error_reason())
    if request_id is not None:
        return SamlLogout(url=url)
    try:
        name_id = OneLogin_Saml2_Logout_Request.get_nameid(auth.get_last_request_xml())
    except Exception as exc:  # noqa: BLE001 - a verified request without a NameID ends no session of ours
        raise SsoRefused("logout_invalid", REFUSED, str(exc)[:300]) from exc
    return SamlLogout(url=url, name_id=name_id)
