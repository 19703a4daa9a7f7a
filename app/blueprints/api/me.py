"""GET /api/v1/me: who the caller is, its organisation and scopes."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint

from app.security.api_auth import current_principal, require_scope

bp = Blueprint("api_me", __name__, description="The caller")


class OrganizationRef(ma.Schema):
    id = ma.fields.Integer(required=True)
    slug = ma.fields.String(required=True)
    name = ma.fields.String(required=True)


class MeSchema(ma.Schema):
    credential = ma.fields.String(required=True, metadata={"description": "api_key or oauth"})
    name = ma.fields.String(required=True, metadata={"description": "The key's or the OAuth app's name"})
    organization = ma.fields.Nested(OrganizationRef, required=True)
    scopes = ma.fields.List(ma.fields.String(), required=True)


@bp.get("/me")
@bp.doc(security=[{"bearerAuth": []}])
@bp.response(200, MeSchema)
@require_scope("data.read")
def me():
    """The credential making this request."""
    principal = current_principal()
    return {
        "credential": principal.kind,
        "name": principal.label,
        "organization": principal.organization,
        "scopes": sorted(principal.scopes),
    }
