"""The OAuth 2.0 authorization server: authlib's protocol machinery with our stricter defaults.

authlib alone accepts ``plain`` PKCE, skips PKCE for confidential clients, keeps
client secrets in clear and issues refresh tokens without rotating them. Here:

- ``S256CodeChallenge``: every authorization request needs a ``code_challenge``
  with method ``S256``, and every code exchange its ``code_verifier``, for every
  client (confidential ones too).
- ``ClientAdapter.check_client_secret``: keyed hash, compared in constant time.
- ``RefreshTokenGrant``: each refresh returns a new refresh token and marks the
  old one rotated; presenting a rotated one revokes its whole family.
- Only the code, client-credentials and refresh grants are registered: implicit
  and password requests get ``unsupported_response_type`` / ``unsupported_grant_type``.

The rows live in app/services/oauth.py; the adapters below give authlib the
interfaces it expects without tying the models to authlib.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from base64 import urlsafe_b64encode
from urllib.parse import urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint as BaseRevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as BaseIntrospectionEndpoint
from flask import Flask, current_app, request, url_for

from app.models import OAuthAuthorizationCode, OAuthClient, OAuthToken
from app.security.hooks import CONTENT_SECURITY_POLICY
from app.security.scopes import SCOPES
from app.services import oauth
from app.services.audit import Actor

SECRET_METHODS = ["client_secret_basic", "client_secret_post"]
ALL_METHODS = [*SECRET_METHODS, "none"]


class ClientAdapter(ClientMixin):
    """An ``OAuthClient`` row as authlib's client."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        # No default: every authorization request names its redirect URI, matched exactly.
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        return oauth.allowed_scope(self.row, scope)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in (self.row.redirect_uris or [])

    def check_client_secret(self, client_secret: str) -> bool:
        return oauth.check_secret(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # Confidential apps must use their secret everywhere; public apps have none.
        return method in SECRET_METHODS if self.row.is_confidential else method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in (self.row.grant_types or [])

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == oauth.CLIENT_CREDENTIALS and not self.row.is_confidential:
            return False
        return grant_type in (self.row.grant_types or [])


class CodeAdapter(AuthorizationCodeMixin):
    def __init__(self, row: OAuthAuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


class TokenAdapter(TokenMixin):
    """A token row seen as the access or the refresh token (``kind``) that was presented."""

    def __init__(self, row: OAuthToken, kind: str) -> None:
        self.row = row
        self.kind = kind

    def check_client(self, client: ClientAdapter) -> bool:
        return self.row.client_id == client.row.id

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return self.row.expires_in

    def is_expired(self) -> bool:
        return oauth.is_expired(self.row, self.kind)

    def is_revoked(self) -> bool:
        return oauth.is_revoked(self.row, self.kind)

    def get_user(self):
        return self.row.user

    def get_client(self) -> ClientAdapter:
        return ClientAdapter(self.row.client)


def _s256(verifier: str) -> str:
    return urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class S256CodeChallenge(CodeChallenge):
    """PKCE required for every client, S256 only (authlib's default also takes ``plain`` and lets confidential
    clients skip it)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": lambda verifier, challenge: hmac.compare_digest(_s256(verifier), challenge)}

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is accepted; plain PKCE is refused.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier': PKCE is required for every client.")
        super().validate_code_verifier(grant, result)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    def save_authorization_code(self, code: str, req) -> None:
        data = req.payload.data
        oauth.save_code(
            req.client.row, req.user, code, req.payload.redirect_uri, req.scope,
            data.get("code_challenge"), data.get("code_challenge_method"),
            Actor(user=req.user, ip_address=request.remote_addr),
        )

    def query_authorization_code(self, code: str, client: ClientAdapter) -> CodeAdapter | None:
        row = oauth.find_code(client.row, code)
        return CodeAdapter(row) if row is not None else None

    def validate_token_request(self):
        super().validate_token_request()  # client, code, redirect URI, then the PKCE verifier (a hook)
        if not oauth.claim_code(self.request.authorization_code.row):
            raise InvalidGrantError("The authorization code was already used.")

    def delete_authorization_code(self, authorization_code: CodeAdapter) -> None:
        """Nothing to delete: the code was claimed (marked used) when the exchange was validated."""

    def authenticate_user(self, authorization_code: CodeAdapter):
        return oauth.token_user(authorization_code.row.user_id, self.request.client.row)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_METHODS


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Rotation with reuse detection (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> TokenAdapter | None:
        row = oauth.find_refresh_token(refresh_token)
        return TokenAdapter(row, "refresh_token") if row is not None else None

    def validate_token_request(self):
        super().validate_token_request()
        if not oauth.claim_refresh_token(self.request.refresh_token.row):
            raise InvalidGrantError("The refresh token was already used.")

    def authenticate_user(self, refresh_token: TokenAdapter):
        return oauth.token_user(refresh_token.row.user_id, self.request.client.row)

    def revoke_old_credential(self, refresh_token: TokenAdapter) -> None:
        """Nothing left to do: the old refresh token was marked rotated when the request was validated."""


def _lookup(token: str) -> TokenAdapter | None:
    found = oauth.find_token(token)
    return TokenAdapter(*found) if found is not None else None


class RevocationEndpoint(BaseRevocationEndpoint):
    """RFC 7009; public apps may revoke their own tokens with their client id alone."""

    CLIENT_AUTH_METHODS = ALL_METHODS

    def query_token(self, token_string, token_type_hint):
        return _lookup(token_string)

    def revoke_token(self, token: TokenAdapter, req) -> None:
        oauth.revoke_token(token.row, token.kind)


class IntrospectionEndpoint(BaseIntrospectionEndpoint):
    """RFC 7662 for confidential apps, about their own tokens only (any other token reads as inactive)."""

    CLIENT_AUTH_METHODS = SECRET_METHODS

    def query_token(self, token_string, token_type_hint):
        return _lookup(token_string)

    def check_permission(self, token: TokenAdapter, client: ClientAdapter, req) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: TokenAdapter) -> dict:
        return oauth.introspection(token.row, token.kind)


class AuthorizationServer(FlaskAuthorizationServer):
    def query_client(self, client_id: str) -> ClientAdapter | None:
        row = oauth.find_active_client(client_id)
        return ClientAdapter(row) if row is not None else None

    def save_token(self, token: dict, req) -> None:
        client = req.client.row
        grant_type = req.payload.grant_type
        if grant_type == "authorization_code":
            code = req.authorization_code.row
            oauth.store_token(client, token, code.user_id, oauth.code_family(code))
        elif grant_type == "refresh_token":
            previous = req.refresh_token.row
            oauth.store_token(client, token, previous.user_id, previous.family_id)
        else:
            oauth.store_token(client, token, None, oauth.new_family())


server = AuthorizationServer()


def _expires_in(client, grant_type) -> int:
    return oauth.ACCESS_TOKEN_SECONDS


def init_app(app: Flask) -> None:
    """Bind the server once per app. Token generators are ours (prefixed tokens), not authlib's config."""
    # authlib logs issued tokens at DEBUG ("Issue token ..."); our logs never carry tokens, whatever LOG_LEVEL says.
    logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger("authlib").getEffectiveLevel()))
    server.init_app(app)
    server.scopes_supported = list(SCOPES)
    server.register_token_generator("default", BearerTokenGenerator(
        lambda **_: oauth.new_access_token(), lambda **_: oauth.new_refresh_token(), _expires_in,
    ))
    if server._authorization_grants or server._token_grants:
        return  # grants and endpoints are app-independent: register them once per process
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
    server.register_grant(ClientCredentialsGrant)
    server.register_grant(RefreshTokenGrant)
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)


