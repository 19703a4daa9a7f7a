"""The REST API under /api/v1: flask-smorest generates the OpenAPI document from the code.

Every resource module exposes a flask-smorest ``bp``; each view is guarded by
``require_scope`` (app/security/api_auth.py). Errors are problem+json, rendered
by app/blueprints/errors for every path under /api/.
"""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from app.blueprints.api.schemas.common import PROBLEM_JSON, ProblemSchema
from app.extensions import csrf
from app.security import public


class ProblemApi(Api):
    """flask-smorest's Api, documenting its shared error responses as they are sent: problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        self.DEFAULT_RESPONSE_CONTENT_TYPE = PROBLEM_JSON
        try:
            super()._register_responses()
        finally:
            del self.DEFAULT_RESPONSE_CONTENT_TYPE  # success responses stay application/json


api = ProblemApi()

API_PREFIX = "/api/v1"

DESCRIPTION = """\
The Interchange REST API. Authenticate with `Authorization: Bearer <token>`, where the token is an
API key (`ick_...`, created on the API keys page or with `flask --app wsgi api-keys create`) or an
OAuth 2.0 access token (`ica_...`). Every credential belongs to one organisation and carries scopes.

Errors are `application/problem+json` (RFC 9457). Every response carries rate-limit headers
(`RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`); over the limit the answer is 429 with `Retry-After`.
"""


def init_api(app: Flask) -> None:
    from app.blueprints.api import api_keys, docs, exports, import_templates, imports, me, records

    app.config.update(
        API_TITLE="Interchange API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
    )
    api.init_app(
        app,
        spec_kwargs={
            "info": {"description": DESCRIPTION},
            "servers": [{"url": "/", "description": "This Interchange"}],
        },
    )
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An API key or an OAuth access token"}
    )
    for resource in (me, api_keys, records, imports, import_templates, exports):
        csrf.exempt(resource.bp)
        api.register_blueprint(resource.bp, url_prefix=API_PREFIX)
    # The OpenAPI document is public, like any published API reference.
    spec_view = app.view_functions["api-docs.openapi_json"]
    app.view_functions["api-docs.openapi_json"] = public(lambda: spec_view())
    app.register_blueprint(docs.bp)
