"""The OAuth apps page: register apps (secret shown once, stored hashed), rotate secrets, revoke apps."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, OAuthClient, Role
from app.security.hashing import keyed_hash
from app.services import oauth
from app.services.audit import Actor

VALID_FORM = {
    "name": "Acme Timesheets",
    "kind": "confidential",
    "redirect_uris": "https://acme.example/oauth/callback\nhttp://127.0.0.1:4000/cb",
    "scopes": ["data.read", "data.write"],
    "client_credentials": "y",
}
SECRET_IN_PAGE = re.compile(r'value="(ics_[0-9A-Za-z]+)"')


@pytest.fixture
def admin(make_member, login_as):
    return login_as(make_member(Role.ADMIN))


@pytest.fixture
def org(admin):
    return admin.memberships[0].organization


@pytest.fixture
def registered(org, admin):
    return oauth.register_client(org, Actor(user=admin), "Partner", True, ["https://partner.example/cb"],
                                 ["data.read"], client_credentials=True)


def _client_credentials(client, client_id: str, secret: str):
    return client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))


def _only_app() -> OAuthClient:
    db.session.expire_all()
    return db.session.scalars(select(OAuthClient)).one()


def test_oauth_apps_register_shows_the_secret_once_and_stores_its_hash(client, admin):
    response = client.post("/oauth-apps/", data=VALID_FORM)
    assert response.status_code == 200
    secrets = SECRET_IN_PAGE.findall(response.get_data(as_text=True))
    assert len(secrets) == 1
    app_row = _only_app()
    assert app_row.client_secret_hash == keyed_hash(secrets[0])
    assert app_row.client_id.startswith("icc_") and app_row.client_id in response.get_data(as_text=True)
    assert (app_row.redirect_uris, app_row.scopes) == (VALID_FORM["redirect_uris"].splitlines(), ["data.read",
                                                                                                "data.write"])
    assert "client_credentials" in app_row.grant_types
    assert secrets[0] not in client.get("/oauth-apps/").get_data(as_text=True)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "oauth_app.created")).one()
    assert secrets[0] not in str(event.details)


def test_oauth_apps_public_app_has_no_secret(client, admin):
    response = client.post("/oauth-apps/", data=VALID_FORM | {"kind": "public", "client_credentials": ""})
    assert response.status_code == 200
    assert not SECRET_IN_PAGE.findall(response.get_data(as_text=True))
    app_row = _only_app()
    assert (app_row.is_confidential, app_row.client_secret_hash) == (False, None)
    assert app_row.grant_types == ["authorization_code", "refresh_token"]


def test_oauth_apps_public_app_cannot_use_client_credentials(client, admin):
    response = client.post("/oauth-apps/", data=VALID_FORM | {"kind": "public"})
    assert response.status_code == 422
    assert "Only confidential apps" in response.get_data(as_text=True)
    assert db.session.scalar(select(OAuthClient)) is None


@pytest.mark.parametrize("uri, problem", [
    ("http://acme.example/cb", "use https"),
    ("https://acme.example/cb#done", "fragment"),
    ("ftp://acme.example/cb", "use https"),
    ("/relative/callback", "full URL"),
    ("https://user:pw@acme.example/cb", "no user name"),
    ("https://acme.example/a b", "single URL"),
])
def test_oauth_apps_refuse_unsafe_redirect_uris(client, admin, uri, problem):
    response = client.post("/oauth-apps/", data=VALID_FORM | {"redirect_uris": uri})
    assert response.status_code == 422
    assert problem in response.get_data(as_text=True)
    assert db.session.scalar(select(OAuthClient)) is None


@pytest.mark.parametrize("uri", [
    "https://acme.example/cb?tenant=1", "http://127.0.0.1:53682/", "http://localhost/callback", "http://[::1]:8080/cb",
])
def test_oauth_apps_accept_https_and_loopback_redirect_uris(client, admin, uri):
    assert client.post("/oauth-apps/", data=VALID_FORM | {"redirect_uris": uri}).status_code == 200
    assert _only_app().redirect_uris == [uri]


def test_oauth_apps_need_a_grant(client, admin):
    response = client.post("/oauth-apps/", data=VALID_FORM | {"redirect_uris": "", "client_credentials": ""})
    assert response.status_code == 422
    assert "at least one redirect URI" in response.get_data(as_text=True)


def test_oauth_apps_revoke_stops_the_app_and_its_tokens(client, admin, registered):
    app_row, secret = registered
    token = _client_credentials(client, app_row.client_id, secret).get_json()["access_token"]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    response = client.post(f"/oauth-apps/{app_row.id}/revoke")
    assert response.status_code == 302
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert _client_credentials(client, app_row.client_id, secret).status_code == 401
    assert _only_app().revoked_at is not None
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "oauth_app.revoked")) is not None


def test_oauth_apps_rotate_secret_replaces_the_old_one(client, admin, registered):
    app_row, old_secret = registered
    response = client.post(f"/oauth-apps/{app_row.id}/rotate-secret")
    assert response.status_code == 200
    (new_secret,) = SECRET_IN_PAGE.findall(response.get_data(as_text=True))
    assert new_secret != old_secret
    assert _client_credentials(client, app_row.client_id, old_secret).status_code == 401
    assert _client_credentials(client, app_row.client_id, new_secret).status_code == 200
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "oauth_app.secret_rotated")) is not None


def test_oauth_apps_public_app_has_no_secret_to_rotate(client, admin, org):
    app_row, _ = oauth.register_client(org, Actor(user=admin), "Native", False, ["http://127.0.0.1/cb"], ["data.read"])
    response = client.post(f"/oauth-apps/{app_row.id}/rotate-secret", follow_redirects=True)
    assert "no client secret to rotate" in response.get_data(as_text=True)
    assert _only_app().client_secret_hash is None
