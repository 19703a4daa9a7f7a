"""The dashboard: record counts of the current organisation, recent jobs, queue and worker health."""

from __future__ import annotations

import re

import pytest
from rq import Worker

from app.extensions import redis_store
from app.models import Role
from app.services import jobs
from app.services.audit import Actor
from tests.factories import (
    AssignmentFactory,
    ClientFactory,
    CommentFactory,
    PersonFactory,
    ProjectFactory,
    TaskFactory,
    TimeEntryFactory,
)
from tests.jobs_for_tests import UNREACHABLE_REDIS_URL, app_with_redis
from workers import QUEUE_NAMES


@pytest.fixture
def admin(make_member):
    return make_member(Role.ADMIN)


@pytest.fixture
def org(admin):
    return admin.memberships[0].organization


def counts_on(page: str) -> dict[str, int]:
    return {slug: int(n) for slug, n in re.findall(r'data-testid="count-(\w+)">(\d+)<', page)}


def queue_rows(page: str) -> dict[str, tuple[int, int, int]]:
    """Queue name -> (queued, running, failed) from the queue health table."""
    cells = r'<td class="text-end">(\d+)</td>' * 3
    return {m[0]: tuple(int(n) for n in m[1:]) for m in re.findall(rf"<tr><td>(\w+)</td>{cells}</tr>", page)}


def test_dashboard_counts_records_of_current_org_only(client, login_as, admin, org, make_member):
    people = PersonFactory.create_batch(3, organization=org)
    ClientFactory.create_batch(2, organization=org)
    project = ProjectFactory(organization=org)
    tasks = TaskFactory.create_batch(2, organization=org, project_id=project.id)
    AssignmentFactory(organization=org, person_id=people[0].id, project_id=project.id)
    TimeEntryFactory(organization=org, person_id=people[1].id, project_id=project.id)
    CommentFactory(organization=org, task_id=tasks[0].id)
    other = make_member(Role.ADMIN).memberships[0].organization
    PersonFactory.create_batch(4, organization=other)
    CommentFactory(organization=other)  # brings its own project and task
    TimeEntryFactory(organization=other)
    login_as(admin)

    response = client.get("/")

    assert response.status_code == 200
    assert counts_on(response.get_data(as_text=True)) == {
        "people": 3, "clients": 2, "projects": 1, "tasks": 2, "assignments": 1, "time_entries": 1, "comments": 1,
    }


def test_dashboard_counts_are_zero_for_empty_org(client, login_as, admin, make_member):
    PersonFactory.create_batch(2, organization=make_member(Role.ADMIN).memberships[0].organization)
    login_as(admin)

    response = client.get("/")

    counts = counts_on(response.get_data(as_text=True))
    assert len(counts) == 7
    assert set(counts.values()) == {0}


def test_dashboard_without_jobs_shows_empty_state(client, login_as, admin):
    login_as(admin)

    response = client.get("/")

    assert response.status_code == 200
    assert b"No jobs yet" in response.data
    assert b'data-testid="jobs"' not in response.data


def test_dashboard_lists_recent_jobs_of_current_org(client, login_as, admin, org, make_member):
    login_as(admin)
    mine = jobs.start_job(org, Actor(user=admin), "audit_retention", {"days": 30}).id
    outsider = make_member(Role.ADMIN)
    theirs = jobs.start_job(outsider.memberships[0].organization, Actor(user=outsider), "audit_retention",
                            {"days": 30}).id

    response = client.get("/")

    page = response.get_data(as_text=True)
    assert "No jobs yet" not in page
    assert f'href="/jobs/{mine}"' in page
    assert f'href="/jobs/{theirs}"' not in page
    assert "Audit log retention" in page


def test_dashboard_queue_table_counts_waiting_jobs(client, login_as, admin, org):
    login_as(admin)
    for _ in range(2):
        jobs.start_job(org, Actor(user=admin), "audit_retention", {"days": 30})

    response = client.get("/")

    rows = queue_rows(response.get_data(as_text=True))
    assert list(rows) == list(QUEUE_NAMES)
    assert rows["default"] == (2, 0, 0)
    assert all(rows[name] == (0, 0, 0) for name in QUEUE_NAMES if name != "default")


def test_dashboard_says_no_worker_running(client, login_as, admin):
    login_as(admin)

    response = client.get("/")

    assert re.search(rb'data-testid="workers">No worker running<', response.data)
    assert b"Redis is unreachable" not in response.data


def test_dashboard_counts_live_workers(client, login_as, admin):
    login_as(admin)
    worker = Worker([jobs.queue("default")], connection=redis_store.client)
    worker.register_birth()
    try:
        response = client.get("/")
    finally:
        worker.register_death()

    assert re.search(rb'data-testid="workers">1 worker alive<', response.data)


def test_dashboard_renders_with_redis_unreachable(app, admin):
    user_id, org_id = admin.id, admin.memberships[0].organization_id
    offline = app_with_redis(app, UNREACHABLE_REDIS_URL)
    client = offline.test_client()
    with client.session_transaction() as session:
        session.update({"_user_id": str(user_id), "_fresh": True, "org_id": org_id})

    response = client.get("/")

    assert response.status_code == 200
    assert b"Redis is unreachable" in response.data
    assert b"No worker running" not in response.data
    assert len(counts_on(response.get_data(as_text=True))) == 7
