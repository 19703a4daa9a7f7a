"""A small OpenID provider on a real 127.0.0.1 port, for the OIDC refusal tests.

It fakes only what is outside the machine (the identity provider), at the HTTP boundary: discovery, an authorize
endpoint that signs the user in at once and redirects back with a code, a token endpoint that checks client
authentication, the redirect URI and the PKCE verifier, a JWKS endpoint that counts its hits, and /userinfo. Each
test bends one thing (``id_token_overrides``, ``sign_with``, ``kid``) to produce the answer a hostile or broken
provider would send; the code under test runs unchanged. The real peer (npm oidc-provider) is used for the happy path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

CLIENT_ID = "interchange-test"
CLIENT_SECRET = "s3cret-client-password"
REDIRECT_URI = "http://127.0.0.1:5000/sso/acme/oidc/callback"


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class FakeProvider:
    """State of the fake provider; tests change the attributes between begin_login and finish_login."""

    base_url: str
    published: list[RSAKey]  # what /jwks serves
    sign_with: RSAKey  # the key the ID token is signed with
    kid: str | None = None  # the kid header; default: sign_with's kid
    auth_method: str = "client_secret_basic"  # what discovery offers and /token checks; or "client_secret_post"
    alg: str = "RS256"  # "none" sends an unsigned token; "HS256" signs with sign_with's public PEM as the HMAC secret
    id_token_overrides: dict[str, Any] = field(default_factory=dict)  # claim -> value (None removes the claim)
    discovery_overrides: dict[str, Any] = field(default_factory=dict)  # field -> value in the discovery document
    userinfo: dict[str, Any] = field(default_factory=dict)  # /userinfo answers {"sub": <ID token's sub>, **userinfo}
    jwks_hits: int = 0
    discovery_hits: int = 0
    token_requests: list[dict[str, str]] = field(default_factory=list)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)  # token -> sub
    issuer: str = ""

    def __post_init__(self) -> None:
        # A unique path per instance: a port the OS reuses never shares the per-process caches of an earlier test.
        self.issuer = f"{self.base_url}/op-{uuid.uuid4().hex[:8]}"

    # --- what a browser would do --------------------------------------------------------------------------------

    def authorize(self, authorize_url: str) -> dict[str, str]:
        """Follow the authorize URL like a browser whose user signs in; return the callback's query arguments."""
        response = requests.get(authorize_url, allow_redirects=False, timeout=5)
        assert response.status_code == 302, response.text
        location = urlsplit(response.headers["Location"])
        return {k: v[0] for k, v in parse_qs(location.query).items()}

    # --- the endpoints ------------------------------------------------------------------------------------------

    def wsgi(self, environ, start_response):
        request = Request(environ)
        path = request.path.removeprefix(urlsplit(self.issuer).path)
        handler = {
            "/.well-known/openid-configuration": self._discovery,
            "/authorize": self._authorize,
            "/token": self._token,
            "/jwks": self._jwks,
            "/userinfo": self._userinfo,
        }.get(path)
        response = handler(request) if handler else Response("not found", status=404)
        return response(environ, start_response)

    def _discovery(self, request: Request) -> Response:
        self.discovery_hits += 1
        return _json(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [self.auth_method],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": True,
                **self.discovery_overrides,
            }
        )

    def _authorize(self, request: Request) -> Response:
        args = request.args
        assert args["client_id"] == CLIENT_ID and args["response_type"] == "code"
        assert args["code_challenge_method"] == "S256" and "openid" in args["scope"].split()
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "nonce": args["nonce"],
            "code_challenge": args["code_challenge"],
            "redirect_uri": args["redirect_uri"],
        }
        query = urlencode({"code": code, "state": args["state"], "iss": self.issuer})
        return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{query}"})

    def _token(self, request: Request) -> Response:
        self.token_requests.append(dict(request.form))
        if self.auth_method == "client_secret_post":
            authenticated = (request.form.get("client_id"), request.form.get("client_secret")) == (
                CLIENT_ID, CLIENT_SECRET) and "Authorization" not in request.headers
        else:
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            authenticated = request.headers.get("Authorization") == f"Basic {expected}"
        if not authenticated:
            return _json({"error": "invalid_client"}, 401)
        grant = self.codes.pop(request.form.get("code", ""), None)
        if (
            grant is None
            or request.form.get("grant_type") != "authorization_code"
            or request.form.get("redirect_uri") != grant["redirect_uri"]
            or create_s256_code_challenge(request.form.get("code_verifier", "")) != grant["code_challenge"]
        ):
            return _json({"error": "invalid_grant"}, 400)
        access_token = secrets.token_urlsafe(24)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "user-42",
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "nonce": grant["nonce"],
            "at_hash": create_half_hash(access_token, "RS256").decode(),
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "groups": ["interchange-editors"],
        }
        for name, value in self.id_token_overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        id_token = self._sign(claims)
        self.access_tokens[access_token] = claims.get("sub", "")
        return _json({"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": id_token})

    def _sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": self.alg, "kid": self.kid or self.sign_with.kid}
        if self.alg == "RS256":
            return jwt.encode(header, claims, self.sign_with, algorithms=["RS256"])
        # Built by hand: joserfc rightly refuses to produce either of these hostile tokens.
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        if self.alg == "none":
            return f"{signing_input}."
        assert self.alg == "HS256"  # the classic confusion: the provider's *public* key used as the HMAC secret
        secret = self.sign_with.as_pem(private=False)
        return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"

    def _jwks(self, request: Request) -> Response:
        self.jwks_hits += 1
        return _json({"keys": [key.as_dict(private=False) for key in self.published]})

    def _userinfo(self, request: Request) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.access_tokens:
            return _json({"error": "invalid_token"}, 401)
        return _json({"sub": self.access_tokens[token], **self.userinfo})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(document: dict, status: int = 200) -> Response:
    return Response(json.dumps(document), status=status, mimetype="application/json")


@contextmanager
def fake_provider_server() -> Iterator[Callable[[RSAKey], FakeProvider]]:
    """Serve fake providers on one free 127.0.0.1 port for the block; yields ``fresh(key)``, which starts a new one.

    One server for many tests (stopping a werkzeug server costs half a second); each ``fresh`` provider has its own
    issuer path and state, and the previous one stops answering.
    """
    current: list[FakeProvider] = []
    server = make_server("127.0.0.1", 0, lambda env, start: current[-1].wsgi(env, start), threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"

    def fresh(key: RSAKey) -> FakeProvider:
        current.append(FakeProvider(base_url=base_url, published=[key], sign_with=key))
        return current[-1]

    thread = threading.Thread(target=server.serve_forever, name="fake-oidc-provider", daemon=True)
    thread.start()
    try:
        yield fresh
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
