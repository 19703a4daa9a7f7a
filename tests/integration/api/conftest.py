"""Fixtures for the REST API tests: API keys made straight from the model, and a client that sends them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import ApiKey, Organization
from app.security import api_keys
from tests.factories import OrganizationFactory

# High enough that no test of these files meets the rate limit by accident (the rate-limit tests set their own).
UNLIMITED = "100000/minute"


def new_api_key(org: Organization, scopes: Iterable[str] = ("admin",), **fields: Any) -> tuple[ApiKey, str]:
    """An API key row of ``org`` and its secret, made as the key service stores keys (keyed hash + prefix)."""
    secret = api_keys.generate_key()
    fields.setdefault("rate_limit", UNLIMITED)
    key = ApiKey(
        organization_id=org.id,
        name=fields.pop("name", "test key"),
        prefix=api_keys.display_prefix(secret),
        key_hash=api_keys.hash_key(secret),
        scopes=list(scopes),
        **fields,
    )
    db.session.add(key)
    db.session.commit()
    return key, secret


def as_json(values: dict[str, Any]) -> dict[str, Any]:
    """Service values (dates, decimals) as a script would send them in JSON."""
    def plain(value: Any) -> Any:
        if isinstance(value, date):
            return value.isoformat()
        return str(value) if isinstance(value, Decimal) else value

    return {name: plain(value) for name, value in values.items()}


class ApiClient:
    """Flask's test client with ``Authorization: Bearer <token>`` on every request."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def open(self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs):
        headers = dict(headers or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, url: str, **kwargs):
        return self.open("GET", url, **kwargs)

    def post(self, url: str, **kwargs):
        return self.open("POST", url, **kwargs)

    def put(self, url: str, **kwargs):
        return self.open("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs):
        return self.open("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs):
        return self.open("DELETE", url, **kwargs)


@pytest.fixture
def generous_anonymous_limit(app: Flask, monkeypatch) -> None:
    """Lift the per-address limit on failed credentials, for tests that send many of them."""
    monkeypatch.setitem(app.config, "API_ANONYMOUS_RATE_LIMIT", UNLIMITED)


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory()


@pytest.fixture
def api_key(org: Organization) -> tuple[ApiKey, str]:
    return new_api_key(org, scopes=("data.read", "data.write"), name="CI sync")


@pytest.fixture
def api(client: FlaskClient, api_key: tuple[ApiKey, str]) -> ApiClient:
    """A client holding a data.read + data.write key of ``org``."""
    return ApiClient(client, api_key[1])
