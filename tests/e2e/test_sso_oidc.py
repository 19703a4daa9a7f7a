"""OpenID Connect single sign-on in a real browser against the real oidc-provider (npm, PEERS.md §3).

The organisation is configured through the CLI (``flask --app wsgi sso oidc ...``, run in-process on the test app);
the person types only their email on our sign-in page, home-realm discovery sends them to oidc-provider, they sign in
and consent on its own pages, and land in the right organisation with the role their group maps to; then they sign
out. CSRF is on and CSP enforced on our pages.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Membership, Organization, User
from tests.e2e.test_console import assert_no_csp_violations
from tests.factories import OrganizationFactory
from tests.peers.oidc import ORG_SLUG, OidcPeer, oidc_peer_for_live_server

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("csrf_enabled")]

oidc_peer = oidc_peer_for_live_server


@pytest.fixture
def org(runner, make_member, oidc_peer: OidcPeer) -> Organization:
    organisation = OrganizationFactory(slug=ORG_SLUG, name="Acme OIDC")
    make_member("admin", organisation, email="owner@acme.test")  # an installed console: no first-run setup page
    result = runner.invoke(args=[
        "sso", "oidc", "--org", ORG_SLUG, "--issuer", oidc_peer.issuer, "--client-id", oidc_peer.client_id,
        "--client-secret", oidc_peer.client_secret, "--scopes", "openid email profile groups",
        "--domain", "acme.test", "--group", "interchange-editors=editor", "--default-role", "deny",
    ])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith(f"configured oidc single sign-on for {ORG_SLUG}")
    assert oidc_peer.client_secret not in result.output
    return organisation


def test_sso_oidc_user_signs_in_through_oidc_provider_with_the_mapped_role_and_signs_out(
    page: Page, console_errors: list[str], org: Organization
) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill("ada@acme.test")
    page.get_by_role("button", name="Sign in").click()

    # oidc-provider's own development login and consent pages (any password is accepted; the login is the subject).
    page.locator("input[name=login]").fill("ada")
    page.locator("input[name=password]").fill("anything")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()

    # Several hops (the IdP's auto-posting page, our ACS or callback, the finish redirect): more than the
    # default 5 s on a loaded CI box, where the PostgreSQL run once timed out here.
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible(timeout=20_000)
    expect(page.get_by_text("Acme OIDC").first).to_be_visible()
    db.session.expire_all()
    user = db.session.scalar(select(User).where(User.email == "ada@acme.test"))
    assert user is not None and user.name == "Ada Lovelace"
    membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id))
    assert (membership.organization_id, membership.role) == (org.id, "editor")
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.sso_login_succeeded")) is not None

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # Only our own pages count: oidc-provider's pages are not ours (and fetch a web font the sandbox cannot reach).
    assert_no_csp_violations(console_errors)
