"""/api/v1/import: upload a file, validate it, execute it, follow it, cancel or undo it (scope ``imports.run``).

The same service as the wizard (app/services/import_jobs.py), so a script gets the same checks, the
same counts and the same row-level errors. Validation, execution and undo run in the background:
those calls answer 202 and ``GET /import/{id}/status`` follows them. Problems with the file as a whole
are 422 problem+json naming the ``file`` (with the row and column when a place is known); problems with
rows are in the status, each with its row, column, value and what was expected, and all of them in the
error file (``GET /import/{id}/errors?format=csv|xlsx``).
"""

from __future__ import annotations

import marshmallow as ma
from flask import send_file

from app.blueprints.api.parsing import Blueprint
from app.blueprints.api.schemas.common import Text
from app.importers import ENTITY_SPECS
from app.models import ImportJob
from app.models.imports import IMPORT_MODES, IMPORT_ON_ERROR
from app.security.api_auth import api_actor, current_principal, require_scope
from app.services import import_jobs
from app.services.import_jobs import MAX_HEADER_ROW
from app.services.records import MAX_ID

bp = Blueprint("api_imports", __name__, description="Imports: upload, validate, execute, status, cancel, undo")

SCOPE = "imports.run"
ERRORS = {
    401: "No valid credential",
    403: "The credential lacks the imports.run scope",
    404: "No such import in the credential's organisation",
    409: "The import is not in a state that allows this (busy, already run, or undo would lose later changes)",
    413: "The upload is larger than the size limit",
    422: "Invalid input or an unusable file; errors names each field (file, mapping, mode, ...)",
    429: "Over the rate limit; see Retry-After",
}


class UploadFormSchema(ma.Schema):
    entity = Text(required=True, validate=ma.validate.OneOf(list(ENTITY_SPECS)), metadata={
        "description": "What the file holds: " + ", ".join(ENTITY_SPECS), "example": "people",
    })


class UploadFileSchema(ma.Schema):
    file = ma.fields.Raw(required=True, metadata={
        "type": "string", "format": "binary",
        "description": "CSV/TSV, XLSX/XLSM, ODS, JSON or XML; the type is checked from the content",
    })


class PreviewRowSchema(ma.Schema):
    row = ma.fields.Integer(required=True, metadata={"description": "Row number as the file's user sees it"})
    cells = ma.fields.List(ma.fields.String(), required=True)
    problem = ma.fields.String(allow_none=True)


class OverviewSchema(ma.Schema):
    file_type = ma.fields.String(required=True, metadata={"example": "csv"})
    size_bytes = ma.fields.Integer(required=True)
    sheets = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "Workbook sheets; [] else"})
    sheet = ma.fields.String(allow_none=True, required=True)
    header_row = ma.fields.Integer(allow_none=True, required=True)
    detected_header_row = ma.fields.Integer(allow_none=True, required=True)
    headers = ma.fields.List(ma.fields.String(), required=True)
    rows = ma.fields.List(ma.fields.Nested(PreviewRowSchema), required=True, metadata={"description": "First rows"})


class ColumnSchema(ma.Schema):
    column = ma.fields.String(required=True)
    target = ma.fields.String(allow_none=True, required=True)
    reason = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "saved, preset, exact, synonym, fuzzy, or null (the column is ignored)",
    })


class SuggestionSchema(ma.Schema):
    columns = ma.fields.List(ma.fields.Nested(ColumnSchema), required=True)
    mapping = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(allow_none=True), required=True)
    required_missing = ma.fields.List(ma.fields.String(), required=True)
    matches_template = ma.fields.Boolean(required=True)


class ImportSchema(ma.Schema):
    id = ma.fields.Integer(required=True, metadata={"example": 42})
    entity = ma.fields.String(required=True, metadata={"example": "people"})
    filename = ma.fields.String(required=True, metadata={"example": "people.csv"})
    status = ma.fields.String(required=True, metadata={"example": "uploaded"})
    created_at = ma.fields.AwareDateTime(required=True)
    overview = ma.fields.Nested(OverviewSchema, required=True)
    suggestion = ma.fields.Nested(SuggestionSchema, required=True, metadata={
        "description": "The suggested column mapping; send it (or your own) to /import/validate",
    })


