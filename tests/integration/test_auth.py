"""Sign-in, first-run setup, throttling, invitations and switching organisation, through the test client.

Throttling runs on the real Redis of the test session; the limits are the
configured defaults (slow down after 3 failures, lock an account after 5 and an
address after 20), so the tests make the real number of attempts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from app.extensions import db, redis_store
from app.models import AuditEvent, Membership, Organization, Role, User
from app.services import accounts
from app.services.audit import SYSTEM
from tests.factories import PASSWORD, OrganizationFactory

BAD_CREDENTIALS = b"Email or password is incorrect."
NEW_PASSWORD = "a brand new passphrase"
SETUP_FORM = {
    "org_name": "Acme",
    "org_slug": "acme",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "password": NEW_PASSWORD,
    "confirm": NEW_PASSWORD,
}


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD, **form):
    return client.post("/login", data={"email": email, "password": password, **form})


def fail_from_address(client: FlaskClient, count: int) -> None:
    """``count`` failed sign-ins from the client's address, each for a different unknown account."""
    for n in range(count):
        assert sign_in(client, f"nobody{n}@example.com", "wrong password").status_code == 401


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- first run -------------------------------------------------------------------------


def test_login_redirects_to_setup_before_the_first_user(client):
    response = client.get("/login")
    assert response.status_code == 302
    assert response.headers["Location"] == "/setup"


def test_setup_creates_org_and_admin_and_signs_in(client):
    response = client.post("/setup", data=SETUP_FORM)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    org = db.session.scalars(select(Organization)).one()
    membership = db.session.scalars(select(Membership)).one()
    assert (org.slug, org.name) == ("acme", "Acme")
    assert (membership.user.email, membership.role, membership.organization_id) == ("ada@example.com", "admin", org.id)
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert b"Acme" in dashboard.data


def test_setup_is_not_found_once_a_user_exists(client):
    client.post("/setup", data=SETUP_FORM)
    assert client.get("/setup").status_code == 404
    again = client.post("/setup", data={**SETUP_FORM, "org_slug": "second", "email": "eve@example.com"})
    assert again.status_code == 404
    assert count(Organization) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"org_slug": "Bad Slug!"}, "Lower-case letters, digits, dashes."),
        ({"org_slug": "-acme"}, "Use lower-case letters, digits and dashes"),  # passes the form, fails the service
        ({"password": "short", "confirm": "short"}, "between 12 and 1024 characters"),
        ({"confirm": "something else entirely"}, "Passwords differ."),
    ],
    ids=["bad-slug", "slug-edge-dash", "short-password", "mismatched-confirm"],
)
def test_setup_form_errors_show_inline_and_create_nothing(client, changes, message):
    response = client.post("/setup", data={**SETUP_FORM, **changes})
    assert response.status_code == 200
    assert re.search(rf'class="invalid-feedback">[^<]*{re.escape(message)}', response.text)
    assert (count(Organization), count(User), count(Membership)) == (0, 0, 0)


# --- password sign-in ------------------------------------------------------------------


