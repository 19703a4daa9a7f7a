"""The import wizard (what → file → sheet → columns → review → run → result) and the import history.

Every step is a server-rendered page; import_wizard.js adds drag and drop, the upload progress bar and the
polling of the JSON status URL. The views parse the request, call ``import_jobs`` and render or redirect; the
service owns the stored file, the job row and the background work (validation, run, undo).
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, send_file, url_for
from wtforms.fields.choices import SelectChoice

from app.blueprints.helpers import current_actor, int_arg
from app.blueprints.imports.forms import LayoutForm, RunForm
from app.errors import Conflict, DomainError, NotFound, ValidationFailed
from app.importers.specs import ENTITY_SPECS, EntitySpec
from app.models import ImportJob, ImportStatus
from app.security import current_org, require_permission
from app.services import import_jobs

bp = Blueprint("imports", __name__, url_prefix="/imports")

TEMPLATE_ENDPOINT = "import_templates.download"
TEMPLATE_FORMATS = ("xlsx", "csv", "json", "xml")
ERROR_FORMATS = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
PRESET_NAME_MAX = 100


def _spec(entity: str) -> EntitySpec:
    spec = ENTITY_SPECS.get(entity)
    if spec is None:
        raise NotFound("Import type")
    return spec


def _job(import_id: int) -> ImportJob:
    return import_jobs.get_import(current_org(), import_id)


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _messages(exc: DomainError) -> list[str]:
    """A domain error's messages for the page: every field's message, or the error's own."""
    errors = getattr(exc, "errors", {}) or {}
    return [m for messages in errors.values() for m in messages] or [exc.message]


def _template_links(entity: str) -> list[tuple[str, str]]:
    """(format, url) of each template download, once the templates blueprint is registered."""
    if TEMPLATE_ENDPOINT not in current_app.view_functions:
        return []
    return [(fmt, url_for(TEMPLATE_ENDPOINT, entity=entity, fmt=fmt)) for fmt in TEMPLATE_FORMATS]


def _progress(job: ImportJob) -> dict:
    """The service's figures, with the percentage as a whole number for the bars."""
    figures = import_jobs.progress(job)
    return {**figures, "percent": int(figures.get("percent") or 0)}


# --- history ---------------------------------------------------------------------------------------------------

@bp.get("/")
@require_permission("integrations.read")
def history():
    return render_template("imports/history.html", results=import_jobs.history(current_org(), int_arg("page")))


# --- steps 1 and 2: what to import, the file ------------------------------------------------------------------

@bp.route("/new", methods=["GET", "POST"])
@require_permission("integrations.write")
def new():
    """Step 1 without ``?entity=``, step 2 (the file) with it; the upload posts to the same URL.

    The entity is a query argument, not a path segment: it names no record of the organisation. A script
    (import_wizard.js) asks for JSON and gets ``{"next": url}`` or ``{"errors": [...]}``.
    """
    entity = request.args.get("entity", "")
    spec = ENTITY_SPECS.get(entity)
    errors: list[str] = []
    if request.method == "POST":
        if spec is None:
            errors = [f"Choose what to import: one of {', '.join(ENTITY_SPECS)}."]
        else:
            errors, job = _upload(entity)
            if job is not None:
                target = url_for(".layout", import_id=job.id)
                if _wants_json():
                    return jsonify({"id": job.id, "next": target}), 201
                return redirect(target)
        if _wants_json():
            return jsonify({"errors": errors}), 422
    status = 422 if errors else 200
    if spec is None:
        return render_template("imports/choose.html", specs=ENTITY_SPECS.values(), template_links=_template_links,
                               errors=errors), status
    return render_template("imports/upload.html", spec=spec, max_bytes=current_app.config["IMPORT_MAX_BYTES"],
                           errors=errors, template_links=_template_links(entity)), status


def _upload(entity: str) -> tuple[list[str], ImportJob | None]:
    """Hand the posted file to the service: (refusal messages, None) or ([], the new import)."""
    file = request.files.get("file")
    if file is None or not file.filename:
        return ["Choose a file to upload."], None
    try:
        return [], import_jobs.upload(current_org(), current_actor(), entity, file.filename, file.stream)
    except ValidationFailed as exc:
        return _messages(exc), None


# --- step 3: sheet and header row ------------------------------------------------------------------------------

@bp.route("/<int:import_id>/layout", methods=["GET", "POST"])
@require_permission("integrations.write")
def layout(import_id: int):
    job = _job(import_id)
    overview = import_jobs.overview(job)
    form = LayoutForm(sheet=overview.sheet or "", header_row=overview.header_row)
    form.sheet.choices = [SelectChoice(name, name) for name in overview.sheets] or [SelectChoice("", "(the file)")]
    if form.validate_on_submit():
        try:
            import_jobs.set_layout(job, form.sheet.data or None, form.header_row.data)
        except (ValidationFailed, Conflict) as exc:
            form.form_errors.extend(_messages(exc))
        else:
            return redirect(_after_layout(job))
    return render_template("imports/layout.html", job=job, overview=overview, form=form, spec=_spec(job.entity)), \
        422 if form.errors or form.form_errors else 200


def _after_layout(job: ImportJob) -> str:
    """Skip the mapping step when the file's headers are the template's: validate with them at once."""
    suggestion = import_jobs.suggest_mapping(job)
    if not suggestion.matches_template:
        return url_for(".mapping", import_id=job.id)
    import_jobs.start_validation(job, suggestion.mapping, user=current_actor())
    flash("The columns match the import template, so they were mapped for you.", "info")
    return url_for(".review", import_id=job.id)


