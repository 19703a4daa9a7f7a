"""Exports over REST: ``POST /export`` starts one, ``GET /export/{id}`` polls it, ``/download`` fetches the file.

The same service as the console's Exports page (app/services/exports.py): the same checks, the same
job, the same tenancy (another organisation's export id is 404). Exports read records, so the scope
is ``data.read``.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import send_file, url_for

from app.blueprints.api.parsing import Blueprint
from app.importers.exports import CONTENT_TYPES, FORMATS
from app.importers.specs import ENTITY_SPECS
from app.models import ExportJob
from app.security.api_auth import api_actor, current_principal, require_scope
from app.services import exports

bp = Blueprint("api_exports", __name__, description="Exports of any entity to XLSX, CSV, JSON or XML")

SECURITY = [{"bearerAuth": []}]
ERRORS = {
    401: "No valid credential",
    403: "The credential lacks the scope",
    404: "No such export in the credential's organisation",
    410: "The export has no file (not finished, failed, or expired)",
    422: "Invalid input; errors names each problem",
    429: "Over the rate limit; see Retry-After",
}


class ExportRequestSchema(ma.Schema):
    entity = ma.fields.String(required=True, metadata={"description": f"One of {', '.join(ENTITY_SPECS)}"})
    format = ma.fields.String(required=True, metadata={"description": f"One of {', '.join(FORMATS)}"})
    columns = ma.fields.List(
        ma.fields.String(), load_default=None,
        metadata={"description": "Field names to export (default: all, in template order)", "example": ["email"]},
    )
    filters = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Raw(), load_default=None,
        metadata={"description": "The entity's list filters and `q` (search), as on its list page",
                  "example": {"active": "1", "q": "ada"}},
    )


class ExportStatusSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    entity = ma.fields.String(required=True)
    format = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"description": "queued, running, completed, failed, errored"})
    columns = ma.fields.List(ma.fields.String(), required=True)
    filters = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)
    processed = ma.fields.Integer(required=True, metadata={"description": "Rows written so far"})
    total = ma.fields.Integer(allow_none=True, metadata={"description": "Rows to write, once counted"})
    row_count = ma.fields.Integer(allow_none=True)
    file_size = ma.fields.Integer(allow_none=True, metadata={"description": "Bytes"})
    error = ma.fields.String(allow_none=True)
    requested_by = ma.fields.String(required=True)
    created_at = ma.fields.String(required=True)
    started_at = ma.fields.String(allow_none=True)
    finished_at = ma.fields.String(allow_none=True)
    expired = ma.fields.Boolean(required=True, metadata={"description": "The file was removed by retention"})
    status_url = ma.fields.String(required=True)
    download_url = ma.fields.String(required=True)


def _status(export: ExportJob) -> dict[str, Any]:
    return exports.serialize_export(export, {
        "status_url": url_for("api_exports.status", export_id=export.id, _external=True),
        "download_url": url_for("api_exports.download", export_id=export.id, _external=True),
    })


@bp.route("/export", methods=["POST"], endpoint="start")
@require_scope("data.read")
@bp.arguments(ExportRequestSchema, location="json")
@bp.response(202, ExportStatusSchema, description="The export is queued; poll status_url",
             headers={"Location": {"description": "The status URL", "schema": {"type": "string"}}})
@bp.problems(ERRORS, 401, 403, 422, 429)
@bp.doc(summary="Start an export", tags=["Exports"], security=SECURITY)
def start(body: dict[str, Any]):
    """Export an entity, filtered as on its list page, to a file; runs in the background."""
    export = exports.start_export(current_principal().organization, api_actor(), body["entity"], body["format"],
                                  body.get("columns"), body.get("filters"))
    status = _status(export)
    return status, 202, {"Location": status["status_url"]}


@bp.route("/export/<int:export_id>", methods=["GET"], endpoint="status")
@require_scope("data.read")
@bp.response(200, ExportStatusSchema, description="The export's status and progress")
@bp.problems(ERRORS, 401, 403, 404, 429)
@bp.doc(summary="Read an export's status", tags=["Exports"], security=SECURITY)
def status(export_id: int):
    """Status, rows done of total, and the download URL once completed."""
    return _status(exports.get_export(current_principal().organization, export_id))


@bp.route("/export/<int:export_id>/download", methods=["GET"], endpoint="download")
@require_scope("data.read")
@bp.problems(ERRORS, 401, 403, 404, 410, 429)
@bp.doc(summary="Download an export's file", tags=["Exports"], security=SECURITY, responses={
    200: {"description": "The file; the X-Export-* headers carry its metadata (entity, filters, row count ...)",
          "content": {content_type.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
                      for content_type in CONTENT_TYPES.values()}},
})
def download(export_id: int):
    """The finished file, with its metadata in ``X-Export-*`` headers."""
    found = exports.download(current_principal().organization, api_actor(), export_id)
    response = send_file(found.path, mimetype=found.content_type, as_attachment=True, download_name=found.filename)
    response.headers.update(found.headers)
    return response
