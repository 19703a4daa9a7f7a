"""API keys page: list, create (the secret shown once), revoke and regenerate."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for

from app.blueprints.api_keys.forms import ActionForm, CreateKeyForm, DefaultRateLimitForm, RegenerateKeyForm
from app.blueprints.helpers import apply_errors, current_actor
from app.errors import Conflict, ValidationFailed
from app.models import ApiKey
from app.security import current_org, require_permission
from app.security.scopes import SCOPES
from app.services import api_keys

bp = Blueprint("api_keys", __name__, url_prefix="/api-keys")

admin = require_permission("integrations.admin")

# The page offers common grace periods; the API accepts any whole number of hours from 0 to 168.
GRACE_CHOICES = ((0, "stops now"), (1, "works 1 more hour"), (24, "works 1 more day"), (72, "works 3 more days"),
                 (168, "works 7 more days"))


def _render(form: CreateKeyForm, new_key: tuple[ApiKey, str] | None = None, status: int = 200):
    return render_template(
        "api_keys/index.html", keys=api_keys.list_keys(current_org()), form=form, scopes=SCOPES,
        status_of=api_keys.key_status, new_key=new_key, action_form=ActionForm(),
        grace_choices=GRACE_CHOICES, limit_form=DefaultRateLimitForm(default_rate_limit=current_org().api_rate_limit),
        server_rate_limit=current_app.config["API_RATE_LIMIT"],
    ), status


@bp.get("/")
@admin
def index():
    return _render(CreateKeyForm(formdata=None))


@bp.post("/")
@admin
def create():
    form = CreateKeyForm()
    if not form.validate_on_submit():
        return _render(form, status=422)
    try:
        new_key = api_keys.create_key(
            current_org(), current_actor(), form.name.data, form.scopes.data, form.expires_in_days.data,
            (form.ip_allowlist.data or "").splitlines(), form.rate_limit.data,
        )
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render(form, status=422)
    return _render(CreateKeyForm(formdata=None), new_key=new_key)


@bp.post("/<int:key_id>/revoke")
@admin
def revoke(key_id: int):
    key = api_keys.get_key(current_org(), key_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    api_keys.revoke_key(current_org(), current_actor(), key.id)
    flash(f"Revoked {key}. Requests with it are refused from now on.", "success")
    return redirect(url_for("api_keys.index"))


@bp.post("/<int:key_id>/regenerate")
@admin
def regenerate(key_id: int):
    key = api_keys.get_key(current_org(), key_id)
    form = RegenerateKeyForm()
    if not form.validate_on_submit():
        flash("The grace period must be a whole number of hours from 0 to 168.", "danger")
        return redirect(url_for("api_keys.index"))
    try:
        new_key = api_keys.regenerate_key(current_org(), current_actor(), key.id, form.grace_hours.data or 0)
    except ValidationFailed as exc:
        flash(" ".join(m for messages in exc.errors.values() for m in messages), "danger")
        return redirect(url_for("api_keys.index"))
    except Conflict as exc:
        flash(exc.message, "danger")
        return redirect(url_for("api_keys.index"))
    return _render(CreateKeyForm(formdata=None), new_key=new_key)


@bp.post("/default-rate-limit")
@admin
def default_rate_limit():
    form = DefaultRateLimitForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        limit = api_keys.set_default_rate_limit(current_org(), current_actor(), form.default_rate_limit.data)
    except ValidationFailed as exc:
        flash(" ".join(m for messages in exc.errors.values() for m in messages), "danger")
    else:
        flash(f"Default rate limit: {limit or 'the server default'}.", "success")
    return redirect(url_for("api_keys.index"))
