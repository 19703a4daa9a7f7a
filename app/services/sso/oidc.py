"""OpenID Connect sign-in (authorization code + PKCE S256, state, nonce) against an organisation's provider.

Two calls, no Flask request inside: ``begin_login`` builds the authorize URL and the ``pending`` dict the caller keeps
(in the signed session) until the browser comes back; ``finish_login`` checks the callback against it, exchanges the
code and verifies the ID token, and returns an ``SsoIdentity`` or raises ``SsoRefused`` with a reason code for the
audit trail and a plain message for the person signing in.

Why the checks are here and not left to a client library: the ID token is the only proof of who signed in, so every
rule of OIDC Core §3.1.3.7 that matters (signature against the provider's published keys, exact issuer, our client in
the audience, expiry, the nonce we sent, an asymmetric algorithm) is checked explicitly and refused with its own code.
JOSE itself (JWS parsing, signature verification, key handling) is joserfc's; the token request and client
authentication are authlib's.

Per process we cache the discovery document and the JWKS for an hour. A token signed with a key id we do not know
makes us re-fetch the JWKS once (the provider may have rotated its keys), but at most once a minute per issuer, so a
flood of forged key ids cannot turn us into a load generator against the provider.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.security import is_secure_transport
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import Key, KeySet
from joserfc.jws import extract_compact

from app.security import outbound
from app.services.sso.identity import OidcSettings, SsoIdentity, SsoRefused

log = logging.getLogger(__name__)

# A login must come back within this many seconds of begin_login.
PENDING_MAX_AGE = 600
# Clock skew tolerated on exp / iat / nbf.
CLOCK_SKEW = 60
# Discovery document and JWKS are kept this long per process.
METADATA_TTL = 3600
# An unknown key id triggers at most one JWKS re-fetch per issuer in this many seconds.
JWKS_REFETCH_INTERVAL = 60
# (connect, read) timeouts for every request to the provider.
HTTP_TIMEOUT = (5, 10)
# The largest discovery / JWKS / userinfo document we read.
MAX_DOCUMENT_BYTES = 512 * 1024
# Asymmetric algorithms only: "none" is never accepted, and no HS* (whose key would be the client secret, or worse a
# public key an attacker can read, if a library confused the two).
ALLOWED_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)
# Claims that describe the token rather than the person; left out of SsoIdentity.attributes.
PROTOCOL_CLAIMS = frozenset(
    {"iss", "aud", "exp", "iat", "nbf", "nonce", "at_hash", "c_hash", "azp", "auth_time", "jti", "sid", "acr", "amr"}
)
USER_AGENT = "Interchange-SSO/1"

UNREACHABLE = "The identity provider could not be reached. Try again in a moment, or ask your administrator."
NOT_VERIFIED = "The identity provider's answer could not be verified, so you were not signed in. Please try again."
START_AGAIN = "This sign-in link is no longer valid. Please start the sign-in again."


def _refused(reason: str, message: str, detail: str | None = None) -> SsoRefused:
    """The refusal to raise; its reason and detail (never a secret or token) are logged for operators too."""
    log.warning("OIDC sign-in refused: %s%s", reason, f" ({detail})" if detail else "")
    return SsoRefused(reason, message, detail=detail[:300] if detail else None)


# ---------------------------------------------------------------------------------------------------------------------
# Starting a login


def begin_login(settings: OidcSettings, redirect_uri: str) -> tuple[str, dict]:
    """Return the provider's authorize URL and the ``pending`` dict to keep until the callback.

    ``pending`` holds only strings and a float (JSON-safe for the signed session): state and nonce (256 bits each),
    the PKCE verifier, when the login started, and which redirect URI, issuer and client it was started for.
    """
    metadata = _discovery(settings.issuer)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    code_verifier = secrets.token_urlsafe(64)  # 86 characters, inside RFC 7636's 43..128
    scopes = list(dict.fromkeys(("openid", *settings.scopes)))
    with OAuth2Session(
        settings.client_id, scope=" ".join(scopes), redirect_uri=redirect_uri, code_challenge_method="S256"
    ) as client:
        url, _ = client.create_authorization_url(
            metadata["authorization_endpoint"], state=state, code_verifier=code_verifier, nonce=nonce
        )
    pending = {
        "state": state,
        "nonce": nonce,
        "code_verifier": code_verifier,
        "created_at": time.time(),
        "redirect_uri": redirect_uri,
        "issuer": settings.issuer,
        "client_id": settings.client_id,
    }
    return url, pending


# ---------------------------------------------------------------------------------------------------------------------
# Finishing a login


def finish_login(
    settings: OidcSettings,
    pending: Mapping[str, Any] | None,
    callback_args: Mapping[str, str],
    redirect_uri: str,
) -> SsoIdentity:
    """Check the callback, exchange the code, verify the ID token and return who signed in.

    The caller must remove ``pending`` from its store before calling, so a replayed callback finds nothing.
    """
    _check_callback(settings, pending, callback_args, redirect_uri)
    assert pending is not None  # _check_callback refused otherwise
    metadata = _discovery(settings.issuer)
    _check_callback_issuer(settings, metadata, callback_args)
    tokens = _exchange_code(settings, metadata, callback_args["code"], pending, redirect_uri)
    id_claims = _verify_id_token(settings, metadata, tokens, pending["nonce"])
    claims = dict(id_claims)
    if _missing_profile_claims(settings, claims) and metadata.get("userinfo_endpoint"):
        for name, value in _userinfo(metadata, tokens["access_token"], id_claims["sub"]).items():
            claims.setdefault(name, value)
    return _identity(settings, claims)


def _check_callback(
    settings: OidcSettings,
    pending: Mapping[str, Any] | None,
    args: Mapping[str, str],
    redirect_uri: str,
) -> None:
    """Refuse a callback that is not the answer to the login this browser started, before any network call."""
    if error := args.get("error"):
        # The error code is one of a handful of OAuth words; the free-text description is logged, never shown.
        code = error if error.replace("_", "").isalpha() and len(error) <= 40 else "error"
        raise _refused(
            "idp_error",
            f"The identity provider did not sign you in ({code}). Please try again or ask your administrator.",
            f"{code}: {args.get('error_description', '')}"[:300],
        )
    if not pending or not isinstance(pending.get("state"), str):
        raise _refused("no_pending_login", START_AGAIN)
    if not hmac.compare_digest(str(args.get("state", "")).encode(), pending["state"].encode()):
        raise _refused("state_mismatch", START_AGAIN)
    created_at = pending.get("created_at")
    if not isinstance(created_at, int | float) or not (-CLOCK_SKEW < time.time() - created_at <= PENDING_MAX_AGE):
        raise _refused("login_expired", "The sign-in took too long. Please start it again.")
    if pending.get("issuer") != settings.issuer or pending.get("client_id") != settings.client_id:
        raise _refused("config_changed", START_AGAIN)
    if pending.get("redirect_uri") != redirect_uri:
        raise _refused("redirect_mismatch", START_AGAIN)
    if not args.get("code"):
        raise _refused("missing_code", NOT_VERIFIED)


def _check_callback_issuer(settings: OidcSettings, metadata: Mapping[str, Any], args: Mapping[str, str]) -> None:
    """RFC 9207: the callback's ``iss`` must name our provider, and must be there if the provider says it sends it.

    This closes IdP mix-up: a code obtained from another provider cannot be replayed into this organisation's flow.
    """
    if "iss" in args:
        if args["iss"] != settings.issuer:
            raise _refused("issuer_mismatch", NOT_VERIFIED, f"callback iss {args['iss'][:200]!r}")
    elif metadata.get("authorization_response_iss_parameter_supported") is True:
        raise _refused("issuer_mismatch", NOT_VERIFIED, "callback without iss, which the provider always sends")


def _exchange_code(
    settings: OidcSettings, metadata: Mapping[str, Any], code: str, pending: Mapping[str, Any], redirect_uri: str
) -> dict[str, Any]:
    """Trade the code (and our PKCE verifier) for tokens at the token endpoint, authenticating as the provider asks."""
    supported = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if "client_secret_basic" in supported:
        auth_method = "client_secret_basic"
    elif "client_secret_post" in supported:
        auth_method = "client_secret_post"
    else:
        raise _refused("unsupported_client_auth", UNREACHABLE, f"provider offers {supported!r:.200}")
    _refuse_private(metadata["token_endpoint"], "idp_unreachable")
    client = OAuth2Session(
        settings.client_id,
        settings.client_secret,
        token_endpoint_auth_method=auth_method,
        redirect_uri=redirect_uri,
    )
    client.headers["User-Agent"] = USER_AGENT
    client.max_redirects = 0
    try:
        token = client.fetch_token(
            metadata["token_endpoint"],
            grant_type="authorization_code",
            code=code,
            code_verifier=pending["code_verifier"],
            timeout=HTTP_TIMEOUT,
        )
    except requests.RequestException as exc:
        raise _refused("idp_unreachable", UNREACHABLE, f"token endpoint: {type(exc).__name__}") from None
    except Exception as exc:  # authlib's OAuthError (an error answer) or a body that is not JSON
        detail = f"token endpoint: {getattr(exc, 'error', None) or type(exc).__name__}"
        raise _refused("token_exchange_failed", NOT_VERIFIED, detail) from None
    finally:
        client.close()
    if not isinstance(token.get("id_token"), str):
        raise _refused("no_id_token", NOT_VERIFIED)
    if not isinstance(token.get("access_token"), str):
        raise _refused("token_exchange_failed", NOT_VERIFIED, "no access token")
    return dict(token)


def _verify_id_token(
    settings: OidcSettings, metadata: Mapping[str, Any], tokens: Mapping[str, Any], nonce: str
) -> dict[str, Any]:
    """Verify the ID token's signature and claims (OIDC Core §3.1.3.7); return its claims."""
    raw = tokens["id_token"]
    try:
        header = extract_compact(raw.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError):
        raise _refused("malformed_token", NOT_VERIFIED) from None
    alg = header.get("alg")
    offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    if alg not in ALLOWED_ALGORITHMS or alg not in offered:
        raise _refused("bad_algorithm", NOT_VERIFIED, f"alg {str(alg)[:20]!r}")
    key = _signing_key(settings.issuer, metadata, header.get("kid"))
    try:
        claims = jwt.decode(raw, key, algorithms=[alg]).claims
    except BadSignatureError:
        raise _refused("bad_signature", NOT_VERIFIED) from None
    except (JoseError, ValueError):
        raise _refused("malformed_token", NOT_VERIFIED) from None

    if claims.get("iss") != settings.issuer:
        raise _refused("wrong_issuer", NOT_VERIFIED, f"iss {str(claims.get('iss'))[:200]!r}")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if settings.client_id not in audiences:
        raise _refused("wrong_audience", NOT_VERIFIED, f"aud {str(audience)[:200]!r}")
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != settings.client_id:
        raise _refused("wrong_azp", NOT_VERIFIED, f"azp {str(claims.get('azp'))[:200]!r}")
    registry = jwt.JWTClaimsRegistry(leeway=CLOCK_SKEW, exp={"essential": True}, iat={"essential": True})
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise _refused("token_expired", NOT_VERIFIED, f"exp {claims.get('exp')}") from None
    except (InvalidClaimError, MissingClaimError) as exc:
        reason = "token_not_yet_valid" if getattr(exc, "claim", "") in {"iat", "nbf"} else "malformed_token"
        raise _refused(reason, NOT_VERIFIED, str(exc)[:200]) from None
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise _refused("malformed_token", NOT_VERIFIED)
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"].encode(), nonce.encode()):
        raise _refused("nonce_mismatch", NOT_VERIFIED)
    if "at_hash" in claims:
        expected = create_half_hash(tokens["access_token"], alg)
        if expected is None or not hmac.compare_digest(str(claims["at_hash"]).encode(), expected):
            raise _refused("bad_at_hash", NOT_VERIFIED)
    return dict(claims)


