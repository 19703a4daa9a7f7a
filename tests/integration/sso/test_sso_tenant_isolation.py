"""Regression tests of the SSO security review: an SSO session reaches only the organisation whose IdP vouched for
it (H1), "require SSO" is decided per organisation (M3), and SSO role re-evaluation keeps the last and the
break-glass admin (M6)."""

from __future__ import annotations

from flask import g

from app.models import Role
from app.services import accounts
from app.services.audit import SYSTEM
from app.services.sso import config as sso_config
from tests.factories import PASSWORD
from tests.integration.sso.saml_support import (
    audit_actions,
    membership_role,
    saml_idp,  # noqa: F401 - fixture
    sign_out,
    signed_in_email,
    world,  # noqa: F401 - fixture
)

EMAIL = "saml.jackson@example.com"


def session_value(client, key: str):
    with client.session_transaction() as session:
        return session.get(key)


def switch(client, org_id: int) -> int:
    g.pop("_login_user", None)
    return client.post("/switch-org", data={"org_id": org_id}).status_code


def dashboard(client) -> str:
    g.pop("_login_user", None)
    page = client.get("/")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def password_login(client, email: str):
    g.pop("_login_user", None)
    return client.post("/login", data={"email": email, "password": PASSWORD})


# --- H1: cross-tenant takeover through another organisation's IdP ---------------------------------------------------

def test_an_idp_claiming_the_domain_signs_the_user_in_to_its_own_organisation_only(world, make_member):  # noqa: F811
    victim_org = accounts.create_org("victim", "Victim Co", SYSTEM)
    make_member(Role.ADMIN, org=victim_org, email=EMAIL)
    # Acme claims example.com: its IdP may link the existing user to Acme (JIT), but vouches for Acme only.
    assert world.login(groups="Interchange Viewers").status_code == 302
    assert signed_in_email(world.client) == EMAIL
    assert membership_role(EMAIL, world.org) == "viewer"
    assert session_value(world.client, "sso_org_id") == world.org.id
    assert session_value(world.client, "allowed_org_ids") == [world.org.id]
    assert switch(world.client, victim_org.id) == 404
    assert session_value(world.client, "org_id") == world.org.id
    text = dashboard(world.client)
    assert "Acme Works" in text and "Victim Co" not in text  # not even offered in the organisation switcher
    # A password sign-in (the user proves who they are) opens all their organisations again.
    sign_out(world)
    assert password_login(world.client, EMAIL).status_code == 302
    assert session_value(world.client, "sso_org_id") is None
    assert session_value(world.client, "allowed_org_ids") is None
    assert switch(world.client, victim_org.id) == 302
    assert "Victim Co" in dashboard(world.client)


def test_an_invitation_plus_sso_does_not_reach_the_users_other_organisation(world, make_member):  # noqa: F811
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(email_domains=[], default_role="viewer"))
    victim_org = accounts.create_org("victim", "Victim Co", SYSTEM)
    make_member(Role.ADMIN, org=victim_org, email=EMAIL)
    accounts.invite_member(world.org, SYSTEM, EMAIL, "viewer")  # Acme adds the existing user as a member
    assert world.login(groups="Interchange Viewers").status_code == 302
    assert signed_in_email(world.client) == EMAIL
    assert switch(world.client, victim_org.id) == 404
    assert session_value(world.client, "org_id") == world.org.id
    assert "Victim Co" not in dashboard(world.client)


def test_sso_does_not_link_an_existing_user_whose_domain_the_org_does_not_claim(world, make_member):  # noqa: F811
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(email_domains=["acme.test"]))
    victim_org = accounts.create_org("victim", "Victim Co", SYSTEM)
    make_member(Role.ADMIN, org=victim_org, email="boss@acme.test")
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(email_domains=["example.com"]))
    response = world.login(userName="boss@acme.test", email="boss@acme.test")
    assert response.status_code == 403
    assert membership_role("boss@acme.test", world.org) is None
    assert signed_in_email(world.client) is None


