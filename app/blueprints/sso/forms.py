"""Forms of the Single sign-on page. The service (app/services/sso/config.py) validates the values."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, FieldList, Form, FormField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from app.models import Role
from app.models.sso import NAMEID_EMAIL

ROLE_CHOICES = [SelectChoice("", "—")] + [SelectChoice(r.value, r.label) for r in Role]
DEFAULT_ROLE_CHOICES = [SelectChoice("deny", "Deny (users in no mapped group cannot sign in)")] + [
    SelectChoice(r.value, r.label) for r in Role
]
NAMEID_CHOICES = [
    SelectChoice(NAMEID_EMAIL, "Email address"),
    SelectChoice("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", "Persistent"),
    SelectChoice("urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified", "Unspecified"),
    SelectChoice("urn:oasis:names:tc:SAML:2.0:nameid-format:transient", "Transient"),
]


class SamlForm(FlaskForm):
    metadata_url = StringField("IdP metadata URL", validators=[Optional(), Length(max=2048)],
                               description="Import everything from the IdP's metadata URL…")
    metadata_file = FileField("…or upload the metadata file")
    entity_id = StringField("IdP entity ID", validators=[Length(max=1024)],
                            description="…or enter the values by hand (ignored when you import metadata).")
    sso_url = StringField("Single sign-on URL (HTTP-Redirect)", validators=[Length(max=2048)])
    slo_url = StringField("Single logout URL (optional)", validators=[Length(max=2048)])
    certificate = TextAreaField("Signing certificate", validators=[Length(max=20_000)],
                                description="PEM or base64.", render_kw={"rows": 4})
    certificate_next = TextAreaField("Second signing certificate (optional, while the IdP rotates keys)",
                                     validators=[Length(max=20_000)], render_kw={"rows": 3})
    nameid_format = SelectField("NameID format", choices=NAMEID_CHOICES, default=NAMEID_EMAIL)
    allow_idp_initiated = BooleanField("Allow IdP-initiated sign-in (responses we did not ask for)")


class OidcForm(FlaskForm):
    issuer = StringField("Issuer URL", validators=[Length(max=2048)],
                         description="Discovery reads <issuer>/.well-known/openid-configuration.")
    client_id = StringField("Client ID", validators=[Length(max=255)])
    client_secret = PasswordField("Client secret", validators=[Length(max=2000)],
                                  description="Write-only: leave empty to keep the stored secret.",
                                  render_kw={"autocomplete": "new-password"})
    scopes = StringField("Scopes", default="openid email profile", validators=[Length(max=500)])


class GroupRoleRow(Form):
    group = StringField("IdP group", validators=[Length(max=255)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="")


class PolicyForm(FlaskForm):
    enabled = BooleanField("Single sign-on is on", default=True)
    email_attribute = StringField("Email attribute / claim", validators=[Length(max=255)],
                                  description="Empty for SAML: the NameID is the email.")
    name_attribute = StringField("Name attribute / claim", validators=[Length(max=255)])
    groups_attribute = StringField("Groups attribute / claim", validators=[Length(max=255)])
    email_domains = StringField("Email domains", validators=[Length(max=2000)],
                                description="Comma-separated, e.g. example.com, example.org. The sign-in page sends "
                                            "these addresses to your identity provider.")
    require_sso = BooleanField("Require single sign-on (password sign-ins do not reach this organisation)")
    break_glass_email = StringField("Break-glass admin (email)", validators=[Length(max=320)],
                                    description="An admin who keeps password sign-in, in case the IdP fails.")
    default_role = SelectField("Users in no mapped group", choices=DEFAULT_ROLE_CHOICES, default="deny")
    group_roles = FieldList(FormField(GroupRoleRow), min_entries=0)


class ActionForm(FlaskForm):
    """A bare POST with CSRF (Test connection)."""