class RowErrorSchema(ma.Schema):
    row = ma.fields.Integer(required=True, metadata={"example": 7})
    column = ma.fields.String(allow_none=True, required=True, metadata={"example": "Hourly rate"})
    field = ma.fields.String(allow_none=True, required=True, metadata={"example": "hourly_rate"})
    value = ma.fields.String(required=True, metadata={"example": "abc"})
    code = ma.fields.String(required=True, metadata={"example": "type"})
    message = ma.fields.String(required=True, metadata={"example": "'abc' is not a number such as 12.5 or 12,5."})


class CountsSchema(ma.Schema):
    created = ma.fields.Integer(allow_none=True)
    updated = ma.fields.Integer(allow_none=True)
    unchanged = ma.fields.Integer(allow_none=True)
    failed = ma.fields.Integer(allow_none=True)


class StatusSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    status = ma.fields.String(required=True, metadata={
        "description": "uploaded, validating, validated, queued, running, completed, failed, cancelled, undoing, "
                       "undone",
    })
    phase = ma.fields.String(required=True, metadata={"description": "validate, run or undo"})
    rows_done = ma.fields.Integer(required=True)
    total = ma.fields.Integer(allow_none=True, required=True)
    percent = ma.fields.Float(required=True)
    rows_per_second = ma.fields.Float(allow_none=True, required=True)
    seconds_left = ma.fields.Float(allow_none=True, required=True)
    counts = ma.fields.Nested(CountsSchema, required=True, metadata={
        "description": "What the run did, or during and after validation what it would do",
    })
    errors = ma.fields.Integer(required=True, metadata={"description": "Number of row errors"})
    error_message = ma.fields.String(allow_none=True, required=True, metadata={"description": "Why it failed"})
    mode = ma.fields.String(required=True)
    on_error = ma.fields.String(required=True)
    finished = ma.fields.Boolean(required=True)
    first_errors = ma.fields.List(ma.fields.Nested(RowErrorSchema), required=True, metadata={
        "description": "The first 100 row errors; all of them are in the error file",
    })


IMPORT_ID = {"strict": True, "validate": ma.validate.Range(1, MAX_ID)}


class ValidateSchema(ma.Schema):
    id = ma.fields.Integer(required=True, **IMPORT_ID, metadata={"description": "The import's id from /import/upload"})
    sheet = Text(allow_none=True, load_default=None, metadata={"description": "Workbook sheet; default the first"})
    header_row = ma.fields.Integer(allow_none=True, load_default=None, strict=True,
                                   validate=ma.validate.Range(1, MAX_HEADER_ROW), metadata={
        "description": "Row of the column names; null detects it",
    })
    mapping = ma.fields.Dict(keys=Text(), values=Text(allow_none=True), load_default=None, metadata={
        "description": "File column → field name (null ignores the column); absent: the suggested mapping",
        "example": {"E-mail": "email", "Full name": "name", "Notes": None},
    })


class ExecuteSchema(ma.Schema):
    id = ma.fields.Integer(required=True, **IMPORT_ID)
    mode = Text(load_default="upsert", validate=ma.validate.OneOf(IMPORT_MODES), metadata={
        "description": "upsert (create and update), create (new records only) or update (existing only)",
    })
    on_error = Text(load_default="skip", validate=ma.validate.OneOf(IMPORT_ON_ERROR), metadata={
        "description": "skip invalid rows, or abort: import nothing if any row fails",
    })


class ErrorFileQuerySchema(ma.Schema):
    format = Text(load_default="csv", validate=ma.validate.OneOf(["csv", "xlsx"]))


def _import(import_id: int) -> ImportJob:
    return import_jobs.get_import(current_principal().organization, import_id)


def _status(job: ImportJob) -> dict:
    return import_jobs.progress(job) | {"first_errors": [e.as_dict() for e in import_jobs.first_errors(job)]}


