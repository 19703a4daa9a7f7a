"""Forms of the API keys page. The service validates the values; these only carry them."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.security.scopes import SCOPES
from app.services.api_keys import EXPIRY_DAYS, GRACE_HOURS, NAME_MAX


class CreateKeyForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=NAME_MAX)],
                       description="Who or what uses the key, e.g. \"Nightly payroll export\".")
    scopes = SelectMultipleField(
        "Scopes", choices=[SelectChoice(scope, scope) for scope in SCOPES], validate_choice=False,
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
    )
    expires_in_days = IntegerField(
        "Expires after (days)", validators=[Optional(), NumberRange(*EXPIRY_DAYS)],
        description=f"Leave empty for a key that does not expire; at most {EXPIRY_DAYS[1]} days.",
    )
    ip_allowlist = TextAreaField(
        "Allowed addresses", validators=[Length(max=10_000)],
        description="One IP address or CIDR range per line (e.g. 203.0.113.0/24). Empty: any address.",
    )
    rate_limit = StringField(
        "Rate limit", validators=[Length(max=50)],
        description="Requests per window, e.g. 120/minute. Empty: the organisation's default.",
    )


class DefaultRateLimitForm(FlaskForm):
    default_rate_limit = StringField(
        "Default rate limit", validators=[Length(max=50)],
        description="For keys and OAuth apps without a limit of their own, e.g. 600/minute. Empty: the server's.",
    )


class RegenerateKeyForm(FlaskForm):
    grace_hours = IntegerField("Old key keeps working for (hours)", default=0,
                               validators=[Optional(), NumberRange(*GRACE_HOURS)])


class ActionForm(FlaskForm):
    """A bare POST with CSRF (revoke)."""
