"""API keys: the service's rules, the console page, the CLI, the REST endpoints and how keys authenticate.

A key authenticates on ``GET /api/v1/me`` (scope data.read); refusals are 401 problem+json whose
detail says why (revoked, expired, regenerated, address), and a malformed key is refused by its
checksum alone.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.models import ApiKey, AuditEvent, Organization, Role, User, utcnow
from app.security.api_keys import generate_key, hash_key
from app.services import api_keys
from app.services.audit import Actor
from tests.factories import OrganizationFactory

KEY_RE = re.compile(r"ick_[0-9A-Za-z]{38}")


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def call_me(client, secret: str, address: str = "127.0.0.1"):
    return client.get("/api/v1/me", headers=bearer(secret), environ_base={"REMOTE_ADDR": address})


def reload(key_id: int) -> ApiKey:
    db.session.expire_all()
    return db.session.get(ApiKey, key_id)


def only_key_in(html: str) -> str:
    found = KEY_RE.findall(html)
    assert len(set(found)) == 1, found
    return found[0]


@pytest.fixture
def admin(make_member) -> User:
    return make_member(Role.ADMIN)


@pytest.fixture
def org(admin) -> Organization:
    return admin.memberships[0].organization


@pytest.fixture
def actor(admin) -> Actor:
    return Actor(user=admin, ip_address="192.0.2.1")


@pytest.fixture
def issue(org, actor):
    """Create a key in ``org`` through the service; returns (ApiKey, secret)."""

    def make(name: str = "CI", scopes=("data.read",), **kwargs) -> tuple[ApiKey, str]:
        return api_keys.create_key(org, actor, name, list(scopes), **kwargs)

    return make


@pytest.fixture
def signed_in(admin, login_as):
    return login_as(admin)


# --- the service's rules ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"name": "  "}, "name", "Give the key a name"),
        ({"name": "x" * 201}, "name", "at most 200"),
        ({"name": "a\x00b"}, "name", "NUL"),
        ({"scopes": ["data.read", "root", "data.delete"]}, "scopes", "Unknown scopes: data.delete, root."),
        ({"scopes": []}, "scopes", "at least one scope"),
        ({"expires_in_days": 0}, "expires_in_days", "from 1 to 3650"),
        ({"expires_in_days": 3651}, "expires_in_days", "from 1 to 3650"),
        ({"ip_allowlist": ["10.0.0.0/8", "10.0.0.300", "example.org"]}, "ip_allowlist", "10.0.0.300, example.org"),
        ({"rate_limit": "3/fortnight"}, "rate_limit", "N/minute"),
        ({"rate_limit": "0/minute"}, "rate_limit", "from 1 to"),
        ({"rate_limit": "3 per minute"}, "rate_limit", "e.g. 120/minute"),
    ],
)
def test_create_key_rejects_invalid_input(org, actor, changes, field, fragment):
    arguments = {"name": "CI", "scopes": ["data.read"], **changes}

    with pytest.raises(ValidationFailed) as raised:
        api_keys.create_key(org, actor, **arguments)

    assert fragment in " ".join(raised.value.errors[field])
    assert db.session.scalars(select(ApiKey)).all() == []


def test_create_key_normalises_its_settings(issue):
    key, _ = issue(scopes=["admin", "data.read", "data.read"], expires_in_days=30,
                   ip_allowlist=["10.1.2.3/16", " 2001:db8::1 ", "", "10.1.0.0/16"], rate_limit=" 5 / minute ")

    key = reload(key.id)
    assert key.scopes == ["data.read", "admin"]
    assert key.ip_allowlist == ["10.1.0.0/16", "2001:db8::1/128"]
    assert key.rate_limit == "5/minute"
    assert timedelta(days=29, hours=23) < key.expires_at - utcnow() <= timedelta(days=30)


def test_create_key_stores_only_a_keyed_hash(issue):
    key, secret = issue()

    row = db.session.execute(select(ApiKey.__table__).where(ApiKey.id == key.id)).mappings().one()
    assert row["key_hash"] == hash_key(secret) != secret
    assert row["prefix"] == secret[:12]
    assert not any(secret in str(value) for value in row.values())


def test_list_keys_is_newest_first_and_own_org_only(org, issue):
    first, _ = issue("first")
    second, _ = issue("second")
    api_keys.create_key(OrganizationFactory(), Actor(user=None), "elsewhere", ["data.read"])

    assert [k.name for k in api_keys.list_keys(org)] == ["second", "first"]
    assert {first.id, second.id} == {k.id for k in api_keys.list_keys(org)}


def test_get_key_of_another_organisation_is_not_found(issue):
    key, _ = issue()

    with pytest.raises(NotFound):
        api_keys.get_key(OrganizationFactory(), key.id)


def test_revoke_key_twice_keeps_the_first_revocation(org, actor, issue):
    key, _ = issue()

    first = api_keys.revoke_key(org, actor, key.id).revoked_at
    again = api_keys.revoke_key(org, actor, key.id).revoked_at

    assert first is not None and again == first
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action == "api_key.revoked")).all()
    assert actions == ["api_key.revoked"]


@pytest.mark.parametrize("grace_hours", [-1, 169, "soon"])
def test_regenerate_key_rejects_grace_outside_a_week(org, actor, issue, grace_hours):
    key, secret = issue()

    with pytest.raises(ValidationFailed) as raised:
        api_keys.regenerate_key(org, actor, key.id, grace_hours)

    assert "from 0 to 168" in raised.value.errors["grace_hours"][0]
    assert reload(key.id).key_hash == hash_key(secret)


@pytest.mark.parametrize("state", ["revoked_at", "expires_at"])
def test_regenerate_key_refuses_a_dead_key(org, actor, issue, state):
    key, secret = issue()
    setattr(key, state, utcnow() - timedelta(minutes=1))
    db.session.commit()

    with pytest.raises(Conflict, match="create a new key"):
        api_keys.regenerate_key(org, actor, key.id, 1)

    assert reload(key.id).key_hash == hash_key(secret)


def test_key_changes_are_audited_without_secrets(org, actor, issue):
    key, first = issue()
    _, second = api_keys.regenerate_key(org, actor, key.id, 2)
    api_keys.revoke_key(org, actor, key.id)

    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [e.action for e in events if e.action.startswith("api_key.")] == [
        "api_key.created", "api_key.regenerated", "api_key.revoked",
    ]
    assert {e.actor_label for e in events} == {actor.user.email}
    assert events[-2].details["grace_hours"] == 2
    dumped = json.dumps([[e.details, e.object_label] for e in events])
    assert first not in dumped and second not in dumped


# --- authenticating with a key ---------------------------------------------------------------------------------------

def test_api_key_authenticates_as_its_organisation(client, org, issue):
    _, secret = issue(scopes=["data.read", "imports.run"])

    response = call_me(client, secret)

    assert response.status_code == 200
    assert response.json["organization"]["slug"] == org.slug
    assert response.json["scopes"] == ["data.read", "imports.run"]


def _a_minute_ago():
    return utcnow() - timedelta(minutes=1)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("revoked_at", _a_minute_ago, "has been revoked"),
        ("expires_at", _a_minute_ago, "has expired"),
        ("ip_allowlist", lambda: ["198.51.100.0/24"], "may not be used from the address 127.0.0.1"),
    ],
)
def test_api_key_refused_says_why(client, issue, field, value, fragment):
    key, secret = issue()
    setattr(key, field, value())
    db.session.commit()

    response = call_me(client, secret)

    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert fragment in response.json["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("address", ["198.51.100.7", "2001:db8::42"])
def test_api_key_allowed_from_its_ranges(client, issue, address):
    _, secret = issue(ip_allowlist=["198.51.100.0/24", "2001:db8::/32"])

    assert call_me(client, secret, address).status_code == 200


NOT_VALID = "The API key is not valid."


def _flip(secret: str, index: int) -> str:
    return secret[:index] + ("A" if secret[index] != "A" else "B") + secret[index + 1:]


@pytest.mark.parametrize(
    ("mangle", "detail"),
    [
        (lambda s: _flip(s, -1), NOT_VALID),
        (lambda s: _flip(s, 10), NOT_VALID),
        (lambda s: s[:-1], NOT_VALID),
        (lambda s: s + "é", NOT_VALID),
        (lambda s: "garbage", "The bearer token is neither an Interchange API key nor an access token."),
    ],
    ids=["checksum-char", "random-char", "short", "non-ascii", "random-string"],
)
def test_api_key_malformed_is_refused_by_its_shape(client, issue, mangle, detail):
    _, secret = issue()

    response = call_me(client, mangle(secret))

    assert (response.status_code, response.json["detail"]) == (401, detail)


def test_api_key_well_formed_but_unknown_is_not_valid(client, issue):
    issue()

    response = call_me(client, generate_key())

    assert (response.status_code, response.json["detail"]) == (401, NOT_VALID)


def test_api_key_last_use_written_at_most_once_a_minute(client, issue):
    key, secret = issue()

    call_me(client, secret, "192.0.2.10")
    first = reload(key.id)
    used_at, used_from = first.last_used_at, first.last_used_ip
    call_me(client, secret, "192.0.2.11")
    second = reload(key.id)

    assert used_at is not None and used_from == "192.0.2.10"
    assert (second.last_used_at, second.last_used_ip) == (used_at, used_from)


def test_api_key_regenerated_with_grace_both_secrets_work(client, org, actor, issue):
    key, old = issue()

    _, new = api_keys.regenerate_key(org, actor, key.id, 24)

    assert new != old
    assert [call_me(client, s).status_code for s in (old, new)] == [200, 200]
    assert api_keys.key_status(reload(key.id)) == "grace"


@pytest.mark.parametrize("grace_hours", [0, 24])
def test_api_key_old_secret_after_grace_is_refused(client, org, actor, issue, grace_hours):
    key, old = issue()
    _, new = api_keys.regenerate_key(org, actor, key.id, grace_hours)
    key = reload(key.id)
    key.previous_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    refused = call_me(client, old)

    assert refused.status_code == 401
    assert "regenerated and its grace period is over" in refused.json["detail"]
    assert call_me(client, new).status_code == 200


# --- the console page ------------------------------------------------------------------------------------------------

def test_api_keys_page_without_keys_shows_empty_state(client, signed_in):
    html = client.get("/api-keys/").get_data(as_text=True)

    assert 'data-testid="empty-state"' in html
    assert "No API keys yet" in html


def test_api_keys_page_lists_prefix_and_status_not_secret(client, signed_in, issue):
    _, secret = issue("Payroll export", scopes=["data.read", "imports.run"])

    html = client.get("/api-keys/").get_data(as_text=True)

    assert "Payroll export" in html and f"{secret[:12]}…" in html
    assert "imports.run" in html and ">active</span>" in html
    assert secret not in html and not KEY_RE.search(html)


def test_api_keys_page_create_shows_the_key_once(client, signed_in, admin):
    form = {"name": "Nightly sync", "scopes": ["data.read", "data.write"], "expires_in_days": "90",
            "ip_allowlist": "203.0.113.0/24\r\n198.51.100.7", "rate_limit": "120/minute"}

    created = client.post("/api-keys/", data=form)

    assert (created.status_code, created.headers["Cache-Control"]) == (200, "no-store")
    html = created.get_data(as_text=True)
    secret = only_key_in(html)
    assert "it will not be shown again" in html and 'data-copy-target="new-api-key"' in html
    key = db.session.scalars(select(ApiKey)).one()
    assert (key.name, key.scopes, key.rate_limit, key.created_by_id) == (
        "Nightly sync", ["data.read", "data.write"], "120/minute", admin.id)
    assert key.ip_allowlist == ["203.0.113.0/24", "198.51.100.7/32"]
    assert secret not in client.get("/api-keys/").get_data(as_text=True)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "No scopes"}, "Choose at least one scope."),
        ({"name": "Bad", "scopes": "data.read", "rate_limit": "fast"}, "Write the limit as N/second"),
        ({"name": "Bad", "scopes": "data.read", "ip_allowlist": "not-an-ip"}, "Not an IP address or CIDR range"),
        ({"name": "Bad", "scopes": "data.read", "expires_in_days": "0"}, "Number must be between 1 and 3650."),
    ],
)
def test_api_keys_page_create_shows_field_errors(client, signed_in, form, message):
    response = client.post("/api-keys/", data=form)

    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalars(select(ApiKey)).all() == []


def test_api_keys_page_revoke_refuses_the_key(client, signed_in, issue):
    key, secret = issue()

    response = client.post(f"/api-keys/{key.id}/revoke", follow_redirects=True)

    assert response.status_code == 200
    assert ">revoked</span>" in response.get_data(as_text=True)
    refused = call_me(client, secret)
    assert (refused.status_code, refused.json["detail"]) == (401, "This API key has been revoked.")


def test_api_keys_page_regenerate_with_grace_shows_new_key_and_both_work(client, signed_in, issue):
    key, old = issue()

    response = client.post(f"/api-keys/{key.id}/regenerate", data={"grace_hours": "2"})

    new = only_key_in(response.get_data(as_text=True))
    assert new != old
    assert reload(key.id).previous_expires_at - utcnow() > timedelta(hours=1, minutes=59)
    assert [call_me(client, s).status_code for s in (old, new)] == [200, 200]


def test_api_keys_page_regenerate_outside_grace_range_changes_nothing(client, signed_in, issue):
    key, old = issue()

    response = client.post(f"/api-keys/{key.id}/regenerate", data={"grace_hours": "500"}, follow_redirects=True)

    assert "from 0 to 168" in response.get_data(as_text=True)
    assert reload(key.id).key_hash == hash_key(old)


# --- the CLI ---------------------------------------------------------------------------------------------------------

def test_cli_api_keys_create_prints_a_working_key_last(runner, client, org):
    result = runner.invoke(args=["api-keys", "create", "--org", org.slug, "--name", "Backup",
                                 "--scopes", "data.read imports.run", "--rate-limit", "30/minute",
                                 "--expires-in", "7"])

    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert KEY_RE.fullmatch(secret)
    key = db.session.scalars(select(ApiKey)).one()
    assert (key.name, key.scopes, key.rate_limit) == ("Backup", ["data.read", "imports.run"], "30/minute")
    assert call_me(client, secret).status_code == 200


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--org", "nope", "--scopes", "data.read"], "Organisation 'nope' not found."),
        (["--scopes", "data.read everything"], "Unknown scopes: everything."),
        (["--scopes", "data.read", "--rate-limit", "lots"], "rate_limit: Write the limit as N/second"),
        (["--scopes", "data.read", "--expires-in", "9999"], "expires_in_days: Use a whole number of days"),
    ],
)
def test_cli_api_keys_create_refuses_bad_input_with_a_message(runner, org, options, message):
    args = ["api-keys", "create", "--name", "Backup", *options]
    if "--org" not in options:
        args += ["--org", org.slug]

    result = runner.invoke(args=args)

    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert db.session.scalars(select(ApiKey)).all() == []


def test_cli_api_keys_revoke_stops_the_key(runner, client, org, issue):
    key, secret = issue()

    result = runner.invoke(args=["api-keys", "revoke", str(key.id), "--org", org.slug])

    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("revoked API key 'CI'")
    assert call_me(client, secret).status_code == 401


# --- the REST endpoints ----------------------------------------------------------------------------------------------

@pytest.fixture
def admin_key(issue) -> str:
    return issue("Automation", scopes=["admin"])[1]


def test_api_keys_endpoint_lists_without_secrets(client, issue, admin_key):
    key, secret = issue("Reader")

    response = client.get("/api/v1/api-keys", headers=bearer(admin_key))

    assert response.status_code == 200
    assert [k["name"] for k in response.json] == ["Reader", "Automation"]
    assert response.json[0]["prefix"] == secret[:12] and response.json[0]["status"] == "active"
    assert "key" not in response.json[0] and "key_hash" not in response.json[0]
    assert secret not in response.get_data(as_text=True) and admin_key not in response.get_data(as_text=True)


def test_api_keys_endpoint_creates_and_returns_the_key_once(client, org, admin_key):
    body = {"name": "Partner feed", "scopes": ["data.read"], "expires_in_days": 10, "rate_limit": "10/second"}

    response = client.post("/api/v1/api-keys", json=body, headers=bearer(admin_key))

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    secret = response.json["key"]
    assert KEY_RE.fullmatch(secret) and response.json["prefix"] == secret[:12]
    assert call_me(client, secret).json["name"].startswith("Partner feed")
    created = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "api_key.created")).all()[-1]
    assert created.actor_label.startswith("api-key:Automation")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "", "scopes": ["nope"], "rate_limit": "1/year"}, {"name", "scopes", "rate_limit"}),
        ({"name": "x", "scopes": "data.read", "expires_in_days": "soon"}, {"scopes", "expires_in_days"}),
        ({"name": "\ud800", "scopes": ["data.read"]}, {"name"}),
        ({"scopes": ["data.read"], "ip_allowlist": ["10.0.0.0/33"]}, {"name"}),
        ({"name": "x", "scopes": ["data.read"], "ip_allowlist": ["10.0.0.0/33"]}, {"ip_allowlist"}),
    ],
)
def test_api_keys_endpoint_create_names_invalid_fields(client, admin_key, body, fields):
    response = client.post("/api/v1/api-keys", json=body, headers=bearer(admin_key))

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert set(response.json["errors"]) == fields
    assert [k.name for k in db.session.scalars(select(ApiKey))] == ["Automation"]


def test_api_keys_endpoint_without_credentials_is_401_before_the_body_is_read(client):
    response = client.post("/api/v1/api-keys", data="{not json", content_type="application/json")

    assert response.status_code == 401


def test_api_keys_endpoint_delete_revokes(client, issue, admin_key):
    key, secret = issue()

    response = client.delete(f"/api/v1/api-keys/{key.id}", headers=bearer(admin_key))

    assert (response.status_code, response.get_data()) == (204, b"")
    assert call_me(client, secret).json["detail"] == "This API key has been revoked."


def test_api_keys_endpoint_regenerate_returns_the_new_key(client, issue, admin_key):
    key, old = issue()

    response = client.post(f"/api/v1/api-keys/{key.id}/regenerate", json={"grace_hours": 1},
                           headers=bearer(admin_key))

    assert (response.status_code, response.headers["Cache-Control"]) == (200, "no-store")
    new = response.json["key"]
    assert response.json["status"] == "grace" and new != old
    assert [call_me(client, s).status_code for s in (old, new)] == [200, 200]


def test_api_keys_endpoint_needs_the_admin_scope(client, issue):
    _, reader = issue(scopes=["data.read", "data.write"])

    response = client.get("/api/v1/api-keys", headers=bearer(reader))

    assert response.status_code == 403
    assert "'admin' scope" in response.json["detail"]


@pytest.mark.parametrize(("method", "suffix"), [("delete", ""), ("post", "/regenerate")])
def test_api_keys_endpoint_another_organisations_key_is_not_found(client, admin_key, method, suffix):
    other, secret = api_keys.create_key(OrganizationFactory(), Actor(user=None), "Theirs", ["data.read"])

    response = getattr(client, method)(f"/api/v1/api-keys/{other.id}{suffix}", json={},
                                       headers=bearer(admin_key))

    assert response.status_code == 404
    assert reload(other.id).key_hash == hash_key(secret) and reload(other.id).revoked_at is None
