"""The audit trail: what writes events, the audit page's filters and tenancy, and the retention job."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, BackgroundJob, Membership, Organization, Person, Role, User, utcnow
from tests.factories import AuditEventFactory, OrganizationFactory, PersonFactory


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory(name="Acme")


@pytest.fixture
def admin(org, make_member, login_as) -> User:
    return login_as(make_member(Role.ADMIN, org=org, email="admin@example.com"))


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def shown_labels(html: str) -> set[str]:
    """The object labels in the events table (each event below carries a unique one)."""
    return set(re.findall(r'<div class="small text-muted">(label-[a-z]+)</div>', html))


# --- what writes events ----------------------------------------------------------------


def _membership(org: Organization, email: str) -> Membership:
    return db.session.scalars(
        select(Membership).join(User).where(Membership.organization_id == org.id, User.email == email)
    ).one()


MEMBER_ACTIONS = {
    "member.added": lambda client, org: client.post(
        "/members/", data={"email": "new@example.com", "role": "editor", "method": "invite"}
    ),
    "member.role_changed": lambda client, org: client.post(
        f"/members/{_membership(org, 'member@example.com').id}/role", data={"role": "operator"}
    ),
    "member.deactivated": lambda client, org: client.post(
        f"/members/{_membership(org, 'member@example.com').id}/deactivate"
    ),
}


@pytest.mark.parametrize("action", list(MEMBER_ACTIONS))
def test_audit_member_actions_write_an_event(client, org, admin, make_member, action):
    make_member(Role.VIEWER, org=org, email="member@example.com")
    MEMBER_ACTIONS[action](client, org)
    [event] = events(action)
    assert (event.organization_id, event.actor_id, event.actor_label) == (org.id, admin.id, "admin@example.com")
    assert event.object_type == "User"
    assert event.ip_address == "127.0.0.1"


def test_audit_reactivating_a_member_writes_an_event(client, org, admin, make_member):
    member = make_member(Role.VIEWER, org=org, email="member@example.com")
    membership = _membership(org, member.email)
    client.post(f"/members/{membership.id}/deactivate")
    client.post(f"/members/{membership.id}/activate")
    [event] = events("member.activated")
    assert (event.object_id, event.actor_id) == (str(member.id), admin.id)


def test_audit_person_created(client, org, admin):
    client.post("/people/new", data={"email": "grace@example.com", "name": "Grace Hopper", "active": "y"})
    person = db.session.scalars(select(Person)).one()
    [event] = events("people.created")
    assert (event.object_type, event.object_id, event.actor_id) == ("Person", str(person.id), admin.id)


def test_audit_person_updated_lists_the_changed_fields(client, org, admin):
    person = PersonFactory(organization=org, name="Grace", email="grace@example.com", department="Navy")
    response = client.post(
        f"/people/{person.id}/edit",
        data={"email": "grace@example.com", "name": "Grace Hopper", "department": "Navy", "active": "y"},
    )
    assert response.status_code == 302
    [event] = events("people.updated")
    assert event.details == {"changes": {"name": ["Grace", "Grace Hopper"]}}
    assert event.object_id == str(person.id)


def test_audit_person_update_without_changes_writes_nothing(client, org, admin):
    person = PersonFactory(organization=org, name="Grace", email="grace@example.com", department="Navy")
    client.post(f"/people/{person.id}/edit",
                data={"email": "grace@example.com", "name": "Grace", "department": "Navy", "active": "y"})
    assert events("people.updated") == []


def test_audit_person_deleted_keeps_the_label(client, org, admin):
    person = PersonFactory(organization=org, name="Grace", email="grace@example.com")
    person_id, label = person.id, str(person)
    client.post(f"/people/{person_id}/delete")
    assert db.session.get(Person, person_id) is None
    [event] = events("people.deleted")
    assert (event.object_id, event.object_label) == (str(person_id), label)


# --- the audit page --------------------------------------------------------------------


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


@pytest.fixture
def logged(org, admin) -> None:
    """Three events in ``org`` with distinct actors, actions, objects and days, and one in another org."""
    rows = [
        ("ada@example.com", "people.created", "Person", "label-one", "2026-01-10"),
        ("bob@example.com", "people.deleted", "Person", "label-two", "2026-02-15"),
        ("ada@example.com", "clients.created", "Client", "label-three", "2026-03-20"),
    ]
    for actor, action, object_type, label, day in rows:
        AuditEventFactory(organization_id=org.id, actor_label=actor, action=action, object_type=object_type,
                          object_id="7", object_label=label, created_at=_at(day))
    AuditEventFactory(actor_label="ada@example.com", action="people.created", object_type="Person",
                      object_label="label-foreign", created_at=_at("2026-02-15"))


@pytest.mark.parametrize(
    ("query", "labels"),
    [
        ("", {"label-one", "label-two", "label-three"}),
        ("actor=ada", {"label-one", "label-three"}),
        ("actor=BOB%40example", {"label-two"}),
        ("action=people", {"label-one", "label-two"}),
        ("action=people.deleted", {"label-two"}),
        ("object=client", {"label-three"}),
        ("object=Person&actor=ada", {"label-one"}),
        ("from=2026-02-01", {"label-two", "label-three"}),
        ("to=2026-02-15", {"label-one", "label-two"}),
        ("from=2026-02-15&to=2026-02-15", {"label-two"}),
        ("from=2026-04-01", set()),
        ("from=not-a-date", {"label-one", "label-two", "label-three"}),
    ],
)
def test_audit_page_filters(client, logged, query, labels):
    response = client.get(f"/audit/?{query}")
    assert response.status_code == 200
    assert shown_labels(response.text) == labels


def test_audit_page_never_shows_another_orgs_events(client, logged):
    html = client.get("/audit/?action=people.created&actor=ada").text
    assert "label-foreign" not in html
    assert shown_labels(html) == {"label-one"}


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR, Role.OPERATOR])
def test_audit_page_is_for_admins_only(client, make_member, login_as, role):
    login_as(make_member(role))
    assert client.get("/audit/").status_code == 403
    assert client.post("/audit/retention", data={"days": 90}).status_code == 403
    assert db.session.scalars(select(BackgroundJob)).all() == []


# --- retention -------------------------------------------------------------------------


def test_audit_retention_starts_a_queued_job(client, org, admin):
    response = client.post("/audit/retention", data={"days": 90})
    job = db.session.scalars(select(BackgroundJob)).one()
    assert response.status_code == 302
    assert response.headers["Location"] == f"/jobs/{job.id}"
    assert (job.kind, job.status, job.params) == ("audit_retention", "queued", {"days": 90})
    assert job.organization_id == org.id


def test_audit_retention_job_deletes_only_old_events_of_the_org(client, org, admin, rq_burst):
    now = utcnow()
    old = AuditEventFactory(organization_id=org.id, created_at=now - timedelta(days=91)).id
    recent = AuditEventFactory(organization_id=org.id, created_at=now - timedelta(days=89)).id
    foreign_old = AuditEventFactory(created_at=now - timedelta(days=400)).id
    client.post("/audit/retention", data={"days": 90})

    rq_burst()

    db.session.expire_all()
    job = db.session.scalars(select(BackgroundJob)).one()
    assert job.status == "completed", job.error
    assert job.result == {"deleted": 1}
    assert db.session.get(AuditEvent, old) is None
    assert db.session.get(AuditEvent, recent) is not None
    assert db.session.get(AuditEvent, foreign_old) is not None
    [purged] = events("audit.purged")
    assert purged.details == {"days": 90, "deleted": 1}


@pytest.mark.parametrize(
    ("days", "message"),
    [("29", "Keep at least 30 and at most 3650 days"), ("3651", "Keep at least 30 and at most 3650 days"),
     ("0", "Enter a number of days."), ("soon", "Enter a number of days.")],
)
def test_audit_retention_refuses_out_of_range_days(client, org, admin, days, message):
    response = client.post("/audit/retention", data={"days": days}, follow_redirects=True)
    assert response.request.path == "/audit/"
    assert message in response.text
    assert db.session.scalars(select(BackgroundJob)).all() == []