def test_sign_out_clears_the_sso_restriction(world):  # noqa: F811
    assert world.login(groups="Interchange Admins").status_code == 302
    g.pop("_login_user", None)
    world.client.post("/logout")
    assert session_value(world.client, "sso_org_id") is None
    assert session_value(world.client, "allowed_org_ids") is None


# --- M3: require SSO per organisation --------------------------------------------------------------------------------

def test_require_sso_of_one_org_leaves_password_sign_in_to_the_users_other_orgs(world, make_member):  # noqa: F811
    make_member(Role.ADMIN, org=world.org, email="admin@example.com")
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(require_sso=True,
                                                                      break_glass_email="admin@example.com"))
    other = accounts.create_org("other", "Other Ltd", SYSTEM)
    user = make_member(Role.EDITOR, org=world.org, email="both@example.com")
    accounts.create_user("both@example.com", other, Role.EDITOR, SYSTEM)
    response = password_login(world.client, "both@example.com")
    assert response.status_code == 302
    assert signed_in_email(world.client) == user.email
    assert session_value(world.client, "allowed_org_ids") == [other.id]
    text = dashboard(world.client)
    assert "Other Ltd" in text and "Acme Works" not in text
    assert session_value(world.client, "org_id") == other.id
    assert switch(world.client, world.org.id) == 404  # Acme needs its single sign-on
    assert [a for a, _ in audit_actions(other, "auth.login")] == ["auth.login_succeeded"]
    assert audit_actions(world.org, "auth.login") == []


def test_require_sso_in_every_org_of_the_user_refuses_password_sign_in(world, make_member):  # noqa: F811
    make_member(Role.ADMIN, org=world.org, email="admin@example.com")
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(require_sso=True,
                                                                      break_glass_email="admin@example.com"))
    make_member(Role.EDITOR, org=world.org, email="only@example.com")
    response = password_login(world.client, "only@example.com")
    assert response.status_code == 401
    assert "Acme Works signs in through single sign-on" in response.get_data(as_text=True)
    assert signed_in_email(world.client) is None
    # The break-glass admin still gets in with a password, to all of their organisations.
    assert password_login(world.client, "admin@example.com").status_code == 302
    assert session_value(world.client, "allowed_org_ids") is None
    assert "Acme Works" in dashboard(world.client)


# --- M6: SSO role re-evaluation keeps the last admin and the break-glass admin ---------------------------------------

def test_sso_does_not_demote_or_deny_the_last_active_admin(world):  # noqa: F811
    assert world.login(groups="Interchange Admins").status_code == 302
    sign_out(world)
    assert world.login(groups="Interchange Editors").status_code == 302  # would demote the only admin
    assert membership_role(EMAIL, world.org) == "admin"
    sign_out(world)
    assert world.login(groups="Some Other Team").status_code == 302  # default "deny" would lock the admin out
    assert membership_role(EMAIL, world.org) == "admin"
    kept = [d for _, d in audit_actions(world.org, "sso.role_kept")]
    assert [(d["reason"], d["mapped"]) for d in kept] == [("last_admin", "editor"), ("last_admin", None)]
    assert audit_actions(world.org, "member.role_changed") == []


def test_sso_does_not_demote_the_break_glass_admin_but_demotes_other_admins(world, make_member):  # noqa: F811
    make_member(Role.ADMIN, org=world.org, email="admin@example.com")
    make_member(Role.ADMIN, org=world.org, email=EMAIL)  # the break-glass admin needs a password
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(require_sso=True, break_glass_email=EMAIL))
    sign_out(world)
    assert world.login(groups="Interchange Viewers").status_code == 302
    assert membership_role(EMAIL, world.org) == "admin"
    assert audit_actions(world.org, "sso.role_kept")[-1][1]["reason"] == "break_glass"
    # Another admin, neither last nor break-glass, follows the IdP.
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(require_sso=False))
    sign_out(world)
    assert world.login(userName="admin@example.com", email="admin@example.com",
                       groups="Interchange Viewers").status_code == 302
    assert membership_role("admin@example.com", world.org) == "viewer"
