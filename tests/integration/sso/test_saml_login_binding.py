"""Regression tests of the SSO security review (M1, SAML login CSRF): a SAML response signs in only the browser
whose session started the AuthnRequest it answers. The ACS (a cross-site POST, no session cookie) only verifies
and hands over to a same-site GET /sso/<org>/saml/finish with a one-time token."""

from __future__ import annotations

from flask import g
from sqlalchemy import func, select

from app.extensions import db
from app.models import User
from app.services.audit import SYSTEM
from app.services.sso import config as sso_config
from tests.integration.sso.saml_support import (
    SLUG,
    forge,
    refusal_reasons,
    saml_idp,  # noqa: F401 - fixture
    set_in_response_to,
    signed_in_email,
    world,  # noqa: F401 - fixture
)

EMAIL = "saml.jackson@example.com"


def acs(client, form: dict[str, str]):
    return client.post(f"/sso/{SLUG}/saml/acs", data={k: v for k, v in form.items() if k != "_action"})


def test_a_response_posted_from_another_browser_does_not_sign_it_in(world, other_client):  # noqa: F811
    form = world.idp_response()  # the attacker's browser (world.client) started the login and holds the answer
    handed_over = acs(other_client, form)  # the victim's browser auto-posts it (an attacker's page)
    assert handed_over.status_code == 303
    refused = other_client.get(handed_over.headers["Location"])
    assert refused.status_code == 403
    assert "not started in this browser" in refused.get_data(as_text=True)
    assert signed_in_email(other_client) is None
    assert refusal_reasons(world.org) == ["not_bound"]
    assert db.session.scalar(select(func.count(User.id))) == 0
    # The token was used up: handing it to the browser that did start the login does not work either.
    g.pop("_login_user", None)
    again = world.client.get(handed_over.headers["Location"])
    assert again.status_code == 403 and signed_in_email(world.client) is None
    assert refusal_reasons(world.org)[-1] == "no_pending_login"


def test_the_browser_that_started_the_login_is_signed_in(world):  # noqa: F811
    handed_over = acs(world.client, world.idp_response(next_path="/projects/"))
    assert handed_over.status_code == 303
    g.pop("_login_user", None)
    done = world.client.get(handed_over.headers["Location"])
    assert done.status_code == 302 and done.headers["Location"] == "/projects/"
    assert signed_in_email(world.client) == EMAIL


def test_a_finish_token_is_unguessable_and_single_use(world):  # noqa: F811
    assert world.client.get(f"/sso/{SLUG}/saml/finish?token=made-up").status_code == 403
    assert world.client.get(f"/sso/{SLUG}/saml/finish").status_code == 403
    assert refusal_reasons(world.org) == ["no_pending_login", "no_pending_login"]


def test_idp_initiated_logins_cannot_be_bound_and_need_the_orgs_consent(world, other_client):  # noqa: F811
    sso_config.update_policy(world.org, SYSTEM, sso_config.SsoPolicy(allow_idp_initiated=True))
    unsolicited = forge(world.idp_response(), world.peer.keys, lambda root: set_in_response_to(root, None))
    handed_over = acs(other_client, unsolicited)
    assert other_client.get(handed_over.headers["Location"]).status_code == 302
    assert signed_in_email(other_client) == EMAIL
