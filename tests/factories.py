"""factory_boy factories for every model; tenant rows take an ``organization`` (a new one by default)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import factory
from factory.alchemy import SQLAlchemyModelFactory

from app.extensions import db
from app.models import (
    Assignment,
    AuditEvent,
    Client,
    Comment,
    Organization,
    Person,
    Project,
    Task,
    TimeEntry,
    User,
)
from app.security.passwords import hash_password

PASSWORD = "correct horse battery staple"


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "commit"


class OrganizationFactory(BaseFactory):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.Sequence(lambda n: f"Organisation {n}")


class UserFactory(BaseFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")
    password_hash = factory.LazyFunction(lambda: hash_password(PASSWORD))
    is_active = True


class OrgScopedFactory(BaseFactory):
    class Meta:
        abstract = True

    organization = factory.SubFactory(OrganizationFactory)
    organization_id = factory.LazyAttribute(lambda o: o.organization.id)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        kwargs.pop("organization", None)
        return super()._create(model_class, *args, **kwargs)


class PersonFactory(OrgScopedFactory):
    class Meta:
        model = Person

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    name = factory.Sequence(lambda n: f"Person {n}")
    department = "Engineering"
    skills = factory.LazyFunction(list)
    active = True


class ClientFactory(OrgScopedFactory):
    class Meta:
        model = Client

    name = factory.Sequence(lambda n: f"Client {n}")


class ProjectFactory(OrgScopedFactory):
    class Meta:
        model = Project

    code = factory.Sequence(lambda n: f"PRJ-{n}")
    name = factory.Sequence(lambda n: f"Project {n}")
    status = "active"
    priority = "medium"


class TaskFactory(OrgScopedFactory):
    class Meta:
        model = Task

    project_id = factory.LazyAttribute(lambda o: ProjectFactory(organization=o.organization).id)
    title = factory.Sequence(lambda n: f"Task {n}")
    status = "todo"
    priority = "medium"


class AssignmentFactory(OrgScopedFactory):
    class Meta:
        model = Assignment

    person_id = factory.LazyAttribute(lambda o: PersonFactory(organization=o.organization).id)
    project_id = factory.LazyAttribute(lambda o: ProjectFactory(organization=o.organization).id)
    hours = Decimal("20")
    start_date = date(2026, 1, 5)
    end_date = date(2026, 3, 27)


class TimeEntryFactory(OrgScopedFactory):
    class Meta:
        model = TimeEntry

    person_id = factory.LazyAttribute(lambda o: PersonFactory(organization=o.organization).id)
    project_id = factory.LazyAttribute(lambda o: ProjectFactory(organization=o.organization).id)
    spent_on = date(2026, 2, 3)
    hours = Decimal("7.5")
    billable = True


class CommentFactory(OrgScopedFactory):
    class Meta:
        model = Comment

    task_id = factory.LazyAttribute(lambda o: TaskFactory(organization=o.organization).id)
    body = "Looks good to me."


class AuditEventFactory(BaseFactory):
    class Meta:
        model = AuditEvent

    organization_id = factory.LazyAttribute(lambda o: OrganizationFactory().id)
    actor_label = "system"
    action = "test.event"
    details = factory.LazyFunction(dict)
