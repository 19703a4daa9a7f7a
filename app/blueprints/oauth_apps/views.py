"""OAuth apps page: register partner applications, rotate their secrets, revoke them."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from app.blueprints.helpers import apply_errors, current_actor
from app.blueprints.oauth_apps.forms import ActionForm, RegisterAppForm
from app.errors import Conflict, ValidationFailed
from app.models import OAuthClient
from app.security import current_org, require_permission
from app.security.scopes import SCOPES
from app.services import oauth

bp = Blueprint("oauth_apps", __name__, url_prefix="/oauth-apps")

admin = require_permission("integrations.admin")


def _render(form: RegisterAppForm, new_secret: tuple[OAuthClient, str | None] | None = None, status: int = 200):
    return render_template(
        "oauth_apps/index.html", apps=oauth.list_clients(current_org()), form=form, scopes=SCOPES,
        new_secret=new_secret, action_form=ActionForm(),
    ), status


@bp.get("/")
@admin
def index():
    return _render(RegisterAppForm(formdata=None))


@bp.post("/")
@admin
def create():
    form = RegisterAppForm()
    if not form.validate_on_submit():
        return _render(form, status=422)
    try:
        new_app = oauth.register_client(
            current_org(), current_actor(), form.name.data, form.kind.data == "confidential",
            form.redirect_uris.data or "", form.scopes.data, form.client_credentials.data,
        )
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render(form, status=422)
    return _render(RegisterAppForm(formdata=None), new_secret=new_app)


@bp.post("/<int:app_id>/rotate-secret")
@admin
def rotate_secret(app_id: int):
    client = oauth.get_client(current_org(), app_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        rotated = oauth.rotate_secret(current_org(), current_actor(), client.id)
    except Conflict as exc:
        flash(exc.message, "danger")
        return redirect(url_for("oauth_apps.index"))
    return _render(RegisterAppForm(formdata=None), new_secret=rotated)


@bp.post("/<int:app_id>/revoke")
@admin
def revoke(app_id: int):
    client = oauth.get_client(current_org(), app_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    oauth.revoke_client(current_org(), current_actor(), client.id)
    flash(f"Revoked {client.name}. Its tokens no longer work.", "success")
    return redirect(url_for("oauth_apps.index"))