def _missing_profile_claims(settings: OidcSettings, claims: Mapping[str, Any]) -> bool:
    return any(claims.get(name) in (None, "", []) for name in (settings.email_claim, settings.name_claim,
                                                                 settings.groups_claim))


def _userinfo(metadata: Mapping[str, Any], access_token: str, subject: str) -> dict[str, Any]:
    """Claims from /userinfo (some providers, oidc-provider among them, keep email there and not in the ID token)."""
    info = _get_json(metadata["userinfo_endpoint"], "userinfo_failed",
                     headers={"Authorization": f"Bearer {access_token}"})
    if info.get("sub") != subject:  # OIDC Core §5.3.2: otherwise the answer must not be used
        raise _refused("userinfo_subject_mismatch", NOT_VERIFIED)
    return info


def _identity(settings: OidcSettings, claims: Mapping[str, Any]) -> SsoIdentity:
    """Map the verified claims to an SsoIdentity using the organisation's claim names."""
    email = claims.get(settings.email_claim)
    if not isinstance(email, str) or "@" not in email:
        raise _refused("no_email", "The identity provider did not send an email address for your account.")
    if claims.get("email_verified") is False and settings.email_claim == "email":
        raise _refused("email_not_verified", "Your identity provider has not verified your email address.")
    name = claims.get(settings.name_claim)
    groups = claims.get(settings.groups_claim)
    if isinstance(groups, str):
        groups = [groups]
    return SsoIdentity(
        subject=claims["sub"],
        email=email.strip().lower(),
        name=(name.strip() or None) if isinstance(name, str) else None,
        groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
        attributes={k: _as_strings(v) for k, v in claims.items() if k not in PROTOCOL_CLAIMS},
    )


