"""SAML sign-in through the real saml-idp: JIT users, roles, refusals of people, discovery, require-SSO, audit,
RelayState, IdP-initiated login, Test connection, SP metadata, proxies, single logout."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import lxml.html
import pytest
from lxml import etree
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.models import IdentityProvider, Role, User
from app.services.audit import SYSTEM
from app.services.sso import config as sso_config
from tests.factories import PASSWORD, OrganizationFactory
from tests.integration.sso.saml_support import (
    SLUG,
    audit_actions,
    continued_to,
    forge,
    membership_role,
    refusal_reasons,
    saml_idp,  # noqa: F401 - fixture
    set_in_response_to,
    sign_out,
    signed_in_email,
    world,  # noqa: F401 - fixture
)
from tests.peers.saml import make_keypair

EMAIL = "saml.jackson@example.com"
REFUSED_PERSON = "Sign-in refused"



def current_org_id(client) -> int | None:
    with client.session_transaction() as session:
        return session.get("org_id")


def test_saml_login_creates_the_user_just_in_time_with_the_mapped_role(world):  # noqa: F811
    response = world.login(groups="Interchange Editors")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert signed_in_email(world.client) == EMAIL
    assert current_org_id(world.client) == world.org.id
    user = db.session.scalar(select(User).where(User.email == EMAIL))
    assert (user.name, user.password_hash, user.last_login_at is not None) == ("Saml Jackson", None, True)
    assert membership_role(EMAIL, world.org) == Role.EDITOR.value
    page = world.client.get("/")
    assert page.status_code == 200 and "Acme Works" in page.get_data(as_text=True)
    actions = [action for action, _ in audit_actions(world.org)]
    assert actions[-3:] == ["user.created", "member.added", "auth.sso_login_succeeded"]
    assert audit_actions(world.org, "auth.sso_login_succeeded")[-1][1] == {
        "protocol": "saml", "subject": EMAIL, "role": "editor", "groups": ["Interchange Editors"]
    }


def test_saml_login_takes_the_highest_role_of_several_groups(world):  # noqa: F811
    assert world.login(groups="Interchange Viewers,Interchange Admins, Interchange Editors").status_code == 302
    assert membership_role(EMAIL, world.org) == Role.ADMIN.value


def test_saml_roles_are_re_evaluated_at_every_login(world, make_member):  # noqa: F811
    make_member(Role.ADMIN, org=world.org, email="admin@example.com")  # not the last admin: may be demoted
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(default_role="viewer"))
    assert world.login(groups="Interchange Admins").status_code == 302
    assert membership_role(EMAIL, world.org) == "admin"
    sign_out(world)
    assert world.login(groups="Interchange Editors").status_code == 302
    assert membership_role(EMAIL, world.org) == "editor"
    sign_out(world)
    assert world.login(groups="Some Other Team").status_code == 302
    assert membership_role(EMAIL, world.org) == "viewer"
    changes = [d for _, d in audit_actions(world.org, "member.role_changed")]
    assert [(c["from"], c["to"]) for c in changes] == [("admin", "editor"), ("editor", "viewer")]


def test_saml_deny_refuses_users_in_no_mapped_group(world):  # noqa: F811
    response = world.login(groups="Some Other Team")
    assert response.status_code == 403
    assert "not allowed into this organisation" in response.get_data(as_text=True)
    assert signed_in_email(world.client) is None
    assert db.session.scalar(select(func.count(User.id))) == 0
    assert refusal_reasons(world.org) == ["no_mapped_role"]


def test_saml_refuses_a_deactivated_user(world, make_member):  # noqa: F811
    make_member(Role.EDITOR, org=world.org, email=EMAIL, is_active=False)
    response = world.login()
    assert response.status_code == 403
    assert "deactivated" in response.get_data(as_text=True)
    assert signed_in_email(world.client) is None
    assert refusal_reasons(world.org) == ["deactivated"]


def test_saml_refuses_a_deactivated_membership(world, make_member):  # noqa: F811
    user = make_member(Role.EDITOR, org=world.org, email=EMAIL)
    user.memberships[0].is_active = False
    db.session.commit()
    response = world.login(groups="Interchange Admins")
    assert response.status_code == 403 and "deactivated" in response.get_data(as_text=True)
    assert membership_role(EMAIL, world.org) == "editor"
    assert refusal_reasons(world.org) == ["deactivated"]


def test_saml_does_not_take_over_a_user_of_another_org_outside_the_claimed_domains(world, make_member):  # noqa: F811
    """An IdP may only add existing users whose email domain the organisation claims."""
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(email_domains=[]))
    make_member(Role.ADMIN, org=OrganizationFactory(), email=EMAIL)
    response = world.login()
    assert response.status_code == 403
    assert membership_role(EMAIL, world.org) is None
    assert refusal_reasons(world.org) == ["existing_user_elsewhere"]


def test_saml_refuses_an_email_outside_the_claimed_domains(world):  # noqa: F811
    response = world.login(userName="eve@elsewhere.test", email="eve@elsewhere.test")
    assert response.status_code == 403
    assert refusal_reasons(world.org) == ["domain_not_claimed"]


def test_saml_disabled_provider_starts_no_login(world):  # noqa: F811
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(enabled=False))
    response = world.client.get(f"/sso/{SLUG}/login")
    assert response.status_code == 403
    assert "not set up" in response.get_data(as_text=True)


def test_saml_accepts_either_of_two_idp_certificates_during_rotation(world):  # noqa: F811
    """Hand entry with the IdP's current certificate as the second one (the first is the IdP's next key)."""
    configured = db.session.scalar(select(IdentityProvider))
    idp = sso_config.SamlIdp(entity_id=configured.saml_entity_id, sso_url=configured.saml_sso_url,
                             certificates=[make_keypair("Next IdP key").cert_text, world.peer.keys.cert_text])
    sso_config.configure_saml(world.org, SYSTEM, idp)
    configured = db.session.scalar(select(IdentityProvider))
    assert configured.saml_certificate and configured.saml_certificate_next
    assert world.login().status_code == 302
    assert signed_in_email(world.client) == EMAIL


def test_saml_relay_state_only_redirects_inside_the_console(world):  # noqa: F811
    assert world.login().status_code == 302
    sign_out(world)
    inside = world.post(world.idp_response(next_path="/projects/"))
    assert inside.headers["Location"] == "/projects/"
    sign_out(world)
    for outside in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        form = world.idp_response(next_path=outside)
        response = world.post({**form, "RelayState": outside})
        assert response.headers["Location"] == "/", outside
        sign_out(world)


def test_saml_idp_initiated_login_only_when_the_org_allows_it(world):  # noqa: F811
    unsolicited = forge(world.idp_response(), world.peer.keys, lambda root: set_in_response_to(root, None))
    assert world.post(unsolicited).status_code == 403
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(allow_idp_initiated=True))
    second = forge(world.idp_response(), world.peer.keys, lambda root: set_in_response_to(root, None))
    response = world.post({**second, "RelayState": "/projects/"})
    assert response.status_code == 302 and response.headers["Location"] == "/projects/"
    assert signed_in_email(world.client) == EMAIL
    sign_out(world)
    assert world.post(second).status_code == 403  # replayed even without InResponseTo
    assert refusal_reasons(world.org) == ["unsolicited", "replayed"]


def test_saml_request_ids_live_server_side_so_the_acs_needs_no_session_cookie(world, app):  # noqa: F811
    """In production the IdP's cross-site POST arrives without our SameSite=Lax cookie: a fresh client posts it;
    the same-site finish step, in the browser that started the login, signs in."""
    form = world.idp_response()
    cookieless = app.test_client(use_cookies=False)
    response = cookieless.post(f"/sso/{SLUG}/saml/acs", data={"SAMLResponse": form["SAMLResponse"]})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    assert response.headers["Location"].startswith(f"/sso/{SLUG}/saml/finish?token=")
    assert signed_in_email(world.client) is None
    finished = world.client.get(response.headers["Location"])
    assert finished.status_code == 302 and finished.headers["Location"] == "/"
    assert signed_in_email(world.client) == EMAIL


def test_saml_sp_metadata_carries_our_urls_and_signing_certificate(world):  # noqa: F811
    response = world.client.get(f"/sso/{SLUG}/saml/metadata")
    assert response.status_code == 200 and response.mimetype == "application/samlmetadata+xml"
    root = etree.fromstring(response.data)
    ns = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": "http://www.w3.org/2000/09/xmldsig#"}
    assert root.get("entityID") == f"http://localhost/sso/{SLUG}/saml/metadata"
    sp = root.find("md:SPSSODescriptor", ns)
    assert sp.get("WantAssertionsSigned") == "true" and sp.get("AuthnRequestsSigned") == "true"
    assert sp.find("md:AssertionConsumerService", ns).get("Location") == f"http://localhost/sso/{SLUG}/saml/acs"
    assert sp.find("md:SingleLogoutService", ns).get("Location") == f"http://localhost/sso/{SLUG}/saml/sls"
    certificate = sp.find(".//ds:X509Certificate", ns).text
    provider = db.session.scalar(select(IdentityProvider))
    assert "".join(certificate.split()) in "".join(provider.sp_certificate.split())
    assert "PRIVATE" not in response.get_data(as_text=True)
    assert provider.sp_private_key_encrypted and "PRIVATE" not in provider.sp_private_key_encrypted


def test_saml_urls_stay_right_behind_a_proxy(app, world):  # noqa: F811
    proxied = create_app({**app.config, "PROXY_FIX_HOPS": 1})
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "console.example.com", "X-Forwarded-For": "1.2.3.4"}
    with proxied.app_context():
        response = proxied.test_client().get(f"/sso/{SLUG}/saml/metadata", headers=headers)
        assert response.status_code == 200
        text = response.get_data(as_text=True)
        assert f'entityID="https://console.example.com/sso/{SLUG}/saml/metadata"' in text
        assert f'Location="https://console.example.com/sso/{SLUG}/saml/acs"' in text
        # The ACS compares Destination with the public URL: a response addressed to http://localhost is refused there.
        form = world.idp_response()
        refused = proxied.test_client().post(f"/sso/{SLUG}/saml/acs", data={"SAMLResponse": form["SAMLResponse"]},
                                              headers=headers)
        assert refused.status_code == 403
    assert refusal_reasons(world.org)[-1] == "wrong_destination"


def test_saml_unknown_org_is_not_found(world):  # noqa: F811
    assert world.client.get("/sso/nobody/login").status_code == 404
    assert world.client.post("/sso/nobody/saml/acs", data={"SAMLResponse": "x"}).status_code == 404
    assert world.client.get("/sso/nobody/saml/metadata").status_code == 404


def test_saml_acs_is_exempt_from_csrf_but_the_settings_forms_are_not(world, app, make_member, login_as):  # noqa: F811
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = world.post(world.idp_response())
        assert response.status_code == 302
        sign_out(world)
        login_as(make_member(Role.ADMIN, org=world.org), world.org)
        assert world.client.post("/settings/sso/policy", data={"email_domains": "x.com"}).status_code == 400
        assert world.client.post("/settings/sso/test").status_code == 400
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


# --- home-realm discovery and require-SSO --------------------------------------------------------------------------

def test_sign_in_page_sends_a_claimed_domain_to_its_identity_provider(world, make_member):  # noqa: F811
    make_member(Role.ADMIN, org=world.org, email="admin@example.com")
    response = world.client.post("/login", data={"email": "Someone@Example.com", "password": "", "next": "/tasks/"})
    assert continued_to(response) == f"/sso/{SLUG}/login?next=/tasks/"
    follow = world.client.get(continued_to(response))
    assert follow.headers["Location"].startswith(world.peer.sso_url + "?SAMLRequest=")


def test_sign_in_page_asks_for_a_password_for_other_domains(world, make_member):  # noqa: F811
    make_member(Role.ADMIN, org=world.org, email="admin@example.com")
    response = world.client.post("/login", data={"email": "someone@elsewhere.test", "password": ""})
    assert response.status_code == 401
    assert "Enter your password." in response.get_data(as_text=True)


def test_require_sso_blocks_password_sign_in_except_for_the_break_glass_admin(world, make_member):  # noqa: F811
    admin = make_member(Role.ADMIN, org=world.org, email="admin@example.com")
    make_member(Role.EDITOR, org=world.org, email="editor@example.com")
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(require_sso=True,
                                                                      break_glass_email="admin@example.com"))
    refused = world.client.post("/login", data={"email": "editor@example.com", "password": PASSWORD})
    assert refused.status_code == 401
    assert "signs in through single sign-on" in refused.get_data(as_text=True)
    assert signed_in_email(world.client) is None
    assert audit_actions(world.org, "auth.login_refused")[-1][1] == {"reason": "sso_required"}
    allowed = world.client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
    assert allowed.status_code == 302
    assert signed_in_email(world.client) == admin.email


def test_require_sso_needs_a_break_glass_admin_with_a_password(world, make_member):  # noqa: F811
    with pytest.raises(Exception) as error:
        sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(require_sso=True))
    assert "break-glass" in str(error.value.errors["break_glass_email"])
    make_member(Role.EDITOR, org=world.org, email="editor@example.com")
    with pytest.raises(Exception) as error:
        sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(require_sso=True,
                                                                          break_glass_email="editor@example.com"))
    assert error.value.errors["break_glass_email"] == ["This must be the email of an active admin of this "
                                                       "organisation."]
    assert db.session.scalar(select(IdentityProvider)).require_sso is False


# --- Test connection -------------------------------------------------------------------------------------------------

def test_test_connection_shows_what_the_idp_sent_without_signing_in(world, make_member, login_as):  # noqa: F811
    admin = login_as(make_member(Role.ADMIN, org=world.org, email="admin@example.com"), world.org)
    start = continued_to(world.client.post("/settings/sso/test"))
    assert start.startswith(world.peer.sso_url)
    form = world.peer.sign_in(start, groups="Interchange Admins,Interchange Viewers")
    sign_out(world)
    page = world.client.post(f"/sso/{SLUG}/saml/acs", data={"SAMLResponse": form["SAMLResponse"]})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"{EMAIL} would sign in as <strong>admin</strong>" in text
    assert "mobilePhone" in text and "+1-415-555-5141" in text
    assert signed_in_email(world.client) is None
    assert db.session.scalar(select(func.count(User.id))) == 1  # only the admin who ran the test
    assert [a for a, _ in audit_actions(world.org, "sso.test")] == ["sso.test_started"]
    assert admin.email == "admin@example.com"


# --- single logout ---------------------------------------------------------------------------------------------------

def test_saml_sign_out_ends_the_idp_session_through_single_logout(world):  # noqa: F811
    assert world.login().status_code == 302
    location = continued_to(world.client.post("/logout"))
    assert location.startswith(world.peer.slo_url + "?SAMLRequest=")
    assert signed_in_email(world.client) is None
    query = parse_qs(urlsplit(location).query)
    assert {"SAMLRequest", "SigAlg", "Signature"} <= set(query)
    # The IdP ends its session and posts its LogoutResponse back to our SLS (POST binding).
    answer = world.peer.browser.get(location, timeout=10)
    form = lxml.html.fromstring(answer.content).forms[0]
    assert form.action == f"http://localhost/sso/{SLUG}/saml/sls"
    back = world.client.post(f"/sso/{SLUG}/saml/sls", data=dict(form.fields))
    assert back.status_code == 302 and back.headers["Location"] == "/login"
    assert signed_in_email(world.client) is None
    # A LogoutResponse signed by someone else is refused.
    forged = forge({"SAMLResponse": form.fields["SAMLResponse"]}, make_keypair("Forger"), sign_assertion=False,
                   sign_response=True)
    assert world.client.post(f"/sso/{SLUG}/saml/sls", data=forged).status_code == 403
    assert refusal_reasons(world.org)[-1] == "logout_invalid"
    # The same LogoutResponse again answers no pending request.
    assert world.client.post(f"/sso/{SLUG}/saml/sls", data=dict(form.fields)).status_code == 403
    assert refusal_reasons(world.org)[-1] == "unknown_request"

