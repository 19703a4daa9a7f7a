"""Business rules of the record services, called directly (no HTTP).

The cross-organisation, choice and external-id rules are generated from each service's
``FieldSpec`` declarations, so a new related field or enum is covered without a new test.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.models import AuditEvent, Organization, Person
from app.services import people, projects, work
from app.services.audit import SYSTEM
from app.services.entities import ENTITIES
from tests.factories import OrganizationFactory, PersonFactory, ProjectFactory, TaskFactory
from tests.integration.contracts import CONTRACTS, make_related


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory()


def refused(service, org, values, field: str, instance=None) -> list[str]:
    """The messages ``field`` earns when ``values`` are saved (a create, or an update of ``instance``)."""
    with pytest.raises(ValidationFailed) as exc:
        if instance is None:
            service.create(org, SYSTEM, values)
        else:
            service.update(org, SYSTEM, instance, values)
    assert field in exc.value.errors, exc.value.errors
    return exc.value.errors[field]


def person(org: Organization, email: str = "ada@example.com", **values) -> Person:
    return people.service.create(org, SYSTEM, {"email": email, "name": "Ada Lovelace", **values})


# --- people --------------------------------------------------------------------------------


def test_person_email_is_stored_lower_case(org):
    assert person(org, "Ada.Lovelace@Example.COM").email == "ada.lovelace@example.com"


@pytest.mark.parametrize("email", ["ada@example.com", "ADA@Example.com"])
def test_person_email_is_unique_per_org(org, email):
    person(org)
    assert refused(people.service, org, {"email": email, "name": "Another Ada"}, "email")


def test_person_email_may_repeat_in_another_org(org):
    person(org)
    other = person(OrganizationFactory(), "ADA@example.com")
    assert other.email == "ada@example.com"
    assert db.session.scalar(select(func.count(Person.id)).where(Person.email == "ada@example.com")) == 2


def test_person_cannot_be_their_own_manager(org):
    ada = person(org)
    messages = refused(people.service, org, {"manager_id": ada.id}, "manager_id", instance=ada)
    assert messages == ["A person cannot be their own manager."]


# --- related records must be in the same organisation ---------------------------------------

RELATED_FIELDS = [
    (slug, name, spec.related)
    for slug, service in ENTITIES.items()
    for name, spec in service.fields.items()
    if spec.related is not None
]


@pytest.mark.parametrize("slug,field,related", RELATED_FIELDS, ids=[f"{s}.{f}" for s, f, _ in RELATED_FIELDS])
def test_related_record_of_another_org_is_refused(org, slug, field, related):
    contract = CONTRACTS[slug]
    foreign = make_related(related)  # in a new organisation
    values = {**contract.values(org), field: foreign.id}
    messages = refused(contract.service, org, values, field)
    assert f"No such {related.__name__.lower()} in this organisation." in messages
    assert contract.find(org, values) is None


@pytest.mark.parametrize("slug,field,related", RELATED_FIELDS, ids=[f"{s}.{f}" for s, f, _ in RELATED_FIELDS])
def test_related_record_of_another_org_is_refused_on_update(org, slug, field, related):
    contract = CONTRACTS[slug]
    record = contract.service.create(org, SYSTEM, contract.values(org))
    messages = refused(contract.service, org, {field: make_related(related).id}, field, instance=record)
    assert f"No such {related.__name__.lower()} in this organisation." in messages


@pytest.mark.parametrize("bad_id", [0, -1, 2**31, 10**20])
@pytest.mark.parametrize("slug,field,related", RELATED_FIELDS, ids=[f"{s}.{f}" for s, f, _ in RELATED_FIELDS])
def test_related_id_that_cannot_exist_is_refused(org, slug, field, related, bad_id):
    contract = CONTRACTS[slug]
    messages = refused(contract.service, org, {**contract.values(org), field: bad_id}, field)
    assert f"No such {related.__name__.lower()} in this organisation." in messages


@pytest.mark.parametrize("record_id", [0, 2**31, 10**20])
@pytest.mark.parametrize("slug", list(CONTRACTS))
def test_get_with_an_id_that_cannot_exist_is_not_found(org, slug, record_id):
    with pytest.raises(NotFound):
        CONTRACTS[slug].service.get(org, record_id)


def test_text_with_a_nul_character_is_refused(org):
    messages = refused(people.service, org, {"email": "ada@example.com", "name": "Ada\x00"}, "name")
    assert messages == ["Contains a NUL character, which cannot be stored; remove it."]


# --- projects -------------------------------------------------------------------------------


def project_values(org: Organization, **overrides) -> dict:
    return {"code": "web-1", "name": "Website", "status": "active", "priority": "high", **overrides}


def test_project_code_is_stored_upper_case(org):
    assert projects.service.create(org, SYSTEM, project_values(org)).code == "WEB-1"


@pytest.mark.parametrize("code", ["WEB-1", "web-1", "Web-1"])
def test_project_code_is_unique_per_org(org, code):
    projects.service.create(org, SYSTEM, project_values(org))
    assert refused(projects.service, org, project_values(org, code=code), "code")


def test_project_code_may_repeat_in_another_org(org):
    projects.service.create(org, SYSTEM, project_values(org))
    assert projects.service.create(OrganizationFactory(), SYSTEM, project_values(org)).code == "WEB-1"


@pytest.mark.parametrize("code", ["WEB 1", "WEB\t1", "W E B"])
def test_project_code_has_no_spaces(org, code):
    messages = refused(projects.service, org, project_values(org, code=code), "code")
    assert messages == ["A project code has no spaces, such as WEB-2026."]


@pytest.mark.parametrize("slug", ["projects", "assignments"])
def test_end_date_before_start_date_is_refused(org, slug):
    contract = CONTRACTS[slug]
    values = {**contract.values(org), "start_date": date(2026, 3, 1), "end_date": date(2026, 2, 28)}
    messages = refused(contract.service, org, values, "end_date")
    assert messages == ["The end date must be on or after the start date (2026-03-01)."]


@pytest.mark.parametrize("slug", ["projects", "assignments"])
def test_end_date_on_the_start_date_is_accepted(org, slug):
    contract = CONTRACTS[slug]
    values = {**contract.values(org), "start_date": date(2026, 3, 1), "end_date": date(2026, 3, 1)}
    assert contract.service.create(org, SYSTEM, values).end_date == date(2026, 3, 1)


# --- time entries and assignments -----------------------------------------------------------


@pytest.mark.parametrize(
    "hours,message",
    [("24.01", "Must be at most 24."), ("25", "Must be at most 24."), ("0", "Must be at least 0.01."),
     ("-1", "Must be at least 0.01.")],
)
def test_time_entry_hours_outside_a_day_are_refused(org, hours, message):
    values = {**CONTRACTS["time_entries"].values(org), "hours": Decimal(hours)}
    assert refused(work.time_entries, org, values, "hours") == [message]


def test_time_entry_of_a_full_day_is_accepted(org):
    values = {**CONTRACTS["time_entries"].values(org), "hours": Decimal(24)}
    assert work.time_entries.create(org, SYSTEM, values).hours == Decimal(24)


@pytest.mark.parametrize("slug", ["assignments", "time_entries"])
def test_task_of_another_project_is_refused(org, slug):
    contract = CONTRACTS[slug]
    other_task = TaskFactory(organization=org, project_id=ProjectFactory(organization=org).id)
    values = {**contract.values(org), "task_id": other_task.id}
    messages = refused(contract.service, org, values, "task_id")
    assert messages == ["This task belongs to another project; pick a task of the chosen project."]


# --- choices and external ids ---------------------------------------------------------------

CHOICE_FIELDS = [
    (slug, name, spec.choices)
    for slug, service in ENTITIES.items()
    for name, spec in service.fields.items()
    if spec.choices is not None
]


@pytest.mark.parametrize("slug,field,choices", CHOICE_FIELDS, ids=[f"{s}.{f}" for s, f, _ in CHOICE_FIELDS])
def test_value_outside_the_choices_is_refused_naming_the_allowed_ones(org, slug, field, choices):
    contract = CONTRACTS[slug]
    messages = refused(contract.service, org, {**contract.values(org), field: "urgent-ish"}, field)
    assert messages == [f"Must be one of: {', '.join(choices)}."]
    assert all(choice in messages[0] for choice in choices)


@pytest.mark.parametrize("slug", list(CONTRACTS))
def test_external_id_is_unique_per_org(org, slug):
    contract = CONTRACTS[slug]
    contract.make(org, external_id="EXT-42")
    messages = refused(contract.service, org, {**contract.values(org), "external_id": "EXT-42"}, "external_id")
    assert messages == ["Another record already uses 'EXT-42'."]


@pytest.mark.parametrize("slug", list(CONTRACTS))
def test_external_id_may_repeat_in_another_org(org, slug):
    contract = CONTRACTS[slug]
    contract.make(OrganizationFactory(), external_id="EXT-42")
    record = contract.service.create(org, SYSTEM, {**contract.values(org), "external_id": "EXT-42"})
    assert record.external_id == "EXT-42"


@pytest.mark.parametrize("slug", list(CONTRACTS))
def test_update_keeping_its_own_external_id_is_accepted(org, slug):
    contract = CONTRACTS[slug]
    values = contract.values(org)
    record = contract.service.create(org, SYSTEM, values)
    contract.service.update(org, SYSTEM, record, dict(values))
    assert record.external_id == values["external_id"]


# --- update auditing, conflicts, error collection --------------------------------------------


def updated_events(org: Organization) -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.organization_id == org.id, AuditEvent.action == "people.updated")
    ))


def test_update_audits_only_the_changed_fields(org):
    ada = person(org, title="Analyst", hourly_rate=Decimal("120.00"))
    people.service.update(org, SYSTEM, ada, {"email": "ADA@example.com", "name": "Ada King", "title": "Analyst",
                                             "hourly_rate": Decimal("120")})
    [event] = updated_events(org)
    assert event.details == {"changes": {"name": ["Ada Lovelace", "Ada King"]}}


def test_update_without_changes_writes_no_audit_event(org):
    ada = person(org)
    people.service.update(org, SYSTEM, ada, {"email": "ada@example.com", "name": "Ada Lovelace"})
    assert updated_events(org) == []


def test_duplicate_that_slips_past_validation_surfaces_as_conflict(org):
    # A concurrent writer's row that validation could not see yet: pending in the session, not flushed.
    db.session.add(Person(organization_id=org.id, email="race@example.com", name="The other writer"))
    with db.session.no_autoflush, pytest.raises(Conflict) as exc:
        people.service.create(org, SYSTEM, {"email": "race@example.com", "name": "Me"})
    assert "conflicts with another record" in exc.value.message
    assert db.session.scalar(select(func.count(Person.id)).where(Person.email == "race@example.com")) == 0
    assert db.session.scalar(select(func.count(AuditEvent.id))) == 0


def test_validation_reports_every_broken_field_at_once(org):
    with pytest.raises(ValidationFailed) as exc:
        people.service.create(org, SYSTEM, {
            "email": "", "name": None, "hourly_rate": Decimal(-1), "weekly_capacity": Decimal(169),
            "manager_id": PersonFactory().id,
        })
    errors = exc.value.errors
    assert set(errors) == {"email", "name", "hourly_rate", "weekly_capacity", "manager_id"}
    assert errors["email"] == ["This field is required."]
    assert errors["weekly_capacity"] == ["Must be at most 168."]
