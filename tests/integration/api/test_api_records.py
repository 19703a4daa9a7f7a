"""The core records over REST: CRUD, references by natural key, lists, concurrency and bad input.

Per-entity cases are generated from ``tests/integration/contracts.py`` (valid values, an edit,
one invalid input) and from the services' own declarations (filters, references), so a new
entity or filter is covered the day it is declared.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from app.blueprints.api.schemas.records import SCHEMAS
from app.extensions import db
from app.models import AuditEvent, Organization, utcnow
from app.services.audit import SYSTEM
from app.services.records import MAX_ID
from tests.factories import OrganizationFactory, ProjectFactory
from tests.integration.api.conftest import ApiClient, as_json, new_api_key
from tests.integration.contracts import ALL, EntityContract, make_related

PREFIX = "/api/v1"
META_FIELDS = {"id", "version", "created_at", "updated_at"}
PROBLEM = "application/problem+json"

REFERENCES = [(c, ref) for c in ALL for ref in SCHEMAS[c.entity].references]
FILTERS = [(c, flt) for c in ALL for flt in c.service.filters]


def _ids(cases) -> list[str]:
    return [f"{c.entity}-{getattr(x, 'alias', None) or x.name}" for c, x in cases]


def url(contract: EntityContract, record_id: int | None = None) -> str:
    base = f"{PREFIX}{contract.url}"
    return base if record_id is None else f"{base}/{record_id}"


def saved(contract: EntityContract, org: Organization) -> tuple[Any, dict[str, Any]]:
    """A record created through the service from the contract's valid values, and those values."""
    values = contract.values(org)
    return contract.service.create(org, SYSTEM, dict(values)), values


def assert_problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status
    if field is not None:
        assert field in body["errors"], body
    return body


def required_fields(contract: EntityContract) -> list[str]:
    return [name for name, spec in contract.service.fields.items() if spec.required]


# --- create, read, replace, change, delete ---------------------------------------------------


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_api_records_create_answers_the_record_with_etag_and_location(api: ApiClient, org, contract):
    values = as_json(contract.values(org))

    response = api.post(url(contract), json=values)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert {k: body[k] for k in values} == values
    assert body["version"] == 1
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"].endswith(url(contract, body["id"]))
    assert contract.find(org, values).id == body["id"]


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_api_records_create_is_audited_under_the_api_key(api: ApiClient, org, api_key, contract):
    response = api.post(url(contract), json=as_json(contract.values(org)))

    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == f"{contract.table}.created"))
    assert event.object_id == str(response.get_json()["id"])
    assert event.actor_label == f"api-key:{api_key[0]}"
    assert event.actor_id is None


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_api_records_read_answers_every_field_and_the_version(api: ApiClient, org, contract):
    record, values = saved(contract, org)

    response = api.get(url(contract, record.id))

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == set(contract.service.fields) | META_FIELDS
    assert {k: body[k] for k in values} == as_json(values)
    assert response.headers["ETag"] == f'"{body["version"]}"'


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_api_records_patch_changes_only_the_fields_sent(api: ApiClient, org, contract):
    record, values = saved(contract, org)

    response = api.patch(url(contract, record.id), json=as_json(contract.update))

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert {k: body[k] for k in values} == as_json({**values, **contract.update})
    assert body["version"] == 2
    assert response.headers["ETag"] == '"2"'


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_api_records_put_replaces_and_resets_fields_left_out(api: ApiClient, org, contract):
    record, values = saved(contract, org)
    body = {name: values[name] for name in required_fields(contract)}

    response = api.put(url(contract, record.id), json=as_json(body))

    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    for name in set(contract.service.fields) - set(body):
        default = contract.model.__table__.c[name].default
        expected = None if default is None else default.arg(None) if default.is_callable else default.arg
        assert answer[name] == expected, name
    assert answer["version"] == 2


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_api_records_put_without_required_fields_is_422(api: ApiClient, org, contract):
    record, _ = saved(contract, org)

    response = api.put(url(contract, record.id), json={})

    body = assert_problem(response, 422)
    schema_required = {n for n, f in SCHEMAS[contract.entity].create.fields.items() if f.required}
    assert set(body["errors"]) == schema_required


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_api_records_delete_removes_the_record(api: ApiClient, org, contract):
    record, values = saved(contract, org)

    response = api.delete(url(contract, record.id))

    assert response.status_code == 204
    assert response.data == b""
    assert contract.find(org, values) is None
    assert api.get(url(contract, record.id)).status_code == 404


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_api_records_invalid_value_is_422_naming_the_field(api: ApiClient, org, contract):
    values = as_json({**contract.values(org), **contract.invalid(org)})

    response = api.post(url(contract), json=values)

    assert_problem(response, 422, contract.invalid_field)
    assert contract.find(org, values) is None


