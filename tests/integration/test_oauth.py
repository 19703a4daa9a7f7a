"""The OAuth 2.0 server against a real client: authlib's requests ``OAuth2Session`` talking to a live server.

The app serves on a real port in a thread; a second ``requests`` session signed in to the console plays the
person at the consent page. Each refusal that authlib alone would not make (plain or missing PKCE, unrotated
refresh tokens, reuse) has its own test.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Membership, OAuthAuthorizationCode, OAuthToken, Organization, Role, User
from app.security.hashing import keyed_hash
from app.services import oauth
from app.services.audit import Actor
from tests.factories import PASSWORD, OrganizationFactory

REDIRECT_URI = "http://127.0.0.1:8765/callback"
APP_SCOPES = ["data.read", "data.write"]


@pytest.fixture
def base_url(live_server: str) -> str:
    return live_server


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory(name="Partner Org")


@pytest.fixture
def admin(org, make_member) -> User:
    return make_member(Role.ADMIN, org=org, email="consenting.admin@example.org")


@pytest.fixture
def register(org, admin) -> Callable[..., tuple]:
    def make(confidential: bool = True, scopes=tuple(APP_SCOPES), client_credentials: bool = True, organization=None):
        return oauth.register_client(organization or org, Actor(user=admin), "Partner App", confidential,
                                     [REDIRECT_URI], list(scopes), client_credentials and confidential)

    return make


@pytest.fixture
def confidential(register):
    return register(confidential=True)


@pytest.fixture
def sign_in(base_url) -> Callable[[User], requests.Session]:
    """A browser session signed in to the console as ``user`` (the test app has CSRF off)."""

    def login(user: User) -> requests.Session:
        browser = requests.Session()
        response = browser.post(f"{base_url}/login", data={"email": user.email, "password": PASSWORD},
                                allow_redirects=False)
        assert response.status_code == 302, response.text
        return browser

    return login


@pytest.fixture
def browser(sign_in, admin) -> requests.Session:
    return sign_in(admin)


def _client(client_row, secret: str | None, scope: str = "data.read data.write") -> OAuth2Session:
    method = "client_secret_basic" if secret else "none"
    return OAuth2Session(client_row.client_id, secret, scope=scope, redirect_uri=REDIRECT_URI,
                         code_challenge_method="S256", token_endpoint_auth_method=method,
                         revocation_endpoint_auth_method=method)


def _query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Flow:
    """One app's authorization-code dance, step by step, so each test can stop where it wants."""

    def __init__(self, base_url: str, browser: requests.Session, session: OAuth2Session) -> None:
        self.base_url, self.browser, self.session = base_url, browser, session
        self.verifier = generate_token(64)

    def url(self, **params) -> str:
        verifier = params.pop("code_verifier", self.verifier)
        url, _ = self.session.create_authorization_url(f"{self.base_url}/oauth/authorize", code_verifier=verifier,
                                                       **params)
        return url

    def approve(self, url: str | None = None, decision: str = "approve") -> requests.Response:
        return self.browser.post(url or self.url(), data={decision: "1"}, allow_redirects=False)

    def code_response(self, **params) -> str:
        response = self.approve(self.url(**params))
        assert response.status_code == 302, response.text
        return response.headers["Location"]

    def exchange(self, location: str | None = None, **kwargs) -> dict:
        kwargs.setdefault("code_verifier", self.verifier)
        return self.session.fetch_token(f"{self.base_url}/oauth/token",
                                        authorization_response=location or self.code_response(), **kwargs)

    def refresh(self, refresh_token: str) -> dict:
        return self.session.refresh_token(f"{self.base_url}/oauth/token", refresh_token=refresh_token)

    def me(self, access_token: str) -> requests.Response:
        return requests.get(f"{self.base_url}/api/v1/me", headers={"Authorization": f"Bearer {access_token}"})


@pytest.fixture
def flow(base_url, browser, confidential) -> Flow:
    return Flow(base_url, browser, _client(*confidential))


def _token_error(call: Callable[[], object]) -> str:
    with pytest.raises(OAuthError) as raised:
        call()
    return raised.value.error


# --- the flows ----------------------------------------------------------------------------------------------------


