from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, Regexp

from app.security.passwords import MIN_PASSWORD_LENGTH


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)], render_kw={"autocomplete": "username"})
    # Optional: an email alone is enough when its domain belongs to an organisation's identity provider.
    password = PasswordField(
        "Password", validators=[Optional(), Length(max=1024)], render_kw={"autocomplete": "current-password"},
        description="Leave empty if your organisation signs in through single sign-on.",
    )
    next = HiddenField()


class NewPasswordMixin:
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=1024)],
        description=f"At least {MIN_PASSWORD_LENGTH} characters.", render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat password", validators=[DataRequired(), EqualTo("password", "Passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


class SetupForm(NewPasswordMixin, FlaskForm):
    org_name = StringField("Organisation name", validators=[DataRequired(), Length(max=200)])
    org_slug = StringField(
        "Organisation slug",
        validators=[
            DataRequired(), Length(max=63), Regexp(r"^[a-z0-9-]+$", message="Lower-case letters, digits, dashes.")
        ],
        description="Used in URLs and the CLI, e.g. acme.",
    )
    name = StringField("Your name", validators=[Length(max=200)])
    email = EmailField("Your email", validators=[DataRequired(), Email(check_deliverability=False), Length(max=320)])


class SetPasswordForm(NewPasswordMixin, FlaskForm):
    pass


class SwitchOrgForm(FlaskForm):
    org_id = IntegerField(validators=[DataRequired()])