def test_api_records_duplicate_natural_key_is_422(api: ApiClient, org):
    contract = next(c for c in ALL if c.entity == "people")
    record, values = saved(contract, org)

    response = api.post(url(contract), json=as_json({**values, "external_id": "another"}))

    body = assert_problem(response, 422, "email")
    assert "already uses" in body["errors"]["email"][0]


# --- references by natural key ----------------------------------------------------------------


@pytest.mark.parametrize(("contract", "ref"), REFERENCES, ids=_ids(REFERENCES))
def test_api_records_reference_is_accepted_by_natural_key(api: ApiClient, org, contract, ref):
    values = contract.values(org)
    related = db.session.get(ref.service.model, values.pop(ref.field))
    values[ref.alias] = getattr(related, ref.key)

    response = api.post(url(contract), json=as_json(values))

    assert response.status_code == 201, response.get_json()
    assert response.get_json()[ref.field] == related.id


@pytest.mark.parametrize(("contract", "ref"), REFERENCES, ids=_ids(REFERENCES))
def test_api_records_unknown_natural_key_is_422_naming_the_field(api: ApiClient, org, contract, ref):
    values = contract.values(org)
    del values[ref.field]
    values[ref.alias] = "nobody-knows-this"

    response = api.post(url(contract), json=as_json(values))

    body = assert_problem(response, 422, ref.alias)
    assert "nobody-knows-this" in body["errors"][ref.alias][0]


def test_api_records_natural_key_of_another_organisation_is_not_resolved(api: ApiClient, org):
    foreign = ProjectFactory(organization=OrganizationFactory())

    response = api.post(f"{PREFIX}/tasks", json={"project": foreign.code, "title": "x", "status": "todo",
                                                  "priority": "low"})

    assert_problem(response, 422, "project")


def test_api_records_natural_keys_match_as_stored(api: ApiClient, org):
    """Emails are stored lower-case and project codes upper-case; a script may send either case."""
    person = make_related(SCHEMAS["people"].service.model, org)
    project = ProjectFactory(organization=org, code="WEB-7")

    response = api.post(f"{PREFIX}/time-entries", json={
        "person": person.email.upper(), "project": "web-7", "spent_on": "2026-02-03", "hours": 2,
    })

    assert response.status_code == 201, response.get_json()
    assert (response.get_json()["person_id"], response.get_json()["project_id"]) == (person.id, project.id)


def test_api_records_reference_by_id_and_natural_key_at_once_is_422(api: ApiClient, org):
    project = ProjectFactory(organization=org)

    response = api.post(f"{PREFIX}/tasks", json={
        "project_id": project.id, "project": project.code, "title": "x", "status": "todo", "priority": "low",
    })

    assert_problem(response, 422, "project")


# --- lists ------------------------------------------------------------------------------------


def test_api_records_list_paginates_with_links_and_link_header(api: ApiClient, org):
    projects = [ProjectFactory(organization=org) for _ in range(5)]

    response = api.get(f"{PREFIX}/projects?per_page=2&page=2")

    assert response.status_code == 200
    body = response.get_json()
    assert [p["id"] for p in body["data"]] == [p.id for p in projects[2:4]]
    assert body["meta"] == {"page": 2, "per_page": 2, "total": 5, "pages": 3}
    links = body["links"]
    assert (links["prev"], links["self"], links["next"], links["first"], links["last"]) == tuple(
        f"http://localhost{PREFIX}/projects?per_page=2&page={n}" for n in (1, 2, 3, 1, 3)
    )
    assert response.headers["Link"] == ", ".join(
        f'<{links[rel]}>; rel="{rel}"' for rel in ("first", "last", "next", "prev")
    )


def test_api_records_list_last_page_has_no_next_link(api: ApiClient, org):
    ProjectFactory(organization=org)

    body = api.get(f"{PREFIX}/projects").get_json()

    assert (body["links"]["next"], body["links"]["prev"]) == (None, None)


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_api_records_list_orders_by_id_by_default(api: ApiClient, org, contract):
    ids = [contract.make(org).id for _ in range(3)]

    body = api.get(url(contract)).get_json()

    assert [r["id"] for r in body["data"]] == ids


def test_api_records_list_sorts_by_a_declared_field_descending(api: ApiClient, org):
    for name in ("Beta", "Alpha", "Gamma"):
        ProjectFactory(organization=org, name=name)

    body = api.get(f"{PREFIX}/projects?sort=-name").get_json()

    assert [r["name"] for r in body["data"]] == ["Gamma", "Beta", "Alpha"]