def issuer() -> str:
    """Our issuer identifier (RFC 8414 / RFC 9207): ``OAUTH_ISSUER`` or this server's base URL."""
    return (current_app.config.get("OAUTH_ISSUER") or request.host_url).rstrip("/")


def with_issuer(response):
    """Add ``iss`` to an authorization response's redirect (RFC 9207), success or error alike."""
    if response.status_code in (301, 302, 303) and response.location:
        response.location = add_params_to_uri(response.location, [("iss", issuer())])
    return response


SAFE_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$|^http://\[::1\](:\d{1,5})?$")


def consent_page_policy(redirect_uri: str) -> str:
    """Our CSP, with the app's redirect origin added to ``form-action``.

    Browsers apply ``form-action`` to the redirect that follows a form post, so
    with ``'self'`` alone the consent answer could never reach the app.
    """
    parts = urlsplit(redirect_uri)
    origin = f"{parts.scheme}://{parts.netloc}"
    if not SAFE_ORIGIN.match(origin):
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {origin}")


def metadata() -> dict:
    """RFC 8414 authorization server metadata."""
    return {
        "issuer": issuer(),
        "authorization_endpoint": url_for("oauth.authorize", _external=True),
        "token_endpoint": url_for("oauth.token", _external=True),
        "revocation_endpoint": url_for("oauth.revoke", _external=True),
        "introspection_endpoint": url_for("oauth.introspect", _external=True),
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ALL_METHODS,
        "revocation_endpoint_auth_methods_supported": ALL_METHODS,
        "introspection_endpoint_auth_methods_supported": SECRET_METHODS,
        "authorization_response_iss_parameter_supported": True,
    }
