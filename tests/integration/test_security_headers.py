"""Browser-facing defences: security headers, session cookie flags, CSRF, no inline script, no tracebacks."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.models import Person, Role
from tests.factories import PASSWORD, PersonFactory

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER_ATTRIBUTE = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*\svalue="([^"]+)"')


def _csp(response) -> dict[str, list[str]]:
    directives = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.fixture
def admin(make_member, login_as):
    """Sign the test client in as an admin of an organisation with one person in it."""
    user = make_member(Role.ADMIN)
    PersonFactory(organization=user.memberships[0].organization, name="Ada Lovelace")
    return login_as(user)


@pytest.fixture
def production_app(app: Flask, monkeypatch, tmp_path) -> Iterator[Flask]:
    """The app as production builds it from the environment, on the test database and Redis.

    Only what a deployment must set is passed; cookie flags come from the defaults.
    """
    for name in ("INTERCHANGE_ENV", "COOKIE_SECURE"):
        monkeypatch.delenv(name, raising=False)
    production = create_app(
        {
            "SECRET_KEY": "production-like-secret-key",
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "INTERCHANGE_STORAGE": str(tmp_path),
            "INTERCHANGE_ENV": "production",
            "LOG_JSON": False,
            "LOG_LEVEL": "WARNING",
        }
    )
    yield production
    with production.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("path", ["/login", "/", "/people/", "/no-such-page"])
def test_security_headers_are_set_on_pages(client, admin, path):
    response = client.get(path)
    assert response.status_code in (200, 302, 404)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    csp = _csp(response)
    assert csp["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["object-src"] == ["'none'"]


def test_security_headers_are_set_on_json_responses(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert _csp(response)["frame-ancestors"] == ["'none'"]


def test_session_cookie_is_secure_httponly_and_lax_in_production(production_app, make_member):
    user = make_member(Role.VIEWER)
    client = production_app.test_client()
    form = client.get("/login", base_url="https://localhost")
    assert form.status_code == 200
    token = CSRF_FIELD.search(form.get_data(as_text=True)).group(1)
    response = client.post(
        "/login", base_url="https://localhost", headers={"Referer": "https://localhost/login"},  # strict over HTTPS
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("interchange_session=")]
    assert len(cookies) == 1
    flags = [flag.strip().lower() for flag in cookies[0].split(";")]
    assert "secure" in flags
    assert "httponly" in flags
    assert "samesite=lax" in flags


def test_csrf_rejects_a_form_post_without_a_token(app, client, admin, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    before = db.session.scalar(select(func.count(Person.id)))
    response = client.post("/people/new", data={"email": "mallory@example.com", "name": "Mallory", "active": "y"})
    assert response.status_code == 400
    assert b"The form expired" in response.data
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Person.id))) == before
    assert db.session.scalar(select(Person).where(Person.email == "mallory@example.com")) is None


def test_csrf_rejects_a_login_post_without_a_token(app, client, make_member, monkeypatch):
    user = make_member(Role.ADMIN)
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    with client.session_transaction() as session:
        assert "_user_id" not in session


@pytest.mark.parametrize("path,signed_in", [
    ("/login", False),
    ("/", True),
    ("/people/", True),
    ("/people/new", True),
    ("/members/", True),
])
def test_pages_have_no_inline_script(client, make_member, login_as, path, signed_in):
    user = make_member(Role.ADMIN)
    PersonFactory(organization=user.memberships[0].organization)
    if signed_in:
        login_as(user)
    response = client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<script" in html  # the page does load its scripts, from files
    assert INLINE_SCRIPT.findall(html) == []
    assert EVENT_HANDLER_ATTRIBUTE.findall(html) == []


def test_not_found_page_is_friendly_and_has_no_traceback(client, admin):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "does not exist" in html
    assert "Back to the dashboard" in html
    assert "Traceback" not in html
    assert 'File "' not in html
