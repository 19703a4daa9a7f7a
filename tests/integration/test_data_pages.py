"""The list, detail, create, edit and delete pages of every core entity, through the test client.

Generated from tests/integration/contracts.py: each test runs once per entity (and per
filter or sort column where it says so), signed in as an editor unless it is about viewers.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from app.blueprints.data.pages import PAGES
from app.extensions import db
from app.models import AuditEvent, Organization, Person, Role
from app.services.audit import SYSTEM
from app.services.entities import ENTITIES
from tests.factories import PersonFactory
from tests.integration.contracts import ALL, CONTRACTS, EntityContract, form_data, make_related


@pytest.fixture
def editor(make_member, login_as):
    user = make_member(Role.EDITOR)
    login_as(user)
    return user


@pytest.fixture
def org(editor) -> Organization:
    return editor.memberships[0].organization


@pytest.fixture
def viewer_org(make_member, login_as) -> Organization:
    user = make_member(Role.VIEWER)
    login_as(user)
    return user.memberships[0].organization


def listed_ids(html: str, contract: EntityContract) -> list[int]:
    """The record ids in the list table, in the order shown (each row's first cell links to it)."""
    return [int(i) for i in re.findall(rf'<tr>\s*<td><a href="{contract.url}/(\d+)">', html)]


def audit_events(org: Organization, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.organization_id == org.id,
                                                            AuditEvent.action == action)))


def count(contract: EntityContract, org: Organization) -> int:
    model = contract.model
    return db.session.scalar(select(func.count(model.id)).where(model.organization_id == org.id))


def shown(value) -> str:
    """How the ``show`` macro renders a scalar value on the detail page."""
    return value.isoformat() if isinstance(value, date) else str(escape(str(value)))


def test_contracts_cover_every_entity():
    assert set(CONTRACTS) == set(ENTITIES)


