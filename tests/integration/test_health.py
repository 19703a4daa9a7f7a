"""Liveness and readiness probes: public, JSON, and silent about why a check failed."""

from __future__ import annotations

from tests.jobs_for_tests import UNREACHABLE_REDIS_URL, app_with_redis


def test_healthz_is_ok_without_sign_in(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ready_with_database_and_redis(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": {"ok": True}, "redis": {"ok": True}}}


def test_readyz_is_unavailable_without_redis_and_keeps_the_reason_private(app):
    offline = app_with_redis(app, UNREACHABLE_REDIS_URL)

    response = offline.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready", "checks": {"database": {"ok": True}, "redis": {"ok": False}}}
    body = response.get_data(as_text=True)
    for leak in ("127.0.0.1", "Connection refused", "Error 111", "redis://"):
        assert leak not in body
