"""Sign-in, sign-out, first-run setup, invitations and switching organisation."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app.blueprints.auth.forms import LoginForm, SetPasswordForm, SetupForm, SwitchOrgForm
from app.blueprints.helpers import apply_errors, safe_next
from app.blueprints.sso.views import continue_to, single_logout_url
from app.errors import DomainError, LoginThrottled, ValidationFailed
from app.security import login_only, public, switch_org
from app.security.tenancy import restrict_session
from app.services import accounts
from app.services.sso import login as sso_login

bp = Blueprint("auth", __name__)

# The setup form names the organisation's fields org_slug/org_name; the service calls them slug/name.
SETUP_FIELDS = {"slug": "org_slug", "name": "org_name"}


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if accounts.needs_setup():
        return redirect(url_for("auth.setup"))
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm(next=request.args.get("next", ""))
    status = 200
    if form.validate_on_submit() and not form.password.data:
        # Email first: home-realm discovery sends the address's organisation to its identity provider.
        org = sso_login.discover(form.email.data)
        if org is not None:
            return continue_to(url_for("sso.login", org=org.slug, next=safe_next(form.next.data)))
        form.password.errors = ["Enter your password."]
        status = 401
    elif form.validate_on_submit():
        try:
            user = accounts.authenticate(form.email.data, form.password.data, request.remote_addr or "unknown")
        except LoginThrottled as exc:
            flash(exc.message, "danger")
            return render_template("auth/login.html", form=form), 429, {"Retry-After": str(exc.retry_after)}
        except DomainError as exc:
            flash(exc.message, "danger")
            status = 401
        else:
            session.clear()
            login_user(user)
            if (allowed := sso_login.password_session_orgs(user)) is not None:
                restrict_session(allowed)  # organisations requiring single sign-on stay closed to this session
            return redirect(safe_next(form.next.data))
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_only
def logout():
    # Signed in through SAML at an IdP that offers single logout: end its session too, it sends the browser back.
    idp_logout = single_logout_url(current_user._get_current_object())
    accounts.record_logout(current_user._get_current_object(), g.org, request.remote_addr)
    logout_user()
    session.clear()
    if idp_logout:
        return continue_to(idp_logout, "Signing you out at your identity provider…")
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
@public
def setup():
    if not accounts.needs_setup():
        abort(404)
    form = SetupForm()
    if form.validate_on_submit():
        try:
            _, user = accounts.setup_first_run(
                form.org_name.data, form.org_slug.data, form.email.data, form.name.data or "", form.password.data
            )
        except ValidationFailed as exc:
            apply_errors(form, ValidationFailed({SETUP_FIELDS.get(k, k): v for k, v in exc.errors.items()}))
        else:
            login_user(user)
            flash("Interchange is ready. You are the first admin.", "success")
            return redirect(url_for("dashboard.index"))
    return render_template("auth/setup.html", form=form)


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@public
def accept_invitation(token: str):
    try:
        user = accounts.user_for_invitation(token)
    except DomainError as exc:
        return render_template("auth/invitation.html", error=exc.message, form=None), 400
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.accept_invitation(token, form.password.data, request.remote_addr)
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            flash("Your password is set. Sign in to continue.", "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/invitation.html", form=form, user=user, error=None)


@bp.post("/switch-org")
@login_only
def switch():
    form = SwitchOrgForm()
    if not form.validate_on_submit() or not switch_org(form.org_id.data):
        abort(404)
    return redirect(url_for("dashboard.index"))