def _as_strings(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v) for v in values]


# ---------------------------------------------------------------------------------------------------------------------
# Discovery and keys, cached per process


@dataclass
class _Jwks:
    keys: KeySet
    fetched_at: float
    refetched_at: float = float("-inf")  # last re-fetch caused by an unknown key id


_lock = threading.Lock()
_discovered: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks: dict[str, _Jwks] = {}


def _discovery(issuer: str) -> dict[str, Any]:
    """The provider's discovery document, fetched at most once an hour per issuer and checked to be about it."""
    now = time.monotonic()
    with _lock:
        cached = _discovered.get(issuer)
    if cached and now - cached[0] < METADATA_TTL:
        return cached[1]
    if not is_secure_transport(issuer):
        raise _refused("insecure_issuer", UNREACHABLE, "the issuer must use https (only loopback may use http)")
    document = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery_failed")
    if document.get("issuer") != issuer:  # OIDC Discovery §4.3: must be identical
        raise _refused("discovery_failed", UNREACHABLE, f"discovery names issuer {str(document.get('issuer'))[:200]!r}")
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(endpoint), str) or not is_secure_transport(document[endpoint]):
            raise _refused("discovery_failed", UNREACHABLE, f"discovery lacks a usable {endpoint}")
    with _lock:
        _discovered[issuer] = (now, document)
    return document


