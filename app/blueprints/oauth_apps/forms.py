"""Forms of the OAuth apps page. The service validates the values; these only carry them."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from app.security.scopes import SCOPES
from app.services.oauth import NAME_MAX


class RegisterAppForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=NAME_MAX)],
                       description="Shown to people on the consent page, e.g. \"Acme Timesheets\".")
    kind = RadioField(
        "Type", default="confidential",
        choices=[SelectChoice("confidential", "Confidential: a server that can keep a client secret"),
                 SelectChoice("public", "Public: a native or browser app without a secret (PKCE only)")],
    )
    redirect_uris = TextAreaField(
        "Redirect URIs", validators=[Length(max=40_000)],
        description="One per line, matched exactly. https only; http://127.0.0.1 or http://localhost for native "
                    "apps. No fragments.",
    )
    scopes = SelectMultipleField(
        "Scopes the app may ask for", choices=[SelectChoice(scope, scope) for scope in SCOPES], validate_choice=False,
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
    )
    client_credentials = BooleanField(
        "Also allow the client credentials grant (the app acts as itself, without a user; confidential apps only)"
    )


class ActionForm(FlaskForm):
    """A bare POST with CSRF (revoke, rotate secret)."""
