"""The Exports page: start an export of any entity (its list filters, a column choice, a format), see the
history with live progress, and download finished files. The JSON status URL feeds app/static/js/exports.js."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, send_file, url_for

from app.blueprints.exports.forms import ExportForm, posted_columns, posted_filters
from app.blueprints.helpers import current_actor, int_arg
from app.errors import ValidationFailed
from app.importers.specs import ENTITY_SPECS
from app.security import current_org, require_permission
from app.services import entities, exports

bp = Blueprint("exports", __name__, url_prefix="/exports")


def _page(form: ExportForm, entity: str, filters: dict[str, str], columns: list[str], status: int = 200):
    org = current_org()
    service = entities.service_for(entity)
    choices = {f.name: entities.service_for_model(f.related).choices(org) for f in service.filters if f.related}
    return render_template(
        "exports/index.html", form=form, entity=entity, entities=ENTITY_SPECS, service=service,
        all_columns=exports.columns_of(entity), columns=columns, filters=filters, filter_choices=choices,
        results=exports.list_exports(org, int_arg("page")), retention_days=exports.RETENTION_DAYS,
    ), status


@bp.get("/")
@require_permission("integrations.read")
def index():
    entity = request.args.get("entity", "people")
    entity = entity if entity in ENTITY_SPECS else "people"
    form = ExportForm(entity=entity)
    return _page(form, entity, exports.filters_from_args(entity, request.args), exports.columns_of(entity))


@bp.post("/")
@require_permission("integrations.read")
def start():
    form = ExportForm()
    columns, filters = posted_columns(request.form), posted_filters(request.form)
    if not columns:
        form.form_errors.append("columns: choose at least one column to export.")
    elif form.validate_on_submit():
        try:
            export = exports.start_export(current_org(), current_actor(), form.entity.data, form.format.data,
                                          columns, filters)
        except ValidationFailed as exc:
            for field, messages in exc.errors.items():
                form.form_errors.extend(f"{field}: {message}" for message in messages)
        else:
            flash(f"Export {export.id} of {export.entity} started; it appears below when ready.", "success")
            return redirect(url_for("exports.index", entity=export.entity))
    entity = form.entity.data if form.entity.data in ENTITY_SPECS else "people"
    return _page(form, entity, filters, columns, 422)


@bp.get("/<int:export_id>/status")
@require_permission("integrations.read")
def status(export_id: int):
    export = exports.get_export(current_org(), export_id)
    return jsonify(exports.serialize_export(export))


@bp.get("/<int:export_id>/download")
@require_permission("integrations.read")
def download(export_id: int):
    found = exports.download(current_org(), current_actor(), export_id)
    response = send_file(found.path, mimetype=found.content_type, as_attachment=True, download_name=found.filename)
    response.headers.update(found.headers)
    return response