def test_oauth_metadata_is_valid_rfc8414(base_url):
    body = requests.get(f"{base_url}/.well-known/oauth-authorization-server").json()
    AuthorizationServerMetadata(body).validate()
    assert body["issuer"] == base_url
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["response_types_supported"] == ["code"]
    assert set(body["grant_types_supported"]) == {"authorization_code", "client_credentials", "refresh_token"}
    assert body["token_endpoint"] == f"{base_url}/oauth/token"
    assert body["revocation_endpoint"] == f"{base_url}/oauth/revoke"
    assert body["introspection_endpoint"] == f"{base_url}/oauth/introspect"
    assert "admin" in body["scopes_supported"]


@pytest.mark.parametrize("is_confidential", [True, False], ids=["confidential", "public"])
def test_oauth_code_flow_with_pkce_reaches_the_api(base_url, browser, register, org, admin, is_confidential):
    flow = Flow(base_url, browser, _client(*register(confidential=is_confidential)))
    url = flow.url()
    consent = browser.get(url)
    assert consent.status_code == 200
    assert "Partner App" in consent.text and "Partner Org" in consent.text and "data.write" in consent.text
    location = flow.approve(url).headers["Location"]
    params = _query(location)
    assert location.startswith(REDIRECT_URI)
    assert params["iss"] == base_url and params["state"] and params["code"]
    token = flow.exchange(location)
    assert token["access_token"].startswith("ica_") and token["refresh_token"].startswith("icr_")
    assert token["expires_in"] == 3600
    me = flow.me(token["access_token"])
    assert me.status_code == 200
    assert me.json()["organization"]["slug"] == org.slug
    assert me.json()["scopes"] == sorted(APP_SCOPES)
    consent_event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "oauth_app.authorized"))
    assert (consent_event.actor_id, consent_event.details["scope"]) == (admin.id, "data.read data.write")


def test_oauth_tokens_and_codes_are_stored_hashed(flow):
    location = flow.code_response()
    code = _query(location)["code"]
    token = flow.exchange(location)
    db.session.expire_all()
    stored_code = db.session.scalar(select(OAuthAuthorizationCode))
    stored = db.session.scalar(select(OAuthToken))
    assert stored_code.code_hash == keyed_hash(code) and stored_code.used_at is not None
    assert stored.access_token_hash == keyed_hash(token["access_token"])
    assert stored.refresh_token_hash == keyed_hash(token["refresh_token"])