# --- step 4: mapping --------------------------------------------------------------------------------------------

@bp.route("/<int:import_id>/mapping", methods=["GET", "POST"])
@require_permission("integrations.write")
def mapping(import_id: int):
    job = _job(import_id)
    suggestion = import_jobs.suggest_mapping(job)
    presets = import_jobs.presets(current_org(), job.entity)
    chosen = suggestion.mapping
    applied = next((p for p in presets if p.id == request.args.get("preset", type=int)), None)
    if applied is not None:
        chosen = {column: applied.mapping.get(column) for column in chosen}
    errors: list[str] = []
    preset_name = ""
    if request.method == "POST":
        chosen = {column: request.form.get(f"map-{index}") or None for index, column in enumerate(chosen)}
        preset_name = request.form.get("preset_name", "").strip()[:PRESET_NAME_MAX]
        try:
            import_jobs.save_mapping(job, chosen, preset_name=preset_name or None, user=current_actor())
            import_jobs.start_validation(job, user=current_actor())
        except (ValidationFailed, Conflict) as exc:
            errors = _messages(exc)
        else:
            return redirect(url_for(".review", import_id=job.id))
    return render_template("imports/mapping.html", job=job, spec=_spec(job.entity), suggestion=suggestion,
                           chosen=chosen, presets=presets, applied=applied, errors=errors,
                           preset_name=preset_name), 422 if errors else 200


# --- step 5: review ---------------------------------------------------------------------------------------------

@bp.get("/<int:import_id>/review")
@require_permission("integrations.write")
def review(import_id: int):
    job = _job(import_id)
    form = RunForm(mode=job.mode or "upsert", on_error=job.on_error or "skip")
    return render_template("imports/review.html", job=job, spec=_spec(job.entity), form=form,
                           progress=_progress(job), errors=import_jobs.first_errors(job))


# --- step 6: run ------------------------------------------------------------------------------------------------

@bp.route("/<int:import_id>/run", methods=["GET", "POST"])
@require_permission("integrations.write")
def run(import_id: int):
    job = _job(import_id)
    if request.method == "GET":
        return render_template("imports/run.html", job=job, spec=_spec(job.entity), progress=_progress(job))
    form = RunForm()
    if not form.validate_on_submit():
        flash("Choose what to do with the rows and with invalid rows.", "danger")
        return redirect(url_for(".review", import_id=job.id))
    try:
        import_jobs.start_run(job, form.mode.data, form.on_error.data, user=current_actor())
    except (ValidationFailed, Conflict) as exc:
        flash(" ".join(_messages(exc)), "danger")
        return redirect(url_for(".review", import_id=job.id))
    return redirect(url_for(".run", import_id=job.id))


@bp.get("/<int:import_id>/status")
@require_permission("integrations.read")
def status(import_id: int):
    """The JSON the wizard polls while a validation, a run or an undo is in progress."""
    return jsonify(import_jobs.progress(_job(import_id)))


@bp.post("/<int:import_id>/cancel")
@require_permission("integrations.write")
def cancel(import_id: int):
    job = _job(import_id)
    try:
        import_jobs.cancel(job)
    except Conflict as exc:
        flash(exc.message, "warning")
    else:
        flash("Cancelled. Rows already imported stay until you undo the import.", "info")
    if job.status in (ImportStatus.UPLOADED, ImportStatus.VALIDATING):
        return redirect(url_for(".review", import_id=job.id))
    return redirect(url_for(".result", import_id=job.id))


# --- step 7: result, errors, undo ------------------------------------------------------------------------------

@bp.get("/<int:import_id>")
@require_permission("integrations.read")
def result(import_id: int):
    return _render_result(_job(import_id))


def _render_result(job: ImportJob, refusal: dict | None = None) -> str:
    """The result page; ``refusal`` ({message, rows}) when undo was refused."""
    slug = job.entity
    detail = f"data.{slug}_detail"
    records = [(action, url_for(detail, record_id=record_id), key)
               for action, record_id, key in import_jobs.changed_records(job)] \
        if detail in current_app.view_functions else []
    list_endpoint = f"data.{slug}_list"
    records_url = url_for(list_endpoint) if list_endpoint in current_app.view_functions else None
    return render_template("imports/result.html", job=job, spec=_spec(job.entity), progress=_progress(job),
                           errors=import_jobs.first_errors(job), records=records, records_url=records_url,
                           refusal=refusal)


@bp.get("/<int:import_id>/errors.<any(csv, xlsx):fmt>")
@require_permission("integrations.read")
def errors(import_id: int, fmt: str):
    job = _job(import_id)
    path = import_jobs.error_file(job, fmt)
    stem = job.original_filename.rsplit(".", 1)[0] or f"import-{job.id}"
    return send_file(path, mimetype=ERROR_FORMATS[fmt], as_attachment=True, download_name=f"{stem}-errors.{fmt}")


@bp.post("/<int:import_id>/undo")
@require_permission("integrations.write")
def undo(import_id: int):
    job = _job(import_id)
    try:
        import_jobs.undo(job, user=current_actor())
    except Conflict as exc:
        return _render_result(job, refusal={"message": exc.message, "rows": getattr(exc, "rows", [])}), 409
    flash("Undoing the import: deleting the records it created and restoring the ones it updated.", "info")
    return redirect(url_for(".result", import_id=job.id))
