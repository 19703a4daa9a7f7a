"""The Single sign-on page (admins): SAML or OIDC configuration, sign-in policy, group roles, Test connection."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.blueprints.helpers import apply_errors, current_actor
from app.blueprints.sso.forms import ActionForm, OidcForm, PolicyForm, SamlForm
from app.blueprints.sso.views import begin, continue_to
from app.errors import ValidationFailed
from app.extensions import db
from app.models import IdentityProvider, User
from app.security import current_org, require_permission
from app.services.audit import record
from app.services.sso import config as sso_config
from app.services.sso import saml
from app.services.sso.identity import SsoRefused

bp = Blueprint("sso_settings", __name__, url_prefix="/settings/sso")

admin = require_permission("integrations.admin")
BLANK_GROUP_ROWS = 3


def _policy_form(provider: IdentityProvider | None, formdata=None) -> PolicyForm:
    if formdata is not None:
        return PolicyForm(formdata)
    data = {}
    if provider is not None:
        break_glass = db.session.get(User, provider.break_glass_user_id) if provider.break_glass_user_id else None
        data = dict(
            enabled=provider.enabled, email_attribute=provider.email_attribute, name_attribute=provider.name_attribute,
            groups_attribute=provider.groups_attribute, email_domains=", ".join(provider.email_domains or []),
            require_sso=provider.require_sso, break_glass_email=break_glass.email if break_glass else "",
            default_role=provider.default_role or "deny",
            group_roles=[{"group": m.group, "role": m.role} for m in provider.group_roles],
        )
    form = PolicyForm(formdata=None, data=data)
    for _ in range(BLANK_GROUP_ROWS):
        form.group_roles.append_entry()
    return form


def _saml_form(provider: IdentityProvider | None) -> SamlForm:
    if provider is None or provider.protocol != "saml":
        return SamlForm(formdata=None)
    return SamlForm(formdata=None, data=dict(
        entity_id=provider.saml_entity_id, sso_url=provider.saml_sso_url, slo_url=provider.saml_slo_url,
        certificate=provider.saml_certificate, certificate_next=provider.saml_certificate_next,
        nameid_format=provider.saml_nameid_format, allow_idp_initiated=provider.allow_idp_initiated,
    ))


def _oidc_form(provider: IdentityProvider | None) -> OidcForm:
    if provider is None or provider.protocol != "oidc":
        return OidcForm(formdata=None)
    return OidcForm(formdata=None, data=dict(issuer=provider.oidc_issuer, client_id=provider.oidc_client_id,
                                             scopes=provider.oidc_scopes))


def _render(saml_form=None, oidc_form=None, policy_form=None, status: int = 200):
    org = current_org()
    provider = sso_config.get_provider(org)
    endpoints = saml.sp_endpoints(request.host_url, org.slug)
    return render_template(
        "sso/settings.html", provider=provider, endpoints=endpoints,
        oidc_redirect_uri=url_for("sso.oidc_callback", org=org.slug, _external=True),
        login_url=url_for("sso.login", org=org.slug, _external=True),
        saml_form=saml_form or _saml_form(provider), oidc_form=oidc_form or _oidc_form(provider),
        policy_form=policy_form or _policy_form(provider), action_form=ActionForm(),
    ), status


@bp.get("")
@admin
def index():
    return _render()


def _policy_from(form: PolicyForm) -> sso_config.SsoPolicy:
    return sso_config.SsoPolicy(
        enabled=form.enabled.data, email_attribute=form.email_attribute.data or "",
        name_attribute=form.name_attribute.data or "", groups_attribute=form.groups_attribute.data or "",
        email_domains=[d for d in (form.email_domains.data or "").split(",")],
        require_sso=form.require_sso.data, break_glass_email=form.break_glass_email.data or "",
        default_role=form.default_role.data,
        group_roles=[(row.group.data or "", row.role.data or "") for row in form.group_roles],
    )


def _submit(form, form_name: str, save: Callable[[], object], saved: str):
    """One save flow for the three forms: validate, let the service check and store, or show its errors inline."""
    if form.validate_on_submit():
        try:
            save()
        except ValidationFailed as exc:
            apply_errors(form, exc)
        else:
            flash(saved, "success")
            return redirect(url_for(".index"))
    return _render(**{form_name: form}, status=422)


def _saml_idp(form: SamlForm) -> sso_config.SamlIdp:
    """From the uploaded file, else the metadata URL, else the values typed in."""
    if form.metadata_file.data:
        return sso_config.parse_metadata(form.metadata_file.data.read(), "metadata_file")
    if (form.metadata_url.data or "").strip():
        return sso_config.parse_metadata(sso_config.fetch_metadata(form.metadata_url.data), "metadata_url")
    return sso_config.SamlIdp(
        entity_id=form.entity_id.data or "", sso_url=form.sso_url.data or "", slo_url=form.slo_url.data or "",
        certificates=[form.certificate.data or "", form.certificate_next.data or ""],
        nameid_format=form.nameid_format.data,
    )


@bp.post("/saml")
@admin
def save_saml():
    form = SamlForm()
    return _submit(form, "saml_form", lambda: sso_config.configure_saml(
        current_org(), current_actor(), _saml_idp(form),
        sso_config.SsoPolicy(allow_idp_initiated=form.allow_idp_initiated.data),
    ), "SAML identity provider saved.")


@bp.post("/oidc")
@admin
def save_oidc():
    form = OidcForm()
    idp = sso_config.OidcIdp(issuer=form.issuer.data or "", client_id=form.client_id.data or "",
                             client_secret=form.client_secret.data or None, scopes=form.scopes.data or "")
    return _submit(form, "oidc_form", lambda: sso_config.configure_oidc(current_org(), current_actor(), idp),
                   "OpenID Connect provider saved.")


@bp.post("/policy")
@admin
def save_policy():
    form = _policy_form(None, request.form)
    return _submit(form, "policy_form", lambda: sso_config.update_policy(current_org(), current_actor(),
                                                                           _policy_from(form)),
                   "Sign-in settings saved.")


@bp.post("/test")
@admin
def test_connection():
    """Start a login whose answer is shown (attributes, mapped role) instead of signing anyone in."""
    if not ActionForm().validate_on_submit():
        return redirect(url_for(".index"))
    org = current_org()
    provider = sso_config.get_provider(org)
    try:
        url = begin(org, provider, purpose="test", next_path=None, requested_by=current_user.id)
    except SsoRefused as exc:
        flash(exc.message, "danger")
        return redirect(url_for(".index"))
    record(org, current_actor(), "sso.test_started", provider)
    db.session.commit()
    return continue_to(url)
