"""schemathesis against our own OpenAPI document, in-process over WSGI.

Every operation in /api/v1/openapi.json gets a bounded number of generated requests (valid
and invalid ones) from a key with every scope; no answer may be a 5xx, and every answer must
match what the document promises (status code, content type, headers, body schema). The run
is derandomised, so it explores the same cases every time.
"""

from __future__ import annotations

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.models import Organization
from tests.integration.api.conftest import new_api_key
from tests.integration.contracts import CONTRACTS

# Generated requests without a valid credential would soon meet the per-address limit (429).
pytestmark = pytest.mark.usefixtures("generous_anonymous_limit")

MAX_EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 4,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        # The examples phase and MAX_EXAMPLES fuzzed requests per operation, valid and invalid. The coverage
        # phase (every boundary of every field, ~4,000 requests) would take minutes; stateful runs need links,
        # which the document does not declare.
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)


@pytest.fixture
def api_schema(app: Flask):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=CONFIG)


@pytest.fixture
def seeded(org: Organization) -> Organization:
    """A few records of every entity, so small generated ids name real rows and lists have content."""
    for contract in CONTRACTS.values():
        for _ in range(3):
            contract.make(org)
    return org


@pytest.fixture(autouse=True)
def node_id_for_schemathesis(request):
    """schemathesis 4 renames the test node through ``_nodeid``, which pytest 9.2 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_schemathesis_answers_conform_and_never_fail(case, seeded):
    # A fresh key per request: a generated DELETE /api-keys/{id} may revoke the one used before.
    _, secret = new_api_key(seeded, scopes=["admin"])

    headers = {"Authorization": f"Bearer {secret}"}

    response = case.call(headers=headers)

    case.validate_response(response, checks=CHECKS, headers=headers)
