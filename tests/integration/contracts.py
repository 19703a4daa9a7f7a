"""Per-entity test contracts: the data a generated test needs about each core record type.

NetBox's ViewTestCases idea without base classes: every entity declares, as data, what a
valid record looks like, what an edit changes, one invalid input and the error it earns,
and which column a search can find. The page tests (test_data_pages.py) and the rule
tests (test_records.py) are parametrised over ``CONTRACTS``, so a new entity gets the
whole suite by adding one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import Client, Organization, Person, Project, Task
from app.services import entities
from app.services.records import RecordService
from tests import factories

# The factory that makes a row of each model that other records point at.
RELATED_FACTORIES: dict[type, type] = {
    Person: factories.PersonFactory,
    Client: factories.ClientFactory,
    Project: factories.ProjectFactory,
    Task: factories.TaskFactory,
}


def make_related(model: type, org: Organization | None = None, **kwargs) -> Any:
    """A row of ``model`` in ``org`` (in a new organisation when ``org`` is None)."""
    if org is not None:
        kwargs["organization"] = org
    return RELATED_FACTORIES[model](**kwargs)


def form_data(values: dict[str, Any]) -> dict[str, str]:
    """Service values as a browser would post them (unchecked boxes are simply absent)."""
    data = {}
    for name, value in values.items():
        if value is False:
            continue
        if value is True:
            data[name] = "y"
        elif value is None:
            data[name] = ""
        elif isinstance(value, list):
            data[name] = ", ".join(value)
        elif isinstance(value, date):
            data[name] = value.isoformat()
        else:
            data[name] = str(value)
    return data


@dataclass(frozen=True)
class EntityContract:
    """What the generated tests need to know about one entity.

    ``values(org)`` returns parsed values the service accepts (creating related rows in
    ``org`` as needed); ``invalid(org)`` returns overrides that make them fail with
    ``invalid_message`` on ``invalid_field``. Every contract sets ``external_id``, which
    is how ``find`` locates the record a test created.
    """

    entity: str
    factory: type
    values: Callable[[Organization], dict[str, Any]]
    update: dict[str, Any]
    invalid: Callable[[Organization], dict[str, Any]]
    invalid_field: str
    invalid_message: str
    search_field: str

    def __str__(self) -> str:  # readable pytest ids
        return self.entity

    @property
    def service(self) -> RecordService:
        return entities.service_for(self.entity)

    @property
    def model(self) -> type:
        return self.service.model

    @property
    def table(self) -> str:
        return self.model.__tablename__

    @property
    def url(self) -> str:
        return "/" + self.entity.replace("_", "-")

    def valid_data(self, org: Organization) -> dict[str, str]:
        return form_data(self.values(org))

    def update_data(self, values: dict[str, Any]) -> dict[str, str]:
        return form_data({**values, **self.update})

    def invalid_data(self, org: Organization) -> dict[str, str]:
        return form_data({**self.values(org), **self.invalid(org)})

    def find(self, org: Organization, values: dict[str, Any]) -> Any:
        model = self.model
        return db.session.scalar(
            select(model).where(model.organization_id == org.id, model.external_id == values["external_id"])
        )

    def make(self, org: Organization, **kwargs) -> Any:
        """A row made by the factory, bypassing the service (for list and filter tests)."""
        return self.factory(organization=org, **kwargs)


def _person_values(org: Organization) -> dict[str, Any]:
    return {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "title": "Analyst",
        "department": "Research",
        "cost_centre": "CC-7",
        "manager_id": make_related(Person, org).id,
        "skills": ["maths", "poetry"],
        "hourly_rate": Decimal("120.00"),
        "weekly_capacity": Decimal("37.50"),
        "active": True,
        "external_id": "ext-person-1",
    }


def _client_values(org: Organization) -> dict[str, Any]:
    return {
        "name": "Acme Ltd",
        "contact_email": "billing@acme.test",
        "phone": "+44 20 7946 0000",
        "website": "https://acme.test",
        "notes": "Pays on time",
        "active": True,
        "external_id": "ext-client-1",
    }


def _project_values(org: Organization) -> dict[str, Any]:
    return {
        "code": "WEB-2026",
        "name": "Website",
        "client_id": make_related(Client, org).id,
        "status": "active",
        "priority": "high",
        "start_date": date(2026, 1, 5),
        "end_date": date(2026, 6, 30),
        "budget": Decimal("50000.00"),
        "description": "New public site",
        "external_id": "ext-project-1",
    }


def _task_values(org: Organization) -> dict[str, Any]:
    return {
        "project_id": make_related(Project, org).id,
        "title": "Design homepage",
        "description": "Wireframes first",
        "status": "in_progress",
        "priority": "high",
        "assignee_id": make_related(Person, org).id,
        "estimate_hours": Decimal("12.50"),
        "due_date": date(2026, 2, 27),
        "external_id": "ext-task-1",
    }


def _project_with_task(org: Organization) -> dict[str, int]:
    project = make_related(Project, org)
    return {"project_id": project.id, "task_id": make_related(Task, org, project_id=project.id).id}


def _assignment_values(org: Organization) -> dict[str, Any]:
    return {
        "person_id": make_related(Person, org).id,
        **_project_with_task(org),
        "hours": Decimal("20.00"),
        "start_date": date(2026, 1, 5),
        "end_date": date(2026, 3, 27),
        "external_id": "ext-assignment-1",
    }


def _time_entry_values(org: Organization) -> dict[str, Any]:
    return {
        "person_id": make_related(Person, org).id,
        **_project_with_task(org),
        "spent_on": date(2026, 2, 3),
        "hours": Decimal("7.50"),
        "billable": True,
        "note": "Kick-off workshop",
        "external_id": "ext-time-1",
    }


def _comment_values(org: Organization) -> dict[str, Any]:
    return {
        "task_id": make_related(Task, org).id,
        "author_id": make_related(Person, org).id,
        "body": "Looks good to me",
        "external_id": "ext-comment-1",
    }


CONTRACTS: dict[str, EntityContract] = {
    c.entity: c
    for c in (
        EntityContract(
            entity="people",
            factory=factories.PersonFactory,
            values=_person_values,
            update={"name": "Ada King", "title": "Countess", "department": "Mathematics"},
            invalid=lambda org: {"email": "not-an-email"},
            invalid_field="email",
            invalid_message="Enter a valid email address, such as ada@example.com.",
            search_field="name",
        ),
        EntityContract(
            entity="clients",
            factory=factories.ClientFactory,
            values=_client_values,
            update={"name": "Acme Group", "phone": "+44 20 7946 0001"},
            invalid=lambda org: {"website": "acme.test"},
            invalid_field="website",
            invalid_message="Start the address with http:// or https://.",
            search_field="name",
        ),
        EntityContract(
            entity="projects",
            factory=factories.ProjectFactory,
            values=_project_values,
            update={"name": "Website relaunch", "status": "on_hold", "end_date": date(2026, 9, 30)},
            invalid=lambda org: {"end_date": date(2025, 12, 31)},
            invalid_field="end_date",
            invalid_message="The end date must be on or after the start date (2026-01-05).",
            search_field="name",
        ),
        EntityContract(
            entity="tasks",
            factory=factories.TaskFactory,
            values=_task_values,
            update={"title": "Design landing page", "status": "done", "due_date": date(2026, 3, 6)},
            invalid=lambda org: {"project_id": make_related(Project).id},
            invalid_field="project_id",
            invalid_message="No such project in this organisation.",
            search_field="title",
        ),
        EntityContract(
            entity="assignments",
            factory=factories.AssignmentFactory,
            values=_assignment_values,
            update={"hours": Decimal("32.00"), "end_date": date(2026, 4, 24)},
            invalid=lambda org: {"task_id": make_related(Task, org).id},
            invalid_field="task_id",
            invalid_message="This task belongs to another project; pick a task of the chosen project.",
            search_field="external_id",
        ),
        EntityContract(
            entity="time_entries",
            factory=factories.TimeEntryFactory,
            values=_time_entry_values,
            update={"hours": Decimal("6.00"), "note": "Kick-off and follow-up"},
            invalid=lambda org: {"hours": Decimal("25")},
            invalid_field="hours",
            invalid_message="Number must be between 0.01 and 24.",
            search_field="note",
        ),
        EntityContract(
            entity="comments",
            factory=factories.CommentFactory,
            values=_comment_values,
            update={"body": "Ship it"},
            invalid=lambda org: {"task_id": make_related(Task).id},
            invalid_field="task_id",
            invalid_message="No such task in this organisation.",
            search_field="body",
        ),
    )
}

ALL = list(CONTRACTS.values())