def _signing_key(issuer: str, metadata: Mapping[str, Any], kid: str | None) -> Key:
    """The provider key with this id; re-fetch the JWKS once (rate-limited) when the id is unknown."""
    now = time.monotonic()
    with _lock:
        cached = _jwks.get(issuer)
    if cached is None or now - cached.fetched_at >= METADATA_TTL:
        cached = _Jwks(_fetch_keys(metadata["jwks_uri"]), now, cached.refetched_at if cached else float("-inf"))
        with _lock:
            _jwks[issuer] = cached
    try:
        return cached.keys.get_by_kid(kid)
    except InvalidKeyIdError:
        pass
    with _lock:
        may_refetch = now - cached.refetched_at >= JWKS_REFETCH_INTERVAL
        if may_refetch:
            cached.refetched_at = now  # claimed before fetching, so concurrent logins do not all re-fetch
    if not may_refetch:
        raise _refused("unknown_key", NOT_VERIFIED, f"kid {str(kid)[:60]!r}; JWKS re-fetched under a minute ago")
    fresh = _Jwks(_fetch_keys(metadata["jwks_uri"]), now, now)
    with _lock:
        _jwks[issuer] = fresh
    try:
        return fresh.keys.get_by_kid(kid)
    except InvalidKeyIdError:
        raise _refused("unknown_key", NOT_VERIFIED, f"kid {str(kid)[:60]!r} is not in the JWKS") from None


def _fetch_keys(jwks_uri: str) -> KeySet:
    """The provider's public signing keys; symmetric and encryption-only keys are dropped."""
    document = _get_json(jwks_uri, "jwks_failed")
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise _refused("jwks_failed", UNREACHABLE, "JWKS has no keys array")
    usable = [k for k in keys if isinstance(k, dict) and k.get("kty") in {"RSA", "EC", "OKP"} and k.get("use") != "enc"]
    try:
        return KeySet.import_key_set({"keys": usable})
    except (JoseError, ValueError, TypeError):
        raise _refused("jwks_failed", UNREACHABLE, "JWKS holds a key we cannot read") from None


def _refuse_private(url: str, reason: str) -> None:
    if not outbound.url_allowed(url):
        raise _refused(reason, UNREACHABLE, f"{url[:200]} is a private or local address (OUTBOUND_ALLOW_PRIVATE off)")


def _get_json(url: str, reason: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """GET a JSON object from the provider: timeouts, no redirects, a size cap; a failure is ``SsoRefused(reason)``."""
    _refuse_private(url, reason)
    try:
        with requests.get(
            url,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
            timeout=HTTP_TIMEOUT,
            allow_redirects=False,
            stream=True,
        ) as response:
            if response.status_code != 200:
                raise _refused(reason, UNREACHABLE, f"{url[:200]} answered HTTP {response.status_code}")
            body = response.raw.read(MAX_DOCUMENT_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise _refused(reason, UNREACHABLE, f"{url[:200]}: {type(exc).__name__}") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise _refused(reason, UNREACHABLE, f"{url[:200]} answered more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise _refused(reason, UNREACHABLE, f"{url[:200]} did not answer a JSON object")
    return document
