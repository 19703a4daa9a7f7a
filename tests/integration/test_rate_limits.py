"""API rate limits: per key, the configured default, per address for failed credentials, the reset, fail-open.

Counters live in the test Redis (flushed after each test). The reset test sleeps past a one-second
window; no test asserts how long anything took.
"""

from __future__ import annotations

import re
import time

import pytest

from app.models import Role
from app.services import api_keys
from app.services.audit import Actor
from tests.jobs_for_tests import UNREACHABLE_REDIS_URL, app_with_redis

RATE_HEADERS = ("RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@pytest.fixture
def org(make_member):
    return make_member(Role.ADMIN).memberships[0].organization


@pytest.fixture
def key_with(org):
    """A data.read key's secret, with ``rate_limit`` as its own limit (None: the default)."""

    def make(rate_limit: str | None) -> str:
        return api_keys.create_key(org, Actor(user=None), "Limited", ["data.read"], rate_limit=rate_limit)[1]

    return make


def get_me(client, token: str):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_rate_limit_counts_down_then_refuses_with_429(client, key_with):
    secret = key_with("3/minute")

    answers = [get_me(client, secret) for _ in range(4)]

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    assert [re.search(r";r=(\d+);", r.headers["RateLimit"]).group(1) for r in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Policy"] == '"default";q=3;w=60'
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    assert int(answers[0].headers["X-RateLimit-Reset"]) > time.time()


def test_rate_limit_429_is_problem_json_with_retry_after(client, key_with):
    secret = key_with("1/minute")
    get_me(client, secret)

    refused = get_me(client, secret)

    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert refused.json["title"] == "Too many requests"
    assert "Rate limit of 1 requests per 60 seconds exceeded" in refused.json["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert all(name in refused.headers for name in RATE_HEADERS)
    assert refused.headers["X-RateLimit-Remaining"] == "0"


def test_rate_limit_resets_after_the_window(client, key_with):
    secret = key_with("3/second")
    assert [get_me(client, secret).status_code for _ in range(4)] == [200, 200, 200, 429]

    time.sleep(1.1)
    again = get_me(client, secret)

    assert again.status_code == 200
    assert again.headers["X-RateLimit-Remaining"] == "2"


def test_rate_limit_is_counted_per_key(client, key_with):
    first, second = key_with("1/minute"), key_with("1/minute")

    assert [get_me(client, first).status_code, get_me(client, first).status_code] == [200, 429]
    assert get_me(client, second).status_code == 200


def test_rate_limit_default_from_config_applies_to_a_key_without_its_own(app, client, key_with, monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT", "2/minute")
    secret = key_with(None)

    answers = [get_me(client, secret) for _ in range(3)]

    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[0].headers["X-RateLimit-Limit"] == "2"


def test_rate_limit_of_a_key_overrides_the_default(app, client, key_with, monkeypatch):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT", "1/minute")
    secret = key_with("5/minute")

    answers = [get_me(client, secret) for _ in range(2)]

    assert [r.status_code for r in answers] == [200, 200]
    assert answers[1].headers["X-RateLimit-Limit"] == "5"


def test_rate_limit_failed_credentials_are_limited_per_address(app, client, key_with, monkeypatch):
    monkeypatch.setitem(app.config, "API_ANONYMOUS_RATE_LIMIT", "2/minute")
    secret = key_with(None)

    def attempt(address: str):
        return client.get("/api/v1/me", headers={"Authorization": "Bearer ick_guess"},
                          environ_base={"REMOTE_ADDR": address})

    guesses = [attempt("192.0.2.50") for _ in range(3)]

    assert [r.status_code for r in guesses] == [401, 401, 429]
    assert guesses[2].headers["Retry-After"]
    assert attempt("192.0.2.51").status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"},
                      environ_base={"REMOTE_ADDR": "192.0.2.50"}).status_code == 200


@pytest.fixture
def redis_down_client(app):
    return app_with_redis(app, UNREACHABLE_REDIS_URL).test_client()


def test_rate_limit_fails_open_when_redis_is_unreachable(redis_down_client, key_with):
    secret = key_with("1/minute")

    answers = [get_me(redis_down_client, secret) for _ in range(2)]

    assert [r.status_code for r in answers] == [200, 200]
    assert answers[1].json["scopes"] == ["data.read"]
    assert not any(name in answers[1].headers for name in RATE_HEADERS)


def test_rate_limit_organisation_default_applies_to_keys_without_their_own(client, org, key_with):
    api_keys.set_default_rate_limit(org, Actor(user=None), "2/minute")
    secret = key_with(None)

    answers = [get_me(client, secret) for _ in range(3)]

    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[0].headers["X-RateLimit-Limit"] == "2"


def test_rate_limit_key_limit_overrides_the_organisation_default(client, org, key_with):
    api_keys.set_default_rate_limit(org, Actor(user=None), "2/minute")
    secret = key_with("5/minute")

    assert get_me(client, secret).headers["X-RateLimit-Limit"] == "5"


def test_rate_limit_organisation_default_is_set_on_the_api_keys_page(client, org, make_member, login_as):
    login_as(make_member(Role.ADMIN, org=org))

    saved = client.post("/api-keys/default-rate-limit", data={"default_rate_limit": "120/minute"})
    refused = client.post("/api-keys/default-rate-limit", data={"default_rate_limit": "lots"}, follow_redirects=True)

    assert saved.status_code == 302
    assert org.api_rate_limit == "120/minute"
    assert "Write the limit as N/second" in refused.text
    assert org.api_rate_limit == "120/minute"


def test_rate_limit_organisation_default_page_needs_admin(client, org, make_member, login_as):
    login_as(make_member(Role.OPERATOR, org=org))

    assert client.post("/api-keys/default-rate-limit", data={"default_rate_limit": "1/minute"}).status_code == 403
    assert org.api_rate_limit is None
