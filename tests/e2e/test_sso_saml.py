"""SAML single sign-on in a real browser against the real npm saml-idp: configured on our Single sign-on page,
then a member signs in by email (home-realm discovery), lands in the organisation with the mapped role, and signs
out through single logout. CSRF is on (the ACS is the cross-site POST it must let through), CSP enforced."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.models import IdentityProvider, Membership, Role, User
from app.services import accounts
from app.services.audit import SYSTEM
from tests.e2e.test_console import assert_no_csp_violations, sign_in
from tests.peers.saml import saml_idp  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("csrf_enabled")]

SLUG = "acme"
MEMBER = "saml.jackson@example.com"


def test_sso_saml_configured_on_the_page_signs_a_member_in_with_the_mapped_role_and_out(
    page: Page, console_errors: list[str], live_server: str, make_member, saml_idp  # noqa: F811
) -> None:
    peer = saml_idp(live_server, SLUG)
    org = accounts.create_org(SLUG, "Acme Works", SYSTEM)
    org_id = org.id
    make_member(Role.ADMIN, org=org, email="admin@example.com", name="Ada Admin")

    # The admin configures SAML from the IdP's metadata URL, then domains and roles.
    sign_in(page, "admin@example.com")
    page.get_by_role("link", name="Single sign-on").click()
    expect(page.get_by_test_id("sp-acs-url")).to_have_value(f"{live_server}/sso/{SLUG}/saml/acs")
    page.get_by_label("IdP metadata URL").fill(peer.metadata_url)
    page.get_by_role("button", name="Save SAML").click()
    expect(page.get_by_text("SAML identity provider saved.")).to_be_visible()
    page.get_by_label("Name attribute / claim").fill("displayName")
    page.get_by_label("Email domains").fill("example.com")
    page.get_by_label("IdP group 1").fill("Interchange Editors")
    page.get_by_label("Role 1").select_option("editor")
    page.get_by_label("Users in no mapped group").select_option("deny")
    page.get_by_role("button", name="Save sign-in settings").click()
    expect(page.get_by_text("Sign-in settings saved.")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # The member gives only an email: discovery sends them to the IdP, which posts back to our ACS.
    page.get_by_label("Email").fill(MEMBER)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(peer.sso_url)))
    page.locator("#groups").evaluate("(el, value) => { el.value = value; }", "Interchange Editors")
    page.locator("#btn-sign-in").click()

    # Several hops (the IdP's auto-posting page, our ACS or callback, the finish redirect): more than the
    # default 5 s on a loaded CI box, where the PostgreSQL run once timed out here.
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible(timeout=20_000)
    topbar = page.locator("nav.topbar")
    expect(topbar.get_by_test_id("current-org")).to_have_text("Acme Works")
    expect(topbar.get_by_text("Saml Jackson · Editor")).to_be_visible()
    membership = db.session.scalars(select(Membership).join(User).where(User.email == MEMBER)).one()
    assert (membership.organization_id, membership.role) == (org_id, Role.EDITOR.value)
    assert db.session.scalar(select(IdentityProvider.saml_entity_id)) == peer.issuer

    # Signing out ends the IdP session too (single logout) and comes back signed out.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/projects/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    assert_no_csp_violations(console_errors)