def test_login_success_redirects_to_the_dashboard(client, make_member):
    user = make_member(Role.VIEWER)
    response = sign_in(client, user.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    ("next_url", "landing"),
    [
        ("/people/?q=ada", "/people/?q=ada"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
    ],
    ids=["local-path", "absolute-url", "scheme-relative"],
)
def test_login_honours_next_only_for_local_paths(client, make_member, next_url, landing):
    user = make_member(Role.VIEWER)
    response = sign_in(client, user.email, next=next_url)
    assert response.status_code == 302
    assert response.headers["Location"] == landing


@pytest.mark.parametrize(
    ("email", "password"),
    [("known@example.com", "not the password"), ("stranger@example.com", PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
def test_login_bad_credentials_get_one_answer_for_known_and_unknown_emails(client, make_member, email, password):
    make_member(Role.VIEWER, email="known@example.com")
    response = sign_in(client, email, password)
    assert response.status_code == 401
    assert BAD_CREDENTIALS in response.data
    assert client.get("/").status_code == 302


def test_logout_clears_the_session(client, make_member):
    user = make_member(Role.VIEWER)
    sign_in(client, user.email)
    response = client.post("/logout")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    dashboard = client.get("/")
    assert dashboard.status_code == 302
    assert dashboard.headers["Location"].startswith("/login")
    with client.session_transaction() as session:
        assert "_user_id" not in session and "org_id" not in session


def test_login_refuses_a_deactivated_membership(client, make_member):
    user = make_member(Role.EDITOR)
    user.memberships[0].is_active = False
    db.session.commit()
    response = sign_in(client, user.email)
    assert response.status_code == 401
    assert b"Your account is deactivated." in response.data
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    ("email", "password", "action", "in_org"),
    [
        ("member@example.com", PASSWORD, "auth.login_succeeded", True),
        ("member@example.com", "not the password", "auth.login_failed", True),
        ("stranger@example.com", PASSWORD, "auth.login_failed", False),
    ],
    ids=["success", "wrong-password", "unknown-email"],
)
def test_login_outcome_writes_an_audit_event(client, make_member, email, password, action, in_org):
    user = make_member(Role.VIEWER, email="member@example.com")
    sign_in(client, email, password)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("auth.%"))).one()
    assert event.action == action
    assert event.ip_address == "127.0.0.1"
    assert event.actor_label == email
    assert event.organization_id == (user.memberships[0].organization_id if in_org else None)
    assert event.actor_id == (user.id if in_org else None)


# --- throttling ------------------------------------------------------------------------


def test_login_pauses_the_account_after_three_failures(client, make_member):
    user = make_member(Role.VIEWER)
    for _ in range(3):
        assert sign_in(client, user.email, "not the password").status_code == 401
    response = sign_in(client, user.email)  # the right password, still refused for now
    assert response.status_code == 429
    seconds = int(re.search(r"Wait (\d+) seconds", response.text).group(1))
    assert 0 < seconds <= int(response.headers["Retry-After"]) + 1
    assert client.get("/").status_code == 302


def test_login_locks_the_account_after_five_failures(client, make_member):
    user = make_member(Role.VIEWER)
    for _ in range(5):
        # Skip the short pause between attempts; the lock counts failures, not pauses.
        redis_store.client.delete(f"login:pause:{user.email}")
        assert sign_in(client, user.email, "not the password").status_code == 401
    redis_store.client.delete(f"login:pause:{user.email}")
    response = sign_in(client, user.email)
    assert response.status_code == 429
    assert re.search(r"this account\. Sign-in is locked for \d+ minutes?", response.text)
    assert int(response.headers["Retry-After"]) > 0


def test_login_locks_the_address_after_twenty_failures_across_accounts(client, make_member):
    user = make_member(Role.VIEWER)
    fail_from_address(client, 20)
    response = sign_in(client, user.email)
    assert response.status_code == 429
    assert re.search(r"your network address\. Sign-in is locked for \d+ minutes?", response.text)
    assert int(response.headers["Retry-After"]) > 0


def test_login_address_lock_spares_other_addresses(app, client, make_member):
    user = make_member(Role.VIEWER)
    fail_from_address(client, 20)
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert sign_in(elsewhere, user.email).status_code == 302


def test_login_success_resets_the_account_failures(client, make_member):
    user = make_member(Role.VIEWER)
    for _ in range(2):
        assert sign_in(client, user.email, "not the password").status_code == 401
    assert sign_in(client, user.email).status_code == 302
    client.post("/logout")
    for _ in range(2):
        assert sign_in(client, user.email, "not the password").status_code == 401
    # Four failures in all, but only two since the success: no pause yet.
    assert sign_in(client, user.email).status_code == 302


@pytest.fixture
def app_without_redis(app: Flask) -> Iterator[Flask]:
    """A second app on the same database whose Redis is a closed port."""
    keys = ("SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "INTERCHANGE_STORAGE", "PASSWORD_HASH_TIME_COST",
            "PASSWORD_HASH_MEMORY_COST")
    broken = create_app(
        {
            **{key: app.config[key] for key in keys},
            "TESTING": True,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "INTERCHANGE_ENV": "test",
            "WTF_CSRF_ENABLED": False,
            "SESSION_COOKIE_SECURE": False,
            "LOG_JSON": False,
            "LOG_LEVEL": "ERROR",
        }
    )
    yield broken
    with broken.app_context():
        db.engine.dispose()
    # Extensions are process-wide singletons: bind Redis back to the session's app.
    redis_store.init_app(app)


def test_login_throttle_fails_open_when_redis_is_unreachable(app_without_redis, make_member):
    user = make_member(Role.VIEWER)
    client = app_without_redis.test_client()
    assert sign_in(client, user.email, "not the password").status_code == 401
    response = sign_in(client, user.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


# --- invitations -----------------------------------------------------------------------


@pytest.fixture
def invitation(make_member) -> tuple[User, str]:
    org = OrganizationFactory()
    make_member(Role.ADMIN, org=org)
    return accounts.invite_member(org, SYSTEM, "newcomer@example.com", Role.EDITOR, "New Comer")


def test_invitation_page_shows_the_password_form(client, invitation):
    user, token = invitation
    response = client.get(f"/invitations/{token}")
    assert response.status_code == 200
    assert b"Choose a password for newcomer@example.com" in response.data
    assert b'name="confirm"' in response.data


def test_invitation_sets_the_password_and_the_user_can_sign_in(client, invitation):
    user, token = invitation
    response = client.post(f"/invitations/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert sign_in(client, "newcomer@example.com", NEW_PASSWORD).status_code == 302


def test_invitation_works_only_once(client, invitation):
    user, token = invitation
    client.post(f"/invitations/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    for method in (client.get, client.post):
        response = method(f"/invitations/{token}", data={"password": "another passphrase", "confirm": "x"})
        assert response.status_code == 400
        assert b"This invitation link has already been used" in response.data
    assert sign_in(client, "newcomer@example.com", NEW_PASSWORD).status_code == 302


def test_invitation_with_a_tampered_token_is_refused(client, invitation):
    user, token = invitation
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = client.post(f"/invitations/{tampered}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 400
    assert b"This invitation link is not valid." in response.data
    assert db.session.get(User, user.id).password_hash is None


def test_inviting_an_existing_user_gives_no_link_that_could_reset_their_password(make_member, client):
    """Org A's admin invites a member of org B: A gets the membership, never a way into B's account."""
    victim = make_member(Role.ADMIN, org=OrganizationFactory())
    original_hash = victim.password_hash
    attacker_org = OrganizationFactory()

    user, token = accounts.invite_member(attacker_org, SYSTEM, victim.email, Role.VIEWER)

    assert user.id == victim.id and token is None
    old_style = accounts.invitation_token(victim)  # a link issued before this rule: refused too
    response = client.post(f"/invitations/{old_style}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 400
    assert db.session.get(User, victim.id).password_hash == original_hash


def test_a_second_organisation_inviting_a_pending_newcomer_gets_no_link(make_member):
    first, second = OrganizationFactory(), OrganizationFactory()
    _, first_token = accounts.invite_member(first, SYSTEM, "newcomer@example.com", Role.EDITOR)

    _, second_token = accounts.invite_member(second, SYSTEM, "newcomer@example.com", Role.EDITOR)

    assert first_token is not None and second_token is None


# --- switching organisation ------------------------------------------------------------


@pytest.fixture
def two_org_user(make_member, login_as) -> tuple[User, Organization, Organization]:
    first = OrganizationFactory(name="Alpha Works")
    second = OrganizationFactory(name="Beta Labs")
    user = make_member(Role.VIEWER, org=first)
    db.session.add(Membership(user=user, organization=second, role=Role.EDITOR.value))
    db.session.commit()
    login_as(user, first)
    return user, first, second


def _selected_org(html: str) -> str:
    return re.search(r'<option value="\d+" selected>([^<]+)</option>', html).group(1)


def test_switcher_lists_every_org_of_the_user(client, two_org_user):
    html = client.get("/").text
    assert 'id="org-switcher"' in html
    assert "Alpha Works" in html and "Beta Labs" in html
    assert _selected_org(html) == "Alpha Works"


def test_switch_org_changes_the_current_org(client, two_org_user):
    _, _, second = two_org_user
    response = client.post("/switch-org", data={"org_id": second.id})
    assert response.status_code == 302
    html = client.get("/").text
    assert _selected_org(html) == "Beta Labs"
    assert "Editor" in html  # the role shown is the one held in Beta Labs


@pytest.mark.parametrize("membership", ["none", "deactivated"])
def test_switch_org_to_an_org_without_active_membership_is_not_found(client, two_org_user, membership):
    user, _, _ = two_org_user
    other = OrganizationFactory(name="Gamma Corp")
    if membership == "deactivated":
        db.session.add(Membership(user=user, organization=other, role=Role.ADMIN.value, is_active=False))
        db.session.commit()
    response = client.post("/switch-org", data={"org_id": other.id})
    assert response.status_code == 404
    assert _selected_org(client.get("/").text) == "Alpha Works"