@bp.post("/import/upload")
@require_scope(SCOPE)
@bp.doc(security=[{"bearerAuth": []}])
@bp.arguments(UploadFormSchema, location="form")
@bp.arguments(UploadFileSchema, location="files")
@bp.response(201, ImportSchema)
@bp.problems(ERRORS, 401, 403, 413, 422, 429)
def upload(form: dict, files: dict):
    """Upload a file (multipart `file` and `entity`). Nothing is stored if the file is refused."""
    stream = files["file"]
    job = import_jobs.upload(current_principal().organization, api_actor(), form["entity"], stream.filename or "",
                             stream.stream)
    view = import_jobs.overview(job)
    suggestion = import_jobs.suggest_mapping(job)
    return {"id": job.id, "entity": job.entity, "filename": job.filename, "status": job.status,
            "created_at": job.created_at, "overview": view.as_dict(), "suggestion": suggestion.as_dict()}, 201


@bp.post("/import/validate")
@require_scope(SCOPE)
@bp.doc(security=[{"bearerAuth": []}])
@bp.arguments(ValidateSchema)
@bp.response(202, StatusSchema)
@bp.problems(ERRORS, 401, 403, 404, 409, 422, 429)
def validate(data: dict):
    """Choose the sheet, header row and mapping, and validate the whole file in the background."""
    job = _import(data["id"])
    if data["sheet"] != job.sheet or (data["header_row"] is not None and data["header_row"] != job.header_row):
        import_jobs.set_layout(job, data["sheet"] or job.sheet, data["header_row"])
    import_jobs.start_validation(job, data["mapping"], user=api_actor())
    return _status(job), 202


@bp.post("/import/execute")
@require_scope(SCOPE)
@bp.doc(security=[{"bearerAuth": []}])
@bp.arguments(ExecuteSchema)
@bp.response(202, StatusSchema)
@bp.problems(ERRORS, 401, 403, 404, 409, 422, 429)
def execute(data: dict):
    """Run the import in the background with the saved mapping; follow it on /import/{id}/status."""
    job = _import(data["id"])
    import_jobs.start_run(job, data["mode"], data["on_error"], user=api_actor())
    return _status(job), 202


@bp.get("/import/<int:import_id>/status")
@require_scope(SCOPE)
@bp.doc(security=[{"bearerAuth": []}])
@bp.response(200, StatusSchema)
@bp.problems(ERRORS, 401, 403, 404, 429)
def status(import_id: int):
    """Where the import is: status, rows done of total, speed, time left, counts and the first errors."""
    return _status(_import(import_id))


@bp.post("/import/<int:import_id>/cancel")
@require_scope(SCOPE)
@bp.doc(security=[{"bearerAuth": []}])
@bp.response(202, StatusSchema)
@bp.problems(ERRORS, 401, 403, 404, 409, 429)
def cancel(import_id: int):
    """Stop a validation or run between chunks; with on_error=skip the rows already imported stay."""
    job = import_jobs.cancel(_import(import_id))
    return _status(job), 202


@bp.post("/import/<int:import_id>/undo")
@require_scope(SCOPE)
@bp.doc(security=[{"bearerAuth": []}])
@bp.response(202, StatusSchema)
@bp.problems(ERRORS, 401, 403, 404, 409, 429)
def undo(import_id: int):
    """Delete what the import created and restore what it updated; 409 lists records changed since."""
    job = import_jobs.undo(_import(import_id), user=api_actor())
    return _status(job), 202


@bp.get("/import/<int:import_id>/errors")
@require_scope(SCOPE)
@bp.doc(security=[{"bearerAuth": []}])
@bp.arguments(ErrorFileQuerySchema, location="query")
@bp.response(200, description="The rows that failed, as in the file, with an errors column",
             content_type="text/csv")
@bp.problems(ERRORS, 401, 403, 404, 422, 429)
def error_file(query: dict, import_id: int):
    """Download every row error: the failed rows of the file plus an "errors" column (CSV or XLSX)."""
    job = _import(import_id)
    path = import_jobs.error_file(job, query["format"])
    stem = job.filename.rsplit(".", 1)[0]
    return send_file(path, as_attachment=True, download_name=f"{stem}-errors.{query['format']}")
