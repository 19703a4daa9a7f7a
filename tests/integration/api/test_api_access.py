"""Access to every REST endpoint, generated from ``app.url_map`` so an endpoint is covered the day it lands.

For each rule under /api/v1 and each of its methods: no credential → 401; a key without the
rule's ``required_scope`` → 403; a key of another organisation naming this organisation's ids
→ 404; a key with the scope → the happy path. Each check walks every endpoint, collects the
failures as "METHOD /path: what happened" and asserts there are none.

A new endpoint with a URL argument must say what the argument names in ``ARGUMENTS``; a new
write endpoint can say what a valid body is in ``BODIES`` (without one, its happy path only
has to stay clear of 5xx).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from app.models import ApiKey, Organization
from app.security.scopes import SCOPES
from app.services import import_jobs
from tests.exports_for_tests import finished_export
from tests.factories import OrganizationFactory
from tests.integration.api.conftest import ApiClient, as_json, new_api_key
from tests.integration.contracts import CONTRACTS

# The walker sends more unauthenticated requests than the per-address limit allows a minute.
pytestmark = pytest.mark.usefixtures("generous_anonymous_limit")

PREFIX = "/api/v1/"
CHECKED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PROBLEM = "application/problem+json"
ENTITY_BY_SEGMENT = {c.url.lstrip("/"): c for c in CONTRACTS.values()}


@dataclass(frozen=True)
class Endpoint:
    rule: Rule
    method: str
    view: Callable

    def __str__(self) -> str:
        return f"{self.method} {self.rule.rule}"

    @property
    def handler(self) -> Callable:
        """The function that carries the guard: the view, or its method on a MethodView."""
        view_class = getattr(self.view, "view_class", None)
        return getattr(view_class, self.method.lower()) if view_class is not None else self.view

    @property
    def scope(self) -> str | None:
        return getattr(self.handler, "required_scope", None)

    @property
    def is_public(self) -> bool:
        return bool(getattr(self.handler, "public", False))

    @property
    def entity(self):
        """The core-record contract of ``/api/v1/<entity>/...``, if this is a record endpoint."""
        segment = self.rule.rule.removeprefix(PREFIX).split("/")[0]
        return ENTITY_BY_SEGMENT.get(segment)


@dataclass
class Victim:
    """An organisation with one row of everything an endpoint can name by id, made fresh per request."""

    org: Organization
    records: dict[str, Any] = field(default_factory=dict)
    api_key: ApiKey | None = None

    @classmethod
    def make(cls) -> Victim:
        org = OrganizationFactory()
        victim = cls(org=org, records={c.entity: c.make(org) for c in CONTRACTS.values()})
        victim.api_key, _ = new_api_key(org, name="victim's other key")
        return victim


def _record_id(endpoint: Endpoint, victim: Victim) -> int:
    contract = endpoint.entity
    if contract is None:
        pytest.fail(f"{endpoint}: record_id outside a core-record URL; map it in ARGUMENTS ({__file__})")
    return victim.records[contract.entity].id


def _import_id(endpoint: Endpoint, victim: Victim) -> int:
    """An uploaded import of the victim organisation (a real file through the real upload)."""
    if "import" not in victim.records:
        content = io.BytesIO(b"email,name\nada@example.com,Ada\n")
        victim.records["import"] = import_jobs.upload(victim.org, None, "people", "people.csv", content)
    return victim.records["import"].id


def _export_id(endpoint: Endpoint, victim: Victim) -> int:
    """A finished export of the victim (with its file), made once per victim."""
    if "export" not in victim.records:
        victim.records["export"] = finished_export(victim.org)
    return victim.records["export"].id


# URL argument name -> the id it takes in the victim organisation (or, for ORG_FREE_ARGUMENTS, a valid value).
ARGUMENTS: dict[str, Callable[[Endpoint, Victim], int | str]] = {
    "record_id": _record_id,
    "key_id": lambda endpoint, victim: victim.api_key.id,
    "import_id": _import_id,
    "export_id": _export_id,
    "entity": lambda endpoint, victim: "time_entries",
}
# Arguments that name nothing of an organisation (an import template's entity): an endpoint whose arguments are
# all of these answers every organisation alike, so the "other organisation's ids are 404" check skips it.
ORG_FREE_ARGUMENTS = {"entity"}


def _record_body(endpoint: Endpoint, victim: Victim) -> dict | None:
    contract = endpoint.entity
    if contract is None:
        return None
    if endpoint.method == "PATCH":
        return as_json(contract.update)
    values = contract.values(victim.org)
    if endpoint.method == "PUT":  # the POST has already used the contract's unique values
        values.update({n: f"put-{values[n]}" for n, spec in contract.service.fields.items() if spec.unique})
    return as_json(values)


# Endpoints whose valid body the walker knows: (method, rule predicate) -> body maker.
BODIES: list[tuple[Callable[[Endpoint], bool], Callable[[Endpoint, Victim], dict | None]]] = [
    (lambda e: e.entity is not None and e.method in {"POST", "PUT", "PATCH"}, _record_body),
    (lambda e: e.rule.rule == "/api/v1/export", lambda e, v: {"entity": "people", "format": "csv"}),
]


def _knows_body(endpoint: Endpoint) -> bool:
    return endpoint.method in {"GET", "DELETE"} or any(applies(endpoint) for applies, _ in BODIES)


def _body(endpoint: Endpoint, victim: Victim) -> dict | None:
    """A valid body when the walker knows one, else an empty object (so only the 5xx check applies)."""
    if endpoint.method in {"GET", "DELETE"}:
        return None
    make = next((make for applies, make in BODIES if applies(endpoint)), None)
    return make(endpoint, victim) if make else {}


def _url(endpoint: Endpoint, victim: Victim) -> str:
    values = {}
    for name in endpoint.rule.arguments:
        if name not in ARGUMENTS:
            pytest.fail(f"{endpoint}: unknown URL argument {name!r}; add it to ARGUMENTS in {__file__}")
        values[name] = ARGUMENTS[name](endpoint, victim)
    return endpoint.rule.build(values, append_unknown=False)[1]


def _call(client: FlaskClient, token: str | None, endpoint: Endpoint, victim: Victim):
    body = _body(endpoint, victim)
    kwargs = {"json": body} if body is not None else {}
    return ApiClient(client, token).open(endpoint.method, _url(endpoint, victim), **kwargs)


@pytest.fixture
def endpoints(app: Flask) -> list[Endpoint]:
    found = [
        Endpoint(rule, method, app.view_functions[rule.endpoint])
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(PREFIX)
        for method in CHECKED_METHODS
        if method in rule.methods
    ]
    assert len(found) >= 7 * 6, "the walker found fewer API endpoints than the core records alone have"
    return sorted(found, key=str)


@pytest.fixture
def victim() -> Victim:
    return Victim.make()


@pytest.fixture
def guarded(endpoints: list[Endpoint]) -> list[Endpoint]:
    return [e for e in endpoints if not e.is_public]


def _problem(response, status: int) -> str | None:
    """What is wrong with ``response`` as a ``status`` problem, or None."""
    if response.status_code != status:
        return f"answered {response.status_code}, expected {status}: {response.get_data(as_text=True)[:200]}"
    if response.mimetype != PROBLEM:
        return f"answered {response.mimetype}, expected {PROBLEM}"
    return None


def _assert_none(failures: list[str]) -> None:
    assert not failures, "\n".join(failures)


def test_api_access_every_endpoint_declares_a_known_scope(guarded):
    failures = [f"{e}: scope {e.scope!r}" for e in guarded if e.scope not in SCOPES]

    _assert_none(failures)


def test_api_access_without_credentials_is_401(client, guarded, victim):
    failures = []
    for endpoint in guarded:
        response = _call(client, None, endpoint, victim)
        problem = _problem(response, 401) or (
            None if response.headers.get("WWW-Authenticate", "").startswith("Bearer") else "no WWW-Authenticate"
        )
        if problem:
            failures.append(f"{endpoint}: {problem}")

    _assert_none(failures)


def test_api_access_key_without_the_scope_is_403(client, guarded, victim):
    failures = []
    for endpoint in guarded:
        _, secret = new_api_key(victim.org, scopes=sorted(set(SCOPES) - {endpoint.scope, "admin"}))
        if problem := _problem(_call(client, secret, endpoint, victim), 403):
            failures.append(f"{endpoint}: {problem}")

    _assert_none(failures)


def test_api_access_other_organisations_ids_are_404(client, guarded, victim):
    _, intruder = new_api_key(OrganizationFactory(), scopes=["admin"])
    failures = []
    for endpoint in (e for e in guarded if e.rule.arguments - ORG_FREE_ARGUMENTS):
        if problem := _problem(_call(client, intruder, endpoint, victim), 404):
            failures.append(f"{endpoint}: {problem}")

    _assert_none(failures)


def test_api_access_key_with_the_scope_gets_the_happy_path(client, guarded, victim):
    failures = []
    for endpoint in guarded:
        # A delete gets an organisation of its own, so it takes nothing away from the other endpoints.
        target = Victim.make() if endpoint.method == "DELETE" else victim
        _, secret = new_api_key(target.org, scopes=[endpoint.scope])
        response = _call(client, secret, endpoint, target)
        ok = 200 <= response.status_code < 300 if _knows_body(endpoint) else response.status_code < 500
        if not ok:
            failures.append(f"{endpoint}: answered {response.status_code}: {response.get_data(as_text=True)[:200]}")

    _assert_none(failures)


def test_api_access_every_url_argument_is_mapped(guarded):
    unmapped = sorted({f"{e}: {name}" for e in guarded for name in e.rule.arguments if name not in ARGUMENTS})

    assert not unmapped, f"add these URL arguments to ARGUMENTS in {__file__}:\n" + "\n".join(unmapped)