def test_api_records_list_rejects_an_undeclared_sort(api: ApiClient, org):
    assert_problem(api.get(f"{PREFIX}/projects?sort=budget"), 422, "sort")


def test_api_records_list_never_shows_another_organisations_records(api: ApiClient, org):
    ProjectFactory(organization=OrganizationFactory())

    assert api.get(f"{PREFIX}/projects").get_json()["meta"]["total"] == 0


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_api_records_list_filters_by_external_id(api: ApiClient, org, contract):
    wanted = contract.make(org, external_id="crm-1")
    contract.make(org, external_id="crm-2")

    body = api.get(url(contract) + "?external_id=crm-1").get_json()

    assert [r["id"] for r in body["data"]] == [wanted.id]


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_api_records_list_filters_by_updated_since(api: ApiClient, org, contract):
    old, recent = contract.make(org), contract.make(org)
    long_ago = utcnow() - timedelta(days=30)
    db.session.execute(update(contract.model).where(contract.model.id == old.id).values(updated_at=long_ago))
    db.session.commit()
    since = (utcnow() - timedelta(days=1)).replace(microsecond=0).isoformat()

    response = api.get(url(contract), query_string={"updated_since": since})

    assert [r["id"] for r in response.get_json()["data"]] == [recent.id]


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00", "0001-01-01T00:00:00+01:00"])
def test_api_records_list_invalid_updated_since_is_422(api: ApiClient, org, value):
    assert_problem(api.get(f"{PREFIX}/people", query_string={"updated_since": value}), 422, "updated_since")


def _filter_values(org: Organization, flt) -> tuple[Any, Any, str]:
    """Column values for a matching and a non-matching row, and the query value selecting the first."""
    if flt.kind == "choice":
        return flt.choices[0], flt.choices[1], flt.choices[0]
    if flt.kind == "bool":
        return True, False, "true"
    if flt.kind == "related":
        wanted = make_related(flt.related, org)
        return wanted.id, make_related(flt.related, org).id, str(wanted.id)
    if flt.kind == "date_from":
        return date(2026, 5, 1), date(2025, 5, 1), "2026-01-01"
    if flt.kind == "date_to":
        return date(2025, 5, 1), date(2026, 5, 1), "2025-12-31"
    return "Alpha", "Beta", "Alpha"


@pytest.mark.parametrize(("contract", "flt"), FILTERS, ids=_ids(FILTERS))
def test_api_records_list_applies_the_declared_filters(api: ApiClient, org, contract, flt):
    match, other, query = _filter_values(org, flt)
    wanted = contract.make(org, **{flt.column: match})
    contract.make(org, **{flt.column: other})

    response = api.get(url(contract), query_string={flt.name: query})

    assert response.status_code == 200
    assert [r["id"] for r in response.get_json()["data"]] == [wanted.id]


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_api_records_list_searches_with_q(api: ApiClient, org, contract):
    wanted = contract.make(org, **{contract.search_field: "needle in a haystack"})
    contract.make(org, **{contract.search_field: "just hay"})

    body = api.get(url(contract), query_string={"q": "NEEDLE"}).get_json()

    assert [r["id"] for r in body["data"]] == [wanted.id]


def test_api_records_list_page_past_the_last_answers_the_last_page(api: ApiClient, org):
    ProjectFactory(organization=org)

    response = api.get(f"{PREFIX}/projects", query_string={"page": str(10**30)})

    assert response.status_code == 200
    assert response.get_json()["meta"]["page"] == 1
    assert len(response.get_json()["data"]) == 1


@pytest.mark.parametrize("query", [{"per_page": "201"}, {"per_page": "0"}, {"page": "0"}, {"page": "two"}])
def test_api_records_list_out_of_range_paging_is_422(api: ApiClient, org, query):
    assert_problem(api.get(f"{PREFIX}/projects", query_string=query), 422, next(iter(query)))


@pytest.mark.parametrize("query", [{"q": "a\x00b"}, {"external_id": "\x00"}, {"department": "R&D\x00"}])
def test_api_records_list_nul_in_query_finds_nothing_instead_of_failing(api: ApiClient, org, query):
    make_related(SCHEMAS["people"].service.model, org)

    response = api.get(f"{PREFIX}/people", query_string=query)

    assert response.status_code == 200
    assert response.get_json()["data"] == []


# --- optimistic concurrency -------------------------------------------------------------------


