"""GET /api/v1/import/templates/{entity}?format=...: an entity's import template or its schema (scope ``imports.run``).

Why ``imports.run`` and not ``data.read``: a template holds no records of the organisation, only the
layout an import expects, and the callers that want it are the ones about to import (a script fetching
the XSD or JSON Schema to validate its file first). A key made for imports alone should not need read
access to every record to get it, and a read-only key has no use for it.

The files are the console's (``app.importers.templates``); the XML and JSON ones name their schema by
this endpoint's own URL.
"""

from __future__ import annotations

import io

import marshmallow as ma
from flask import send_file, url_for

from app.blueprints.api.parsing import Blueprint
from app.importers import ENTITY_SPECS, TEMPLATE_FORMATS, build_template
from app.importers.templates import FORMATS, SCHEMA_OF
from app.security.api_auth import require_scope

bp = Blueprint("api_import_templates", __name__, description="Import templates and the schemas of import files")

ERRORS = {
    401: "No valid credential",
    403: "The credential lacks the imports.run scope",
    404: "No such entity; the entities are " + ", ".join(ENTITY_SPECS),
    422: "Unknown format; errors.format names the formats",
    429: "Over the rate limit; see Retry-After",
}
FORMAT_HELP = (
    "xlsx (Excel with dropdowns and an Instructions sheet), csv (UTF-8 with BOM), xml, xsd (the XML's schema), "
    "json, schema (the JSON's JSON Schema, draft 2020-12)"
)
# A 200 answers in the format's media type; the files are described here, not schema-checked.
CONTENT = {
    FORMATS["xlsx"][1]: {"schema": {"type": "string", "format": "binary"}},
    "text/csv": {"schema": {"type": "string"}},
    "application/xml": {"schema": {}},
    "application/json": {"schema": {"type": "object"}},
    "application/schema+json": {"schema": {"type": "object"}},
}


class TemplateQuery(ma.Schema):
    format = ma.fields.String(
        load_default="xlsx",
        validate=ma.validate.OneOf(TEMPLATE_FORMATS, error="Choose one of: {choices}."),
        metadata={"description": FORMAT_HELP, "example": "csv"},
    )


@bp.get(f"/import/templates/<any({', '.join(ENTITY_SPECS)}):entity>")
@require_scope("imports.run")
@bp.doc(security=[{"bearerAuth": []}],
        responses={200: {"description": "The template file, as an attachment", "content": CONTENT}})
@bp.arguments(TemplateQuery, location="query")
@bp.problems(ERRORS, 401, 403, 404, 422, 429)
def import_template(query: dict, entity: str):
    """An entity's import template, or the XSD / JSON Schema its XML / JSON files follow.

    A filled template imports with no column mapping: its headers (or element and member names) are
    the entity's field names.
    """
    fmt = query["format"]
    schema = SCHEMA_OF.get(fmt)
    schema_url = url_for(".import_template", entity=entity, format=schema, _external=True) if schema else None
    template = build_template(entity, fmt, schema_url=schema_url)
    return send_file(io.BytesIO(template.content), mimetype=template.mimetype, as_attachment=True,
                     download_name=template.filename, max_age=0)
