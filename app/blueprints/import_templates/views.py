"""Import templates in the console: a page listing them and one download URL per entity and format.

The files are built by ``app.importers.templates`` from the entity specs; this blueprint only picks the
entity and format from the URL (unknown ones match no route, so they are a plain 404) and sends the
bytes. The import wizard links here from its first step ("download its template right there").
"""

from __future__ import annotations

import io

from flask import Blueprint, render_template, send_file, url_for

from app.importers import ENTITY_SPECS, TEMPLATE_FORMATS, build_template
from app.importers.templates import DATA_FORMATS, SCHEMA_OF
from app.security import require_permission

bp = Blueprint("import_templates", __name__, url_prefix="/imports/templates")

ENTITY_CHOICES = ", ".join(ENTITY_SPECS)
FORMAT_CHOICES = ", ".join(TEMPLATE_FORMATS)


@bp.get("/")
@require_permission("integrations.read")
def index():
    return render_template("import_templates/index.html", specs=ENTITY_SPECS.values(), formats=DATA_FORMATS,
                           schema_of=SCHEMA_OF)


@bp.get(f"/<any({ENTITY_CHOICES}):entity>.<any({FORMAT_CHOICES}):fmt>")
@require_permission("integrations.read")
def download(entity: str, fmt: str):
    """One template file; the XML and JSON ones point at their schema's download URL here."""
    schema = SCHEMA_OF.get(fmt)
    schema_url = url_for(".download", entity=entity, fmt=schema, _external=True) if schema else None
    template = build_template(entity, fmt, schema_url=schema_url)
    return send_file(io.BytesIO(template.content), mimetype=template.mimetype, as_attachment=True,
                     download_name=template.filename, max_age=0)
