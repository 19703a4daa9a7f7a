"""Access rules for every URL, generated from ``app.url_map`` so a new page is covered the day it lands.

Each check walks the rules, collects every failure as "endpoint METHOD: what happened" and asserts
the list is empty. A new page with URL arguments must say which record they name in ``ARGUMENTS``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from app.extensions import db
from app.models import (
    ApiKey,
    Assignment,
    BackgroundJob,
    Client,
    Comment,
    ExportJob,
    ImportJob,
    JobStatus,
    Membership,
    OAuthClient,
    Organization,
    Person,
    Project,
    Role,
    Task,
    TimeEntry,
)
from app.models.orgs import ROLE_ORDER
from app.security import PERMISSION_ROLES
from app.services import api_keys, import_jobs, oauth
from app.services.audit import SYSTEM
from app.services.entities import ENTITIES
from app.services.jobs import JOB_KINDS
from tests.exports_for_tests import finished_export
from tests.factories import (
    AssignmentFactory,
    AuditEventFactory,
    ClientFactory,
    CommentFactory,
    OrganizationFactory,
    PersonFactory,
    ProjectFactory,
    TaskFactory,
    TimeEntryFactory,
)

SKIPPED_ENDPOINTS = {"static", "bootstrap.static"}
GUARDS = ("public", "login_only", "required_permission", "required_scope")
# The REST API has its own walker (tests/integration/api); this one walks the console.
API_PATH = "/api/"
CHECKED_METHODS = ("GET", "POST")
# Enough for the small action forms (the members' role form) to validate, so a POST reaches its record lookup.
POST_BODY = {"role": Role.VIEWER.value}


@dataclass(frozen=True)
class Route:
    endpoint: str
    rule: Rule
    view: Callable

    @property
    def methods(self) -> list[str]:
        return [m for m in CHECKED_METHODS if m in self.rule.methods]

    @property
    def guards(self) -> list[str]:
        return [name for name in GUARDS if getattr(self.view, name, None)]

    @property
    def is_public(self) -> bool:
        return bool(getattr(self.view, "public", False))

    @property
    def permission(self) -> str | None:
        return getattr(self.view, "required_permission", None)


@dataclass
class OrgRecords:
    """One organisation with one record of every kind, all named after ``marker``."""

    org: Organization
    marker: str
    records: dict[type, Any] = field(default_factory=dict)
    job: BackgroundJob | None = None
    membership: Membership | None = None
    api_key: ApiKey | None = None
    oauth_app: OAuthClient | None = None
    import_job: ImportJob | None = None


def _entity_record(route: Route, world: OrgRecords) -> int:
    slug = route.endpoint.removeprefix("data.").rsplit("_", 1)[0]
    if not route.endpoint.startswith("data.") or slug not in ENTITIES:
        pytest.fail(f"{route.endpoint}: 'record_id' outside the data pages; map it in ARGUMENTS in {__name__}")
    return world.records[ENTITIES[slug].model].id


def _export_id(route: Route, world: OrgRecords) -> int:
    """A finished export of the organisation (file on disk), made on first use."""
    if ExportJob not in world.records:
        world.records[ExportJob] = finished_export(world.org)
    return world.records[ExportJob].id


# URL argument name -> the id of the organisation's record it names (or, for ORG_FREE_ARGUMENTS, a valid value).
ARGUMENTS: dict[str, Callable[[Route, OrgRecords], int | str]] = {
    "export_id": _export_id,
    "record_id": _entity_record,
    "job_id": lambda route, world: world.job.id,
    "membership_id": lambda route, world: world.membership.id,
    "key_id": lambda route, world: world.api_key.id,
    "app_id": lambda route, world: world.oauth_app.id,
    "import_id": lambda route, world: world.import_job.id,
    "entity": lambda route, world: "time_entries",
    "fmt": lambda route, world: "csv",  # text, so the page checks can read it
    "org": lambda route, world: world.org.slug,  # public single sign-on URLs (/sso/<org>/...)
}
# Arguments that name no record of any organisation (an import template's entity and format): a URL made only
# of these is the same for every organisation, so the "other organisation's records are 404" check skips it.
ORG_FREE_ARGUMENTS = {"entity", "fmt"}


def _url(app: Flask, route: Route, world: OrgRecords) -> str:
    """The rule's URL with every argument naming ``world``'s record; fails the test for an unmapped argument."""
    values = {}
    for name in sorted(route.rule.arguments):
        if name not in ARGUMENTS:
            pytest.fail(
                f"{route.endpoint}: URL argument {name!r} names no known record; add it to ARGUMENTS in {__name__}"
            )
        values[name] = ARGUMENTS[name](route, world)
    adapter = app.url_map.bind("localhost")
    return adapter.build(route.endpoint, values, method=route.methods[0])


def _request(client: FlaskClient, method: str, url: str):
    return client.post(url, data=POST_BODY) if method == "POST" else client.get(url)


def _status_failures(app: Flask, client: FlaskClient, routes: list[Route], world: OrgRecords, expected: int,
                     methods: tuple[str, ...] = CHECKED_METHODS) -> list[str]:
    """Request each route (URL arguments naming ``world``'s records) and list every status other than ``expected``."""
    failures = []
    for route in routes:
        url = _url(app, route, world)
        for method in (m for m in route.methods if m in methods):
            status = _request(client, method, url).status_code
            if status != expected:
                failures.append(f"{route.endpoint} {method} {url}: {status}")
    return failures


def _report(failures: list[str], what: str) -> str:
    return f"{len(failures)} {what}:\n  " + "\n  ".join(failures)


@pytest.fixture(scope="module")
def all_routes(app: Flask) -> list[Route]:
    found = [
        Route(rule.endpoint, rule, app.view_functions[rule.endpoint])
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in SKIPPED_ENDPOINTS
    ]
    assert found, "the URL map has no rules"
    return found


@pytest.fixture(scope="module")
def routes(all_routes: list[Route]) -> list[Route]:
    return [r for r in all_routes if not r.rule.rule.startswith(API_PATH)]


@pytest.fixture
def guarded(routes: list[Route]) -> list[Route]:
    return [r for r in routes if not r.is_public]


@pytest.fixture
def populate(make_member) -> Callable[[str], OrgRecords]:
    def build(marker: str) -> OrgRecords:
        org = OrganizationFactory(name=f"{marker} Org")
        low = marker.lower()
        person = PersonFactory(organization=org, name=f"{marker} Person", email=f"{low}.person@example.org")
        client = ClientFactory(organization=org, name=f"{marker} Client")
        project = ProjectFactory(organization=org, code=f"{marker.upper()}-1", name=f"{marker} Project",
                                 client_id=client.id)
        task = TaskFactory(organization=org, project_id=project.id, title=f"{marker} Task", assignee_id=person.id)
        world = OrgRecords(org, marker)
        world.records = {
            Person: person,
            Client: client,
            Project: project,
            Task: task,
            Assignment: AssignmentFactory(organization=org, person_id=person.id, project_id=project.id),
            TimeEntry: TimeEntryFactory(organization=org, person_id=person.id, project_id=project.id),
            Comment: CommentFactory(organization=org, task_id=task.id, author_id=person.id, body=f"{marker} comment"),
        }
        member = make_member(Role.EDITOR, org=org, email=f"{low}.member@example.org", name=f"{marker} Member")
        world.membership = member.memberships[0]
        kind, spec = next(iter(JOB_KINDS.items()))
        world.job = BackgroundJob(organization_id=org.id, kind=kind, queue=spec.queue, created_by_id=member.id,
                                  status=JobStatus.COMPLETED.value, params={"days": 30})
        db.session.add(world.job)
        db.session.commit()
        AuditEventFactory(organization_id=org.id, actor_label=f"{low}.auditor@example.org")
        world.api_key, _ = api_keys.create_key(org, SYSTEM, f"{marker} key", ["data.read"])
        world.oauth_app, _ = oauth.register_client(org, SYSTEM, f"{marker} App", True, [f"https://{low}.example/cb"],
                                                   ["data.read"])
        world.import_job = import_jobs.upload(org, member, "people", f"{low} people.csv",
                                              io.BytesIO(f"email,name\n{low}.new@example.org,{marker} New\n".encode()))
        return world

    return build


@pytest.fixture
def alpha(populate) -> OrgRecords:
    return populate("Alpha")


@pytest.fixture
def bravo(populate) -> OrgRecords:
    return populate("Bravo")


@pytest.fixture
def alpha_admin(alpha: OrgRecords, make_member, login_as):
    return login_as(make_member(Role.ADMIN, org=alpha.org, email="alpha.admin@example.org", name="Alpha Admin"))


def test_access_every_view_carries_exactly_one_guard(all_routes):
    failures = [
        f"{r.endpoint} ({r.rule.rule}): guards {r.guards or 'none'}" for r in all_routes if len(r.guards) != 1
    ]
    assert not failures, _report(failures, "views without exactly one guard (@public, @login_only, "
                                           "@require_permission, @require_scope)")


def test_access_console_views_never_use_api_scopes(routes):
    failures = [f"{r.endpoint} ({r.rule.rule})" for r in routes if getattr(r.view, "required_scope", None)]
    assert not failures, _report(failures, "console views guarded by an API scope instead of a permission")


def test_access_anonymous_is_sent_to_sign_in(app, client, guarded, bravo):
    failures = []
    for route in guarded:
        url = _url(app, route, bravo)
        for method in route.methods:
            response = _request(client, method, url)
            location = urlsplit(response.headers.get("Location", "")).path
            if response.status_code != 302 or location != "/login":
                failures.append(f"{route.endpoint} {method} {url}: {response.status_code} to {location or '-'}")
    assert not failures, _report(failures, "guarded URLs not redirecting anonymous users to /login")


def test_access_role_below_the_permission_gets_403(app, client, routes, alpha, make_member, login_as):
    """Every permission that some page requires (new permissions are picked up as pages use them)."""
    failures = []
    for permission, least in PERMISSION_ROLES.items():
        needing = [r for r in routes if r.permission == permission]
        if least.rank == 0 or not needing:
            continue
        below = ROLE_ORDER[least.rank - 1]
        login_as(make_member(below, org=alpha.org))
        failures += _status_failures(app, client, needing, alpha, 403)
    assert not failures, _report(failures, "URLs not forbidding the role just below their permission")


def test_access_least_role_with_the_permission_opens_its_pages(app, client, routes, alpha, make_member, login_as):
    failures = []
    for permission, role in PERMISSION_ROLES.items():
        pages = [r for r in routes if r.permission == permission and "GET" in r.methods]
        if not pages:
            continue
        login_as(make_member(role, org=alpha.org))
        failures += _status_failures(app, client, pages, alpha, 200, methods=("GET",))
    assert not failures, _report(failures, "pages not open to the least role holding their permission")


@pytest.mark.parametrize("method", CHECKED_METHODS)
def test_access_other_organisations_records_are_not_found(app, client, guarded, bravo, alpha_admin, method):
    with_arguments = [r for r in guarded if r.rule.arguments - ORG_FREE_ARGUMENTS and method in r.methods]
    assert with_arguments, f"no guarded {method} URL takes arguments"
    failures = _status_failures(app, client, with_arguments, bravo, 404, methods=(method,))
    assert not failures, _report(failures, f"{method} requests reaching another organisation's records")
    db.session.expire_all()
    for model, record in bravo.records.items():
        assert db.session.get(model, record.id) is not None, f"{model.__name__} of the other organisation is gone"
    membership = db.session.get(Membership, bravo.membership.id)
    assert (membership.role, membership.is_active) == (Role.EDITOR.value, True)
    key = db.session.get(ApiKey, bravo.api_key.id)
    assert (key.revoked_at, key.previous_key_hash) == (None, None)
    assert db.session.get(OAuthClient, bravo.oauth_app.id).revoked_at is None


def test_access_admin_opens_every_page_of_own_organisation(app, client, guarded, alpha, alpha_admin):
    pages = [r for r in guarded if "GET" in r.methods]
    failures = _status_failures(app, client, pages, alpha, 200, methods=("GET",))
    assert not failures, _report(failures, "pages failing for an admin of the organisation")


def test_access_pages_never_show_another_organisations_records(app, client, guarded, alpha, bravo, alpha_admin):
    failures = []
    for route in (r for r in guarded if "GET" in r.methods):
        url = _url(app, route, alpha)
        html = client.get(url).get_data(as_text=True).lower()
        if bravo.marker.lower() in html:
            failures.append(f"{route.endpoint} GET {url}")
    assert not failures, _report(failures, "pages showing the other organisation's records")


# A list page -> text that shows one of its rows (formatted with the organisation's marker).
LIST_ROWS = {
    "data.people_list": "{} Person",
    "data.clients_list": "{} Client",
    "data.projects_list": "{} Project",
    "data.tasks_list": "{} Task",
    "data.assignments_list": "{} Person",
    "data.time_entries_list": "{} Person",
    "data.comments_list": "{} comment",
    "members.index": "{}.member@example.org",
    "jobs.index": "{}.member@example.org",
    "audit.index": "{}.auditor@example.org",
    "api_keys.index": "{} key",
    "oauth_apps.index": "{} App",
    "imports.history": "{} people.csv",
}


@pytest.mark.parametrize("endpoint", sorted(LIST_ROWS))
def test_access_lists_show_own_rows_only(app, client, alpha, bravo, alpha_admin, endpoint):
    url = app.url_map.bind("localhost").build(endpoint)
    html = client.get(url).get_data(as_text=True).lower()
    assert LIST_ROWS[endpoint].format(alpha.marker).lower() in html
    assert LIST_ROWS[endpoint].format(bravo.marker).lower() not in html


def test_access_list_rows_cover_every_entity(routes):
    lists = {r.endpoint for r in routes if r.endpoint.startswith("data.") and r.endpoint.endswith("_list")}
    assert lists == {f"data.{slug}_list" for slug in ENTITIES}
    assert lists <= set(LIST_ROWS)
