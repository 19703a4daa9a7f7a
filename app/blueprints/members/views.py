"""Members of the organisation: add or invite, change roles, deactivate."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from app.blueprints.helpers import apply_errors, current_actor
from app.blueprints.members.forms import ROLE_CHOICES, ActionForm, AddMemberForm, RoleForm
from app.errors import Conflict, ValidationFailed
from app.security import current_org, require_permission
from app.services import accounts

bp = Blueprint("members", __name__, url_prefix="/members")

admin = require_permission("integrations.admin")


def _render(form: AddMemberForm, invitation_url: str | None = None, status: int = 200):
    members = accounts.list_members(current_org())
    return render_template(
        "members/index.html", members=members, form=form, role_choices=ROLE_CHOICES, action_form=ActionForm(),
        invitation_url=invitation_url,
    ), status


@bp.get("/")
@admin
def index():
    return _render(AddMemberForm())


@bp.post("/")
@admin
def add():
    form = AddMemberForm()
    if not form.validate_on_submit():
        return _render(form, status=422)
    org, actor = current_org(), current_actor()
    try:
        if form.method.data == "password":
            if not form.password.data:
                raise ValidationFailed({"password": "Enter a password, or choose an invitation link."})
            user, _ = accounts.create_user(form.email.data, org, form.role.data, actor,
                                           password=form.password.data, name=form.name.data or "")
            flash(f"Added {user.email} as {form.role.data}.", "success")
            return redirect(url_for("members.index"))
        user, token = accounts.invite_member(org, actor, form.email.data, form.role.data, form.name.data or "")
    except ValidationFailed as exc:
        apply_errors(form, exc)
        return _render(form, status=422)
    if token is None:
        flash(f"{user.email} already has an Interchange account: they are now a member as {form.role.data} "
              "and sign in as they do today.", "success")
        return redirect(url_for("members.index"))
    flash(f"Invited {user.email} as {form.role.data}. Copy the link below and send it to them.", "success")
    return _render(AddMemberForm(formdata=None), url_for("auth.accept_invitation", token=token, _external=True))


@bp.post("/<int:membership_id>/role")
@admin
def change_role(membership_id: int):
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        membership = accounts.change_role(current_org(), current_actor(), membership_id, form.role.data)
    except Conflict as exc:
        flash(exc.message, "danger")
    else:
        flash(f"{membership.user.email} is now {membership.role}.", "success")
    return redirect(url_for("members.index"))


@bp.post("/<int:membership_id>/deactivate")
@admin
def deactivate(membership_id: int):
    return _set_active(membership_id, False)


@bp.post("/<int:membership_id>/activate")
@admin
def activate(membership_id: int):
    return _set_active(membership_id, True)


def _set_active(membership_id: int, active: bool):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        membership = accounts.set_member_active(current_org(), current_actor(), membership_id, active)
    except Conflict as exc:
        flash(exc.message, "danger")
    else:
        flash(f"{membership.user.email} is {'active' if active else 'deactivated'}.", "success")
    return redirect(url_for("members.index"))