def test_oauth_client_credentials_token_is_bound_to_the_apps_org(base_url, confidential, org):
    session = _client(*confidential, scope="data.read")
    token = session.fetch_token(f"{base_url}/oauth/token", grant_type="client_credentials")
    assert "refresh_token" not in token
    me = requests.get(f"{base_url}/api/v1/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    assert (me.json()["organization"]["slug"], me.json()["scopes"]) == (org.slug, ["data.read"])


def test_oauth_refresh_rotates_the_refresh_token(flow):
    first = flow.exchange()
    second = flow.refresh(first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert flow.me(second["access_token"]).status_code == 200
    db.session.expire_all()
    old_hash = keyed_hash(first["refresh_token"])
    old = db.session.scalar(select(OAuthToken).where(OAuthToken.refresh_token_hash == old_hash))
    assert old.rotated_at is not None
    third = flow.refresh(second["refresh_token"])
    assert flow.me(third["access_token"]).status_code == 200


def test_oauth_reused_refresh_token_revokes_the_family(flow):
    first = flow.exchange()
    second = flow.refresh(first["refresh_token"])
    assert _token_error(lambda: flow.refresh(first["refresh_token"])) == "invalid_grant"
    assert flow.me(second["access_token"]).status_code == 401
    assert _token_error(lambda: flow.refresh(second["refresh_token"])) == "invalid_grant"


def test_oauth_revoked_access_token_stops_working(base_url, flow):
    token = flow.exchange()
    response = flow.session.revoke_token(f"{base_url}/oauth/revoke", token=token["access_token"],
                                         token_type_hint="access_token")
    assert response.status_code == 200
    assert flow.me(token["access_token"]).status_code == 401


def test_oauth_access_token_stops_when_its_user_leaves_the_org(flow, org, admin):
    token = flow.exchange(flow.code_response())
    membership = db.session.scalar(
        select(Membership).where(Membership.user_id == admin.id, Membership.organization_id == org.id)
    )
    membership.is_active = False
    db.session.commit()
    me = flow.me(token["access_token"])
    assert me.status_code == 401
    assert "no longer an active member" in me.json()["detail"]


def test_oauth_revoked_refresh_token_ends_its_grant(base_url, flow):
    token = flow.exchange()
    assert flow.session.revoke_token(f"{base_url}/oauth/revoke", token=token["refresh_token"]).status_code == 200
    assert flow.me(token["access_token"]).status_code == 401
    assert _token_error(lambda: flow.refresh(token["refresh_token"])) == "invalid_grant"


def test_oauth_introspection_reports_active_then_inactive(base_url, flow, org, admin):
    token = flow.exchange()
    introspect = f"{base_url}/oauth/introspect"
    body = flow.session.introspect_token(introspect, token=token["access_token"]).json()
    assert body["active"] is True
    assert (body["scope"], body["client_id"], body["token_type"]) == (
        "data.read data.write", flow.session.client_id, "Bearer")
    assert (body["org"], body["sub"]) == (org.slug, str(admin.id))
    assert body["exp"] - body["iat"] == 3600
    flow.session.revoke_token(f"{base_url}/oauth/revoke", token=token["access_token"])
    assert flow.session.introspect_token(introspect, token=token["access_token"]).json() == {"active": False}


def test_oauth_introspection_of_another_apps_token_is_inactive(base_url, flow, register):
    token = flow.exchange()
    other = _client(*register())
    assert other.introspect_token(f"{base_url}/oauth/introspect", token=token["access_token"]).json() == {
        "active": False}


def test_oauth_denied_consent_redirects_with_access_denied(base_url, flow):
    response = flow.approve(decision="deny")
    params = _query(response.headers["Location"])
    assert (params["error"], params["iss"]) == ("access_denied", base_url)
    assert "code" not in params


def test_oauth_consent_page_lets_the_form_redirect_to_the_app(flow):
    """Browsers apply CSP form-action to the redirect after the consent post; the app's origin must be allowed."""
    policy = flow.browser.get(flow.url()).headers["Content-Security-Policy"]
    assert "form-action 'self' http://127.0.0.1:8765;" in policy
    assert "script-src 'self';" in policy


def test_oauth_consent_needs_a_console_session(base_url, flow):
    url = flow.url()
    response = requests.get(url, allow_redirects=False)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"][0].startswith("/oauth/authorize?")


def test_oauth_consent_post_requires_csrf(app, flow):
    url = flow.url()
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = flow.approve(url)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code == 400
    assert "Location" not in response.headers


# --- refusals -----------------------------------------------------------------------------------------------------


def _refused_redirect(flow: Flow, url: str) -> dict[str, str]:
    """The authorization request is sent back to the app with an error, and no code is issued."""
    response = flow.browser.get(url, allow_redirects=False)
    assert response.status_code == 302, response.text
    assert response.headers["Location"].startswith(REDIRECT_URI)
    params = _query(response.headers["Location"])
    assert "code" not in params and params["iss"] == flow.base_url
    assert db.session.scalar(select(OAuthAuthorizationCode)) is None
    return params


def test_oauth_missing_pkce_is_refused(flow):
    url, _ = flow.session.create_authorization_url(f"{flow.base_url}/oauth/authorize")
    assert "code_challenge" not in url
    assert _refused_redirect(flow, url)["error"] == "invalid_request"


def test_oauth_plain_pkce_is_refused(flow):
    url = flow.url(code_verifier=None, code_challenge=flow.verifier, code_challenge_method="plain")
    params = _refused_redirect(flow, url)
    assert params["error"] == "invalid_request" and "S256" in params["error_description"]


def test_oauth_challenge_without_method_is_refused(flow):
    assert _refused_redirect(flow, flow.url(code_verifier=None, code_challenge=flow.verifier))["error"] == (
        "invalid_request")


def test_oauth_implicit_grant_is_refused(flow):
    assert _refused_redirect(flow, flow.url(response_type="token"))["error"] == "unsupported_response_type"


def test_oauth_scope_outside_the_app_is_refused(flow):
    assert _refused_redirect(flow, flow.url(scope="admin"))["error"] == "invalid_scope"


def test_oauth_requested_scopes_are_narrowed_to_the_app(flow):
    token = flow.exchange(flow.code_response(scope="data.read admin"))
    assert token["scope"] == "data.read"
    assert flow.me(token["access_token"]).json()["scopes"] == ["data.read"]


@pytest.mark.parametrize("change", [
    {"redirect_uri": "http://127.0.0.1:8765/callback/other"},
    {"redirect_uri": "https://attacker.example/callback"},
    {"client_id": "icc_unknown"},
], ids=["other-path", "other-host", "unknown-client"])
def test_oauth_untrusted_request_is_answered_on_our_page(flow, change):
    url = flow.url()
    parts = urlsplit(url)
    params = _query(url) | change
    tampered = parts._replace(query="&".join(f"{k}={requests.utils.quote(v, safe='')}" for k, v in params.items()))
    response = flow.browser.get(tampered.geturl(), allow_redirects=False)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "Nothing was sent back to the application" in response.text


def test_oauth_reused_code_is_refused_and_revokes_its_tokens(flow):
    location = flow.code_response()
    token = flow.exchange(location)
    assert _token_error(lambda: flow.exchange(location)) == "invalid_grant"
    assert flow.me(token["access_token"]).status_code == 401


def test_oauth_expired_code_is_refused(flow):
    location = flow.code_response()
    db.session.expire_all()
    code = db.session.scalar(select(OAuthAuthorizationCode))
    code.expires_at = code.created_at
    db.session.commit()
    assert _token_error(lambda: flow.exchange(location)) == "invalid_grant"


def test_oauth_wrong_code_verifier_is_refused(flow):
    location = flow.code_response()
    assert _token_error(lambda: flow.exchange(location, code_verifier=generate_token(64))) == "invalid_grant"


def test_oauth_code_exchange_without_verifier_is_refused(base_url, flow, confidential):
    code = _query(flow.code_response())["code"]
    client, secret = confidential
    response = requests.post(f"{base_url}/oauth/token", auth=(client.client_id, secret), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_oauth_wrong_client_secret_is_invalid_client(base_url, confidential):
    client, _ = confidential
    response = requests.post(f"{base_url}/oauth/token", auth=(client.client_id, "ics_wrong"),
                             data={"grant_type": "client_credentials"})
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert "WWW-Authenticate" in response.headers


def test_oauth_password_grant_is_refused(base_url, confidential, admin):
    client, secret = confidential
    response = requests.post(f"{base_url}/oauth/token", auth=(client.client_id, secret), data={
        "grant_type": "password", "username": admin.email, "password": PASSWORD})
    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")


def test_oauth_public_app_cannot_use_client_credentials(base_url, register):
    client, _ = register(confidential=False)
    response = requests.post(f"{base_url}/oauth/token",
                             data={"grant_type": "client_credentials", "client_id": client.client_id})
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert db.session.scalar(select(OAuthToken)) is None


def test_oauth_member_of_another_org_cannot_approve(flow, sign_in, make_member):
    outsider = make_member(Role.ADMIN, email="outsider@example.org")
    outsider_browser = sign_in(outsider)
    url = flow.url()
    assert outsider_browser.get(url).status_code == 403
    response = outsider_browser.post(url, data={"approve": "1"}, allow_redirects=False)
    assert response.status_code == 403 and "Location" not in response.headers
    assert db.session.scalar(select(OAuthAuthorizationCode)) is None


def test_oauth_role_must_cover_the_requested_scopes(flow, sign_in, make_member, org):
    viewer_browser = sign_in(make_member(Role.VIEWER, org=org, email="viewer@example.org"))
    response = viewer_browser.post(flow.url(), data={"approve": "1"}, allow_redirects=False)
    assert response.status_code == 403
    assert "data.write" in response.text
    assert db.session.scalar(select(OAuthAuthorizationCode)) is None


def test_oauth_token_endpoint_is_rate_limited_per_client(app, base_url, confidential):
    client, secret = confidential
    default, app.config["OAUTH_TOKEN_RATE_LIMIT"] = app.config["OAUTH_TOKEN_RATE_LIMIT"], "2/minute"
    try:
        statuses = [requests.post(f"{base_url}/oauth/token", auth=(client.client_id, secret),
                                  data={"grant_type": "client_credentials"}) for _ in range(3)]
    finally:
        app.config["OAUTH_TOKEN_RATE_LIMIT"] = default
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2].json()["error"] == "slow_down"
    assert int(statuses[2].headers["Retry-After"]) >= 1
    assert statuses[2].headers["X-RateLimit-Remaining"] == "0"
