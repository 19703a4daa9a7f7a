"""The members page: add or invite, change roles, deactivate and reactivate, with the last-admin rules."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.errors import Conflict
from app.extensions import db
from app.models import AuditEvent, Membership, Organization, Role, User
from app.services import accounts
from app.services.audit import SYSTEM
from tests.factories import PASSWORD, OrganizationFactory

NEW_PASSWORD = "a brand new passphrase"
LAST_ADMIN = "An organisation needs at least one active admin"


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD):
    return client.post("/login", data={"email": email, "password": password})


def membership_of(user: User, org: Organization) -> Membership:
    return db.session.scalars(
        select(Membership).where(Membership.user_id == user.id, Membership.organization_id == org.id)
    ).one()


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory(name="Acme")


@pytest.fixture
def admin(org, make_member, login_as) -> User:
    """The signed-in admin of ``org``."""
    return login_as(make_member(Role.ADMIN, org=org, email="admin@example.com"))


@pytest.fixture
def member(org, make_member) -> User:
    return make_member(Role.VIEWER, org=org, email="member@example.com")


# --- adding ----------------------------------------------------------------------------


def test_members_add_with_password_lets_the_user_sign_in(client, org, admin, other_client):
    response = client.post(
        "/members/",
        data={"email": "Grace@Example.com", "name": "Grace", "role": "editor", "method": "password",
              "password": NEW_PASSWORD},
    )
    assert response.status_code == 302
    user = db.session.scalars(select(User).where(User.email == "grace@example.com")).one()
    assert membership_of(user, org).role == "editor"
    assert sign_in(other_client, "grace@example.com", NEW_PASSWORD).status_code == 302


def test_members_invite_shows_the_link_once(client, org, admin, other_client):
    response = client.post("/members/", data={"email": "lin@example.com", "role": "operator", "method": "invite"})
    assert response.status_code == 200
    assert 'data-testid="invitation-url"' in response.text
    url = response.text.split('data-testid="invitation-url"')[0].rsplit('value="', 1)[1].split('"', 1)[0]
    assert "/invitations/" in url
    user = db.session.scalars(select(User).where(User.email == "lin@example.com")).one()
    assert user.password_hash is None
    assert membership_of(user, org).role == "operator"
    assert "/invitations/" not in client.get("/members/").text
    assert other_client.get(url).status_code == 200


def test_members_invite_of_an_existing_account_adds_them_without_a_link(client, org, admin, make_member):
    existing = make_member(Role.VIEWER, org=OrganizationFactory())

    response = client.post("/members/", data={"email": existing.email, "role": "editor", "method": "invite"},
                           follow_redirects=True)

    assert response.status_code == 200
    assert "already has an Interchange account" in response.text
    assert 'data-testid="invitation-url"' not in response.text
    assert membership_of(existing, org).role == "editor"


@pytest.mark.parametrize(
    ("method", "message"),
    [("invite", "member@example.com is already a member of Acme."),
     ("password", "This user already exists; they keep their own password.")],
)
def test_members_add_duplicate_email_shows_an_inline_error(client, admin, member, method, message):
    response = client.post(
        "/members/",
        data={"email": "MEMBER@example.com", "role": "editor", "method": method, "password": NEW_PASSWORD},
    )
    assert response.status_code == 422
    assert f'class="invalid-feedback">{message}</div>' in response.text
    assert db.session.scalar(select(func.count(Membership.id)).where(Membership.user_id == member.id)) == 1
    assert db.session.get(User, member.id).memberships[0].role == "viewer"


def test_members_add_password_method_needs_a_password(client, admin):
    response = client.post("/members/", data={"email": "x@example.com", "role": "viewer", "method": "password"})
    assert response.status_code == 422
    assert "Enter a password, or choose an invitation link." in response.text
    assert db.session.scalar(select(User).where(User.email == "x@example.com")) is None


# --- roles -----------------------------------------------------------------------------


def test_members_change_role_records_from_and_to(client, org, admin, member):
    membership = membership_of(member, org)
    response = client.post(f"/members/{membership.id}/role", data={"role": "operator"})
    assert response.status_code == 302
    assert db.session.get(Membership, membership.id).role == "operator"
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "member.role_changed")).one()
    assert event.details == {"from": "viewer", "to": "operator"}
    assert (event.actor_id, event.object_id, event.organization_id) == (admin.id, str(member.id), org.id)


def test_members_cannot_demote_the_last_active_admin(client, org, admin, member):
    membership = membership_of(admin, org)
    response = client.post(f"/members/{membership.id}/role", data={"role": "editor"}, follow_redirects=True)
    assert LAST_ADMIN in response.text
    assert db.session.get(Membership, membership.id).role == "admin"


def test_members_cannot_deactivate_the_last_active_admin(org, admin):
    # Through the page the last admin is always the one acting (see the next test); the CLI acts as nobody.
    membership = membership_of(admin, org)
    with pytest.raises(Conflict, match=LAST_ADMIN):
        accounts.set_member_active(org, SYSTEM, membership.id, False)
    assert db.session.get(Membership, membership.id).is_active is True


def test_members_cannot_deactivate_yourself(client, org, admin, make_member):
    make_member(Role.ADMIN, org=org)  # another admin, so the last-admin rule is not what stops it
    membership = membership_of(admin, org)
    response = client.post(f"/members/{membership.id}/deactivate", follow_redirects=True)
    assert "You cannot deactivate yourself." in response.text
    assert db.session.get(Membership, membership.id).is_active is True


def test_members_change_role_of_another_org_member_is_not_found(client, admin, make_member):
    stranger = make_member(Role.VIEWER)
    response = client.post(f"/members/{stranger.memberships[0].id}/role", data={"role": "admin"})
    assert response.status_code == 404
    assert db.session.get(User, stranger.id).memberships[0].role == "viewer"


# --- deactivating ----------------------------------------------------------------------


def test_members_deactivated_member_cannot_sign_in_to_that_org(client, org, admin, make_member, other_client):
    elsewhere = OrganizationFactory(name="Elsewhere Ltd")
    user = make_member(Role.EDITOR, org=org, email="both@example.com")
    db.session.add(Membership(user=user, organization=elsewhere, role=Role.VIEWER.value))
    db.session.commit()
    assert client.post(f"/members/{membership_of(user, org).id}/deactivate").status_code == 302

    assert sign_in(other_client, "both@example.com").status_code == 302
    assert 'data-testid="current-org">Elsewhere Ltd<' in other_client.get("/").text
    assert other_client.post("/switch-org", data={"org_id": org.id}).status_code == 404


def test_members_deactivated_member_loses_access_at_once(client, org, admin, member, other_client):
    assert sign_in(other_client, member.email).status_code == 302
    assert other_client.get("/").status_code == 200

    client.post(f"/members/{membership_of(member, org).id}/deactivate")

    response = other_client.get("/")
    assert response.status_code == 403
    assert "You are not an active member of any organisation" in response.text
    assert 'action="/logout"' in response.text  # the page offers the way out
    assert other_client.get("/people/").status_code == 403


def test_members_reactivate_restores_access(client, org, admin, member, other_client):
    membership = membership_of(member, org)
    client.post(f"/members/{membership.id}/deactivate")
    response = client.post(f"/members/{membership.id}/activate", follow_redirects=True)
    assert "member@example.com is active." in response.text
    assert db.session.get(Membership, membership.id).is_active is True
    actions = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.like("member.%")).order_by(AuditEvent.id)
    ).all()
    assert actions[-2:] == ["member.deactivated", "member.activated"]
    assert sign_in(other_client, member.email).status_code == 302
