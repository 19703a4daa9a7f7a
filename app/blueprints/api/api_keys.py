"""/api/v1/api-keys: list, create, revoke and regenerate the organisation's API keys (scope ``admin``).

The same service as the console page and the CLI (app/services/api_keys.py).
A secret appears in exactly two responses, create and regenerate, in ``key``.
``require_scope`` sits right under the route, so a caller without a valid
credential gets 401 before its body is even parsed.
"""

from __future__ import annotations

import marshmallow as ma

from app.blueprints.api.parsing import Blueprint
from app.blueprints.api.schemas.common import Text
from app.models import ApiKey
from app.security.api_auth import api_actor, current_principal, require_scope
from app.security.scopes import SCOPES
from app.services import api_keys

bp = Blueprint("api_api_keys", __name__, description="API keys of the caller's organisation")

SCOPES_HELP = "Scopes the key carries: " + ", ".join(SCOPES) + ". `admin` implies every other scope."


class ApiKeySchema(ma.Schema):
    id = ma.fields.Integer(required=True, metadata={"example": 12})
    name = ma.fields.String(required=True, metadata={"example": "Nightly payroll export"})
    prefix = ma.fields.String(required=True, metadata={
        "description": "The key's first characters, to tell keys apart", "example": "ick_4Fq9zK2a",
    })
    scopes = ma.fields.List(ma.fields.String(), required=True,
                            metadata={"description": SCOPES_HELP, "example": ["data.read"]})
    ip_allowlist = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "CIDR ranges the key may be used from; empty means anywhere", "example": ["203.0.113.0/24"],
    })
    rate_limit = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "The key's own limit; null means the organisation's default", "example": "120/minute",
    })
    status = ma.fields.String(required=True, metadata={
        "description": "active, grace (a previous secret still works), expired or revoked", "example": "active",
    })
    expires_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    revoked_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    previous_expires_at = ma.fields.AwareDateTime(allow_none=True, required=True, metadata={
        "description": "Until when the secret before the last regeneration still works",
    })
    last_used_at = ma.fields.AwareDateTime(allow_none=True, required=True, metadata={
        "description": "Updated at most once a minute",
    })
    last_used_ip = ma.fields.String(allow_none=True, required=True, metadata={"example": "203.0.113.7"})
    created_at = ma.fields.AwareDateTime(required=True)
    created_by = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "Email of the member who created it; null when made by the CLI or the API",
    })


class ApiKeyWithSecretSchema(ApiKeySchema):
    key = ma.fields.String(required=True, metadata={
        "description": "The secret. Shown only in this response: store it now.",
        "example": "ick_4Fq9zK2aXXXXXXXXXXXXXXXXXXXXXXXX0a1B2c",
    })


class ApiKeyCreateSchema(ma.Schema):
    name = Text(required=True, metadata={"example": "Nightly payroll export"})
    scopes = ma.fields.List(Text(), required=True,
                            metadata={"description": SCOPES_HELP, "example": ["data.read", "data.write"]})
    expires_in_days = ma.fields.Integer(allow_none=True, load_default=None, metadata={
        "description": "Days until the key expires (1 to 3650); null or absent: never", "example": 90,
    })
    ip_allowlist = ma.fields.List(Text(), load_default=list, metadata={
        "description": "IP addresses or CIDR ranges; empty: any address", "example": ["203.0.113.0/24"],
    })
    rate_limit = Text(allow_none=True, load_default=None, metadata={
        "description": "N/second, N/minute, N/hour or N/day; null: the organisation's default",
        "example": "120/minute",
    })


class RegenerateSchema(ma.Schema):
    grace_hours = ma.fields.Integer(load_default=0, metadata={
        "description": "Hours the old secret keeps working (0 to 168); 0 stops it at once", "example": 24,
    })


ERRORS = {
    401: "No valid credential (missing, malformed, revoked, expired or used from a refused address)",
    403: "The credential lacks the admin scope",
    404: "No such key in the credential's organisation",
    409: "The key is revoked or expired and cannot be regenerated",
    422: "Invalid input; errors names each field",
    429: "Over the rate limit; see Retry-After",
}


# A response carrying a secret must not be kept by any cache (as RFC 6749 asks of token responses).
NO_STORE = {"Cache-Control": "no-store"}

FIELDS = ("id", "name", "prefix", "scopes", "ip_allowlist", "rate_limit", "expires_at", "revoked_at",
          "previous_expires_at", "last_used_at", "last_used_ip", "created_at")


def _view(key: ApiKey, secret: str | None = None) -> dict:
    view = {name: getattr(key, name) for name in FIELDS}
    view.update(status=api_keys.key_status(key), created_by=key.created_by.email if key.created_by else None)
    if secret is not None:
        view["key"] = secret
    return view


@bp.get("/api-keys")
@require_scope("admin")
@bp.doc(security=[{"bearerAuth": []}])
@bp.response(200, ApiKeySchema(many=True))
@bp.problems(ERRORS, 401, 403, 429)
def list_keys():
    """The organisation's API keys, newest first. Secrets are never returned."""
    return [_view(key) for key in api_keys.list_keys(current_principal().organization)]


@bp.post("/api-keys")
@require_scope("admin")
@bp.doc(security=[{"bearerAuth": []}])
@bp.arguments(ApiKeyCreateSchema)
@bp.response(201, ApiKeyWithSecretSchema)
@bp.problems(ERRORS, 401, 403, 422, 429)
def create_key(data: dict):
    """Create a key. The response's `key` is the secret, returned this once."""
    return _view(*api_keys.create_key(current_principal().organization, api_actor(), **data)), 201, NO_STORE


@bp.delete("/api-keys/<int:key_id>")
@require_scope("admin")
@bp.doc(security=[{"bearerAuth": []}])
@bp.response(204)
@bp.problems(ERRORS, 401, 403, 404, 429)
def revoke_key(key_id: int):
    """Revoke a key at once. Revoking a revoked key changes nothing."""
    api_keys.revoke_key(current_principal().organization, api_actor(), key_id)


@bp.post("/api-keys/<int:key_id>/regenerate")
@require_scope("admin")
@bp.doc(security=[{"bearerAuth": []}])
@bp.arguments(RegenerateSchema)
@bp.response(200, ApiKeyWithSecretSchema)
@bp.problems(ERRORS, 401, 403, 404, 409, 422, 429)
def regenerate_key(data: dict, key_id: int):
    """Give a key a new secret, returned this once in `key`; the old one works for `grace_hours`."""
    key, secret = api_keys.regenerate_key(current_principal().organization, api_actor(), key_id, data["grace_hours"])
    return _view(key, secret), 200, NO_STORE