def _write(api: ApiClient, method: str, path: str, if_match: str):
    body = {"json": {"name": "Renamed"}} if method == "PATCH" else {}
    if method == "PUT":
        body = {"json": {"name": "Renamed", "active": True}}
    return api.open(method, path, headers={"If-Match": if_match}, **body)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_api_records_stale_if_match_is_412_and_changes_nothing(api: ApiClient, org, method):
    contract = next(c for c in ALL if c.entity == "clients")
    record, values = saved(contract, org)
    api.patch(url(contract, record.id), json={"notes": "changed elsewhere"})

    response = _write(api, method, url(contract, record.id), '"1"')

    assert_problem(response, 412)
    current = api.get(url(contract, record.id))
    assert (current.get_json()["name"], current.headers["ETag"]) == (values["name"], '"2"')


@pytest.mark.parametrize("if_match", ['"1"', 'W/"1"', "*", '"7", "1"'])
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_api_records_current_if_match_lets_the_write_through(api: ApiClient, org, method, if_match):
    contract = next(c for c in ALL if c.entity == "clients")
    record, _ = saved(contract, org)

    response = _write(api, method, url(contract, record.id), if_match)

    assert response.status_code == (204 if method == "DELETE" else 200), response.get_json()


# --- bad input never answers 500 ---------------------------------------------------------------


def test_api_records_unknown_field_is_422_naming_it(api: ApiClient, org):
    response = api.post(f"{PREFIX}/clients", json={"name": "Acme", "colour": "red"})

    body = assert_problem(response, 422, "colour")
    assert body["errors"]["colour"] == ["Unknown field."]


@pytest.mark.parametrize(
    ("entity", "field", "value"),
    [
        ("time_entries", "hours", "lots"),
        ("time_entries", "hours", float("inf")),
        ("time_entries", "spent_on", "03/02/2026"),
        ("time_entries", "billable", "perhaps"),
        ("time_entries", "project_id", "WEB-2026"),
        ("time_entries", "project_id", 2**40),
        ("time_entries", "project_id", True),
        ("people", "skills", "maths"),
        ("people", "name", 42),
        ("people", "name", "bad \ud800 surrogate"),
        ("people", "name", "NUL \x00 inside"),
        ("projects", "status", "sleeping"),
        ("projects", "code", "X" * 51),
        ("people", "hourly_rate", "99999999.999"),
    ],
)
def test_api_records_wrong_value_types_are_422_naming_the_field(api: ApiClient, org, entity, field, value):
    contract = next(c for c in ALL if c.entity == entity)
    values = as_json(contract.values(org))

    response = api.post(url(contract), json={**values, field: value})

    assert_problem(response, 422, field)


@pytest.mark.parametrize(
    "body",
    ['{"name": ', "not json", '{"name": ' + "9" * 5000 + "}", "[" * 100_000 + "]" * 100_000, "\xff"],
    ids=["truncated", "text", "huge-integer", "deep-nesting", "not-utf8"],
)
def test_api_records_undecodable_json_body_is_400(api: ApiClient, org, body):
    response = api.post(f"{PREFIX}/clients", data=body.encode("latin-1"), content_type="application/json")

    detail = assert_problem(response, 400)["detail"]
    assert "not valid JSON" in detail


@pytest.mark.parametrize("body", [[], "Acme", 7, None])
def test_api_records_json_that_is_not_an_object_is_422(api: ApiClient, org, body):
    response = api.post(f"{PREFIX}/clients", data=json.dumps(body), content_type="application/json")

    assert_problem(response, 422)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("record_id", [MAX_ID + 1, 2**63, 10**30])
def test_api_records_ids_past_the_database_range_are_404(api: ApiClient, org, method, record_id):
    response = api.open(method, f"{PREFIX}/clients/{record_id}", json={"name": "Acme"})

    assert_problem(response, 404)


def test_api_records_other_organisations_record_is_404(client, org):
    record = make_related(SCHEMAS["clients"].service.model, OrganizationFactory())
    _, secret = new_api_key(org)

    response = ApiClient(client, secret).get(f"{PREFIX}/clients/{record.id}")

    assert_problem(response, 404)


# --- the caller --------------------------------------------------------------------------------


def test_api_me_names_the_key_its_organisation_and_scopes(api: ApiClient, org, api_key):
    response = api.get(f"{PREFIX}/me")

    assert response.status_code == 200
    assert response.get_json() == {
        "credential": "api_key",
        "name": str(api_key[0]),
        "organization": {"id": org.id, "slug": org.slug, "name": org.name},
        "scopes": ["data.read", "data.write"],
    }
