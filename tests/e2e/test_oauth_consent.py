"""OAuth consent in a real browser: CSRF on, CSP enforced, the answer redirected to an app on another origin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from playwright.sync_api import Page, expect

from app.models import Role
from app.services import oauth
from app.services.audit import Actor
from tests.e2e.test_console import assert_no_csp_violations, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("csrf_enabled")]


class _Callback(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"partner app received the answer")

    def log_message(self, *args) -> None:
        """Quiet: the test asserts on the URL, not on the log."""


@pytest.fixture
def partner_callback() -> Iterator[str]:
    """The partner app's redirect endpoint, on its own port (so another origin than the console)."""
    server = HTTPServer(("127.0.0.1", 0), _Callback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/callback"
    server.shutdown()
    server.server_close()


def test_oauth_consent_in_the_browser_returns_a_code_to_the_app(
    page: Page, console_errors: list[str], live_server: str, partner_callback: str, make_member
) -> None:
    admin = make_member(Role.ADMIN)
    org = admin.memberships[0].organization
    app_row, _ = oauth.register_client(org, Actor(user=admin), "Partner Timesheets", False, [partner_callback],
                                       ["data.read"])
    session = OAuth2Session(app_row.client_id, scope="data.read", redirect_uri=partner_callback,
                            code_challenge_method="S256", token_endpoint_auth_method="none")
    verifier = generate_token(64)
    url, state = session.create_authorization_url(f"{live_server}/oauth/authorize", code_verifier=verifier)
    email, org_name = admin.email, org.name

    sign_in(page, email)
    page.goto(url)
    consent = page.get_by_test_id("consent")
    expect(consent).to_contain_text(f"Partner Timesheets wants access to {org_name}")
    expect(page.get_by_test_id("consent-scopes")).to_contain_text("data.read")
    page.get_by_role("button", name="Allow access").click()
    page.wait_for_url(f"{partner_callback}?**")

    answer = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert (answer["state"], answer["iss"]) == (state, live_server)
    token = session.fetch_token(f"{live_server}/oauth/token", authorization_response=page.url, code_verifier=verifier)
    me = requests.get(f"{live_server}/api/v1/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.json()["scopes"] == ["data.read"]
    assert_no_csp_violations(console_errors)