# --- create, read, update, delete ---------------------------------------------------------


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_list_shows_empty_state_when_there_are_no_records(client, org, contract):
    response = client.get(f"{contract.url}/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="empty-state"' in html
    assert f"No {contract.url[1:].replace('-', ' ')} yet" in html
    assert listed_ids(html, contract) == []


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_create_saves_the_record_in_the_current_org_and_audits_it(client, editor, org, contract):
    values = contract.values(org)
    response = client.post(f"{contract.url}/new", data=form_data(values))
    record = contract.find(org, values)
    assert record is not None
    assert response.status_code == 302
    assert response.headers["Location"] == f"{contract.url}/{record.id}"
    assert record.organization_id == org.id
    [event] = audit_events(org, f"{contract.table}.created")
    assert event.object_id == str(record.id)
    assert event.actor_id == editor.id


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_detail_shows_the_record_values(client, org, contract):
    values = contract.values(org)
    record = contract.service.create(org, SYSTEM, values)
    response = client.get(f"{contract.url}/{record.id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    detail_attrs = {c.attr for c in PAGES[contract.entity].detail}
    expected = [v for k, v in values.items() if k in detail_attrs and isinstance(v, str | date | Decimal)]
    assert expected, "the contract should set at least one value the detail page shows"
    for value in expected:
        assert shown(value) in html
    assert str(escape(str(record))) in html


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_edit_changes_the_values_and_audits_the_changes(client, org, contract):
    values = contract.values(org)
    record_id = contract.service.create(org, SYSTEM, values).id
    response = client.post(f"{contract.url}/{record_id}/edit", data=contract.update_data(values))
    assert response.status_code == 302
    assert response.headers["Location"] == f"{contract.url}/{record_id}"
    db.session.expire_all()
    record = db.session.get(contract.model, record_id)
    for name, value in contract.update.items():
        assert getattr(record, name) == value
    [event] = audit_events(org, f"{contract.table}.updated")
    assert set(event.details["changes"]) == set(contract.update)


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_invalid_create_is_refused_with_the_error_next_to_the_field(client, org, contract):
    data = contract.invalid_data(org)
    before = count(contract, org)
    response = client.post(f"{contract.url}/new", data=data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    name, message = contract.invalid_field, str(escape(contract.invalid_message))
    # The message sits in an invalid-feedback block after this field's control and before the next control.
    next_to_field = rf'name="{name}"(?:(?!name=").)*?<div class="invalid-feedback">{re.escape(message)}</div>'
    assert re.search(next_to_field, html, re.S), f"{message!r} is not rendered next to {name!r}"
    assert re.search(rf'class="[^"]*is-invalid[^"]*" id="{name}"', html)
    assert count(contract, org) == before
    assert audit_events(org, f"{contract.table}.created") == []


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_delete_removes_the_record_and_audits_it(client, org, contract):
    record_id = contract.make(org).id
    response = client.post(f"{contract.url}/{record_id}/delete")
    assert response.status_code == 302
    assert response.headers["Location"] == f"{contract.url}/"
    db.session.expire_all()
    assert db.session.get(contract.model, record_id) is None
    [event] = audit_events(org, f"{contract.table}.deleted")
    assert event.object_id == str(record_id)


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_viewer_can_open_the_list_and_the_detail(client, viewer_org, contract):
    record_id = contract.make(viewer_org).id
    listing = client.get(f"{contract.url}/")
    assert listing.status_code == 200
    assert listed_ids(listing.get_data(as_text=True), contract) == [record_id]
    assert client.get(f"{contract.url}/{record_id}").status_code == 200


WRITES = [
    ("GET", "/new"),
    ("POST", "/new"),
    ("GET", "/{id}/edit"),
    ("POST", "/{id}/edit"),
    ("POST", "/{id}/delete"),
]


@pytest.mark.parametrize("method,path", WRITES, ids=[f"{m} {p}" for m, p in WRITES])
@pytest.mark.parametrize("contract", ALL, ids=str)
def test_viewer_is_forbidden_to_write(client, viewer_org, contract, method, path):
    record_id = contract.make(viewer_org).id
    data = contract.valid_data(viewer_org) if method == "POST" else None
    before = count(contract, viewer_org)
    response = client.open(f"{contract.url}{path.format(id=record_id)}", method=method, data=data)
    assert response.status_code == 403
    assert count(contract, viewer_org) == before
    assert db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.organization_id == viewer_org.id)) == 0


# --- search, sort, filter, paginate -------------------------------------------------------


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_search_narrows_the_list_case_insensitively(client, org, contract):
    hit = contract.make(org, **{contract.search_field: "Haystack NEEDLE one"}).id
    contract.make(org, **{contract.search_field: "Haystack only"})
    html = client.get(f"{contract.url}/?q=needle").get_data(as_text=True)
    assert listed_ids(html, contract) == [hit]


SORTS = [(c, f"{sign}{column}") for c in ALL for column in c.service.sort_columns for sign in ("", "-")]


@pytest.mark.parametrize("contract,sort", SORTS + [(c, "no_such_column") for c in ALL],
                         ids=[f"{c}-{s}" for c, s in SORTS] + [f"{c}-unknown" for c in ALL])
def test_sorting_by_any_column_renders(client, org, contract, sort):
    ids = {contract.make(org).id, contract.make(org).id}
    response = client.get(f"{contract.url}/?sort={sort}")
    assert response.status_code == 200
    assert set(listed_ids(response.get_data(as_text=True), contract)) == ids


def test_people_sorted_by_name_descending(client, org):
    names = ["Bob Byte", "Alice Atom", "Carol Core"]
    by_name = {PersonFactory(organization=org, name=n).id: n for n in names}
    html = client.get(f"{CONTRACTS['people'].url}/?sort=-name").get_data(as_text=True)
    assert [by_name[i] for i in listed_ids(html, CONTRACTS["people"])] == sorted(names, reverse=True)


def _filter_case(org: Organization, flt, query_value: str | None):
    """(value to put in the query string, column value that matches it, column value that does not)."""
    if flt.kind == "related":
        match, other = make_related(flt.related, org), make_related(flt.related, org)
        return str(match.id), match.id, other.id
    if flt.kind == "bool":
        return query_value, query_value == "1", query_value != "1"
    if flt.kind == "date_from":
        return "2026-02-01", date(2026, 3, 1), date(2026, 1, 1)
    if flt.kind == "date_to":
        return "2026-02-01", date(2026, 1, 1), date(2026, 3, 1)
    if flt.kind == "text":
        return "Sales", "Sales", "Marketing"
    return flt.choices[0], flt.choices[0], flt.choices[1]


FILTERS = [
    (c, flt, value)
    for c in ALL
    for flt in c.service.filters
    for value in (("1", "0") if flt.kind == "bool" else (None,))
]


@pytest.mark.parametrize("contract,flt,value", FILTERS,
                         ids=[f"{c}-{f.name}" + (f"={v}" if v else "") for c, f, v in FILTERS])
def test_filter_keeps_only_matching_records(client, org, contract, flt, value):
    query_value, matching, other = _filter_case(org, flt, value)
    hit = contract.make(org, **{flt.column: matching}).id
    contract.make(org, **{flt.column: other})
    response = client.get(f"{contract.url}/", query_string={flt.name: query_value})
    assert response.status_code == 200
    assert listed_ids(response.get_data(as_text=True), contract) == [hit]


# A garbage date is ignored (the record stays listed); any other garbage value matches nothing.
GARBAGE = {
    "related": ["abc", "-1", "3000000000", "99999999999999999999"],
    "date_from": ["2026-13-45", "\x00"],
    "date_to": ["yesterday"],
    "bool": ["maybe"],
}
BAD_FILTERS = [
    (c, f, value) for c in ALL for f in c.service.filters for value in GARBAGE.get(f.kind, ["%' OR 1=1 --", "a\x00b"])
]


@pytest.mark.parametrize("contract,flt,value", BAD_FILTERS,
                         ids=[f"{c}-{f.name}={v!r}" for c, f, v in BAD_FILTERS])
def test_filter_with_a_garbage_value_still_renders(client, org, contract, flt, value):
    record_id = contract.make(org).id
    response = client.get(f"{contract.url}/", query_string={flt.name: value})
    assert response.status_code == 200
    ignored = flt.kind in {"date_from", "date_to"}
    assert listed_ids(response.get_data(as_text=True), contract) == ([record_id] if ignored else [])


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_search_with_a_nul_character_still_renders(client, org, contract):
    hit = contract.make(org, **{contract.search_field: "Haystack NEEDLE one"}).id
    response = client.get(f"{contract.url}/", query_string={"q": "need\x00le"})
    assert response.status_code == 200
    assert listed_ids(response.get_data(as_text=True), contract) == [hit]


@pytest.mark.parametrize("record_id", ["3000000000", "99999999999999999999"])
@pytest.mark.parametrize("contract", ALL, ids=str)
def test_out_of_range_id_is_not_found(client, org, contract, record_id):
    assert client.get(f"{contract.url}/{record_id}").status_code == 404
    assert client.post(f"{contract.url}/{record_id}/delete").status_code == 404


RELATED_FORM_FIELDS = [(c, name) for c in ALL for name, spec in c.service.fields.items() if spec.related]


@pytest.mark.parametrize("contract,name", RELATED_FORM_FIELDS, ids=[f"{c}.{n}" for c, n in RELATED_FORM_FIELDS])
def test_create_with_an_out_of_range_related_id_is_refused(client, org, contract, name):
    values = contract.values(org)
    response = client.post(f"{contract.url}/new", data={**form_data(values), name: "99999999999999999999"})
    assert response.status_code == 422
    related = contract.service.fields[name].related.__name__.lower()
    assert f"No such {related} in this organisation." in response.get_data(as_text=True)
    assert contract.find(org, values) is None


@pytest.mark.parametrize("contract", ALL, ids=str)
def test_create_with_a_nul_character_is_refused(client, org, contract):
    values = contract.values(org)
    before = count(contract, org)
    response = client.post(f"{contract.url}/new", data={**form_data(values), "external_id": "ext\x00one"})
    assert response.status_code == 422
    assert "Contains a NUL character" in response.get_data(as_text=True)
    assert count(contract, org) == before


@pytest.mark.parametrize(
    "page,rows,label",
    [("1", 25, "Page 1 of 2"), ("2", 5, "Page 2 of 2"), ("999", 5, "Page 2 of 2"), ("abc", 25, "Page 1 of 2")],
)
def test_people_list_paginates(client, org, page, rows, label):
    for n in range(30):
        PersonFactory(organization=org, name=f"Person {n:02d}")
    response = client.get(f"/people/?page={page}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert len(listed_ids(html, CONTRACTS["people"])) == rows
    assert label in html


def test_people_list_pages_do_not_overlap(client, org):
    created = {PersonFactory(organization=org).id for _ in range(30)}
    first = listed_ids(client.get("/people/?page=1").get_data(as_text=True), CONTRACTS["people"])
    second = listed_ids(client.get("/people/?page=2").get_data(as_text=True), CONTRACTS["people"])
    assert set(first) | set(second) == created
    assert not set(first) & set(second)


def test_list_shows_only_the_current_orgs_records(client, org):
    mine = PersonFactory(organization=org).id
    PersonFactory()  # another organisation
    assert listed_ids(client.get("/people/").get_data(as_text=True), CONTRACTS["people"]) == [mine]
    assert db.session.scalar(select(func.count(Person.id))) == 2

