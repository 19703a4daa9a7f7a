"""The consent form: two buttons and the CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SubmitField


class ConsentForm(FlaskForm):
    approve = SubmitField("Allow access")
    deny = SubmitField("Deny")
