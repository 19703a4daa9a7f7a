"""OIDC sign-in against the real oidc-provider (npm, PEERS.md §3), driven by plain HTTP: no browser, so it is fast.

The browser journey is tests/e2e/test_sso_oidc.py; this test walks the same redirects with requests, submitting
oidc-provider's own login and consent forms, and checks where the user lands, with which role, and the audit trail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Membership, Organization, User
from app.services.audit import SYSTEM
from app.services.sso import config as sso_config
from tests.factories import OrganizationFactory
from tests.peers.oidc import ORG_SLUG, OidcPeer, oidc_peer_for_live_server

FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


oidc_peer = oidc_peer_for_live_server


@pytest.fixture
def org(oidc_peer: OidcPeer) -> Organization:
    organisation = OrganizationFactory(slug=ORG_SLUG, name="Acme OIDC")
    db.session.commit()
    sso_config.configure_oidc(
        organisation, SYSTEM,
        sso_config.OidcIdp(issuer=oidc_peer.issuer, client_id=oidc_peer.client_id,
                           client_secret=oidc_peer.client_secret, scopes="openid email profile groups"),
        sso_config.SsoPolicy(enabled=True, group_roles=[("interchange-editors", "editor")], default_role="deny"),
    )
    return organisation


def sign_in_at_provider(browser: requests.Session, start: str, login: str) -> requests.Response:
    """Follow our login redirect to the provider, submit its login and consent forms, follow it back to us."""
    page = browser.get(start, timeout=10)
    assert page.url.startswith(browser.peer_issuer) and 'name="login"' in page.text, page.text[:500]
    page = browser.post(_action(page), data={"prompt": "login", "login": login, "password": "any"}, timeout=10)
    assert "Continue" in page.text, page.text[:500]  # the consent page
    return browser.post(_action(page), data={"prompt": "consent"}, timeout=10)


def _action(page: requests.Response) -> str:
    return requests.compat.urljoin(page.url, FORM_ACTION.search(page.text).group(1))


@pytest.fixture
def browser(oidc_peer: OidcPeer) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.peer_issuer = oidc_peer.issuer
        yield session


def test_a_mapped_user_signs_in_through_oidc_provider_and_out_again(
    live_server: str, org: Organization, browser: requests.Session
):
    landed = sign_in_at_provider(browser, f"{live_server}/sso/{ORG_SLUG}/login", "ada")

    assert landed.status_code == 200 and landed.url == f"{live_server}/"
    assert "Dashboard" in landed.text and "Acme OIDC" in landed.text
    db.session.expire_all()
    user = db.session.scalar(select(User).where(User.email == "ada@acme.test"))
    assert user is not None and user.name == "Ada Lovelace" and user.password_hash is None  # created just in time
    membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id))
    assert (membership.organization_id, membership.role) == (org.id, "editor")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.sso_login_succeeded"))
    assert event.details["protocol"] == "oidc" and event.details["subject"] == "ada"
    assert event.details["groups"] == ["staff", "interchange-editors"]

    signed_out = browser.post(f"{live_server}/logout", timeout=10)
    assert signed_out.url == f"{live_server}/login" and "You are signed out." in signed_out.text
    assert browser.get(f"{live_server}/", timeout=10).url.startswith(f"{live_server}/login")


def test_a_user_in_no_mapped_group_is_refused_plainly_and_audited(
    live_server: str, org: Organization, browser: requests.Session
):
    refused = sign_in_at_provider(browser, f"{live_server}/sso/{ORG_SLUG}/login", "eve")

    assert refused.status_code == 403
    assert "not allowed into this organisation" in refused.text
    assert "Traceback" not in refused.text and "peer-client-secret" not in refused.text
    db.session.expire_all()
    assert db.session.scalar(select(User).where(User.email == "eve@acme.test")) is None
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.sso_login_refused"))
    assert event.details == {"reason": "no_mapped_role", "protocol": "oidc"}


def test_a_replayed_callback_is_refused(live_server: str, org: Organization, browser: requests.Session):
    start = browser.get(f"{live_server}/sso/{ORG_SLUG}/login", timeout=10, allow_redirects=False)
    page = browser.get(start.headers["Location"], timeout=10)
    page = browser.post(_action(page), data={"prompt": "login", "login": "ada", "password": "any"}, timeout=10)
    callback = browser.post(_action(page), data={"prompt": "consent"}, timeout=10, allow_redirects=False)
    while not callback.headers["Location"].startswith(live_server):
        callback = browser.get(callback.headers["Location"], timeout=10, allow_redirects=False)
    callback_url = callback.headers["Location"]
    assert "/oidc/callback?" in callback_url

    assert browser.get(callback_url, timeout=10).url == f"{live_server}/"
    browser.post(f"{live_server}/logout", timeout=10)
    replayed = browser.get(callback_url, timeout=10)

    assert replayed.status_code == 403 and "Please start again" in replayed.text
