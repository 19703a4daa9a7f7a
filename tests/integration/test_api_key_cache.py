"""The per-process API key cache and the one-round-trip rate limit (app/security/api_key_cache.py, rate_limits.py).

A key checked once is served from memory (no SQL), yet any revocation, regeneration or
organisation change is refused or applied on the very next request, in this process and in
another one (a second app on the same database and Redis stands for another worker). Without
Redis nothing is cached and a revoked key is still refused. The Lua script counts on the
``limits`` library's own moving window, so the library reads and refuses what we counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from limits import parse
from sqlalchemy import event

from app.extensions import db, redis_store
from app.models import ApiKey, Organization, Role
from app.security import api_key_cache, rate_limits
from app.services import api_keys
from app.services.audit import Actor
from tests.jobs_for_tests import UNREACHABLE_REDIS_URL, app_with_redis

ACTOR = Actor(user=None, label_override="test")


@pytest.fixture
def org(make_member) -> Organization:
    return make_member(Role.ADMIN).memberships[0].organization


@pytest.fixture
def key(org) -> tuple[ApiKey, str]:
    return api_keys.create_key(org, ACTOR, "Cached", ["data.read"])


def get_me(client, secret: str):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})


@contextmanager
def sql_statements() -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def key_queries(statements: list[str]) -> list[str]:
    return [s for s in statements if "api_keys" in s]


@pytest.fixture
def other_worker(app):
    """Another process's app: same database and Redis, its own key cache."""
    other = app_with_redis(app, app.config["REDIS_URL"])
    return other


def test_a_checked_key_is_served_without_querying_the_key_again(client, key):
    _, secret = key
    assert get_me(client, secret).status_code == 200

    with sql_statements() as statements:
        again = get_me(client, secret)

    assert again.status_code == 200
    assert again.json["scopes"] == ["data.read"]
    assert key_queries(statements) == []


@pytest.fixture(params=["redis up", "redis down"])
def any_client(request, app, client):
    """The test client, and one whose Redis is unreachable (nothing cached, rate limits fail open)."""
    return client if request.param == "redis up" else app_with_redis(app, UNREACHABLE_REDIS_URL).test_client()


def test_a_revoked_key_is_refused_on_the_next_request_after_a_served_one(any_client, org, key):
    api_key, secret = key
    assert [get_me(any_client, secret).status_code for _ in range(2)] == [200, 200]

    api_keys.revoke_key(org, ACTOR, api_key.id)
    refused = get_me(any_client, secret)

    assert refused.status_code == 401
    assert "revoked" in refused.json["detail"]


def test_a_key_revoked_by_another_process_is_refused_at_once(client, key, other_worker):
    api_key, secret = key
    assert [get_me(client, secret).status_code for _ in range(2)] == [200, 200]

    with other_worker.app_context():
        other_org = db.session.get(Organization, api_key.organization_id)
        api_keys.revoke_key(other_org, ACTOR, api_key.id)
        db.session.remove()
    db.session.expire_all()
    refused = get_me(client, secret)

    assert refused.status_code == 401
    assert "revoked" in refused.json["detail"]


def test_a_regenerated_key_without_grace_stops_at_once_and_the_new_one_works(client, org, key):
    api_key, old_secret = key
    assert get_me(client, old_secret).status_code == 200

    _, new_secret = api_keys.regenerate_key(org, ACTOR, api_key.id, grace_hours=0)

    refused = get_me(client, old_secret)
    assert refused.status_code == 401
    assert "regenerated" in refused.json["detail"]
    assert get_me(client, new_secret).status_code == 200


def test_a_regenerated_key_with_grace_keeps_working_from_the_cache(client, org, key):
    api_key, old_secret = key
    api_keys.regenerate_key(org, ACTOR, api_key.id, grace_hours=2)
    assert get_me(client, old_secret).status_code == 200

    with sql_statements() as statements:
        again = get_me(client, old_secret)

    assert again.status_code == 200
    assert key_queries(statements) == []


def test_a_new_organisation_default_limit_applies_on_the_next_request(client, org, key):
    _, secret = key
    assert get_me(client, secret).headers["X-RateLimit-Limit"] == "600"

    api_keys.set_default_rate_limit(org, ACTOR, "5/minute")
    answer = get_me(client, secret)

    assert answer.headers["X-RateLimit-Limit"] == "5"
    assert answer.headers["RateLimit-Policy"] == '"default";q=5;w=60'


def test_a_flushed_redis_makes_the_next_request_check_the_database(client, key):
    _, secret = key
    assert get_me(client, secret).status_code == 200

    redis_store.client.flushdb()  # the generation token is gone, as after a Redis restart
    with sql_statements() as statements:
        answer = get_me(client, secret)

    assert answer.status_code == 200
    assert key_queries(statements), "a cached entry was trusted although its generation was lost"


def test_recording_last_use_does_not_invalidate_the_cache(client, key):
    api_key, secret = key
    get_me(client, secret)
    token = redis_store.client.get(api_key_cache.GENERATION_KEY)

    db.session.expire_all()
    assert db.session.get(ApiKey, api_key.id).last_used_at is not None
    assert redis_store.client.get(api_key_cache.GENERATION_KEY) == token


def test_the_cache_can_be_turned_off(app, client, key, monkeypatch):
    monkeypatch.setitem(app.config, "API_KEY_CACHE_SECONDS", 0)
    _, secret = key
    get_me(client, secret)

    with sql_statements() as statements:
        assert get_me(client, secret).status_code == 200

    assert key_queries(statements)


def test_the_one_round_trip_count_is_the_limits_librarys_moving_window(app, client, org):
    _, secret = api_keys.create_key(org, ACTOR, "Three", ["data.read"], rate_limit="3/minute")
    answers = [get_me(client, secret) for _ in range(3)]
    api_key = db.session.scalars(db.select(ApiKey).where(ApiKey.name == "Three")).one()

    limiter = rate_limits._limiter()
    item = parse("3/minute")
    stats = limiter.get_window_stats(item, "api", f"key:{api_key.id}")
    assert stats.remaining == 0
    assert not limiter.test(item, "api", f"key:{api_key.id}")
    assert int(answers[0].headers["X-RateLimit-Reset"]) == int(-(-stats.reset_time // 1))
    assert get_me(client, secret).status_code == 429

    limiter.clear(item, "api", f"key:{api_key.id}")
    assert get_me(client, secret).headers["X-RateLimit-Remaining"] == "2"


def test_the_script_is_loaded_again_after_redis_forgets_it(client, key):
    _, secret = key
    get_me(client, secret)
    redis_store.client.script_flush()

    answers = [get_me(client, secret) for _ in range(2)]

    assert [a.status_code for a in answers] == [200, 200]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["598", "597"]
    assert re.fullmatch(r'"default";r=597;t=\d+', answers[1].headers["RateLimit"])
