from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional

from app.models import ROLE_ORDER

ROLE_CHOICES = [SelectChoice(r.value, r.label) for r in ROLE_ORDER]


class AddMemberForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False), Length(max=320)])
    name = StringField("Name", validators=[Length(max=200)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="viewer")
    method = RadioField(
        "How they sign in",
        choices=[SelectChoice("invite", "Send an invitation link (they choose their password)"),
                 SelectChoice("password", "Set a password now")],
        default="invite",
    )
    password = PasswordField("Password", validators=[Optional(), Length(max=1024)],
                             description="Only when setting a password now; at least 12 characters.")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class ActionForm(FlaskForm):
    """A bare POST with CSRF (deactivate, reactivate)."""
