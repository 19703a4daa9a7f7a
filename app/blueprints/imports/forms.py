"""Forms of the import wizard. They carry values; the import service checks them against the file."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional

from app.services.import_jobs import MAX_HEADER_ROW

# What the review step offers, in the words of the page (the keys are the pipeline's MODES and ON_ERROR).
MODE_CHOICES = [
    SelectChoice("upsert", "Create and update: add new records, change existing ones"),
    SelectChoice("create", "Create only: add new records, leave existing ones untouched"),
    SelectChoice("update", "Update only: change existing records, add nothing"),
]
ON_ERROR_CHOICES = [
    SelectChoice("skip", "Skip invalid rows and import the rest"),
    SelectChoice("abort", "Abort: import nothing if any row is invalid"),
]


class LayoutForm(FlaskForm):
    sheet = SelectField("Sheet", validate_choice=True)
    header_row = IntegerField(
        "Header row", validators=[Optional(), NumberRange(1, MAX_HEADER_ROW)],
        description="The row that holds the column names; rows above it are ignored. Empty: detect it.",
    )


class RunForm(FlaskForm):
    mode = RadioField("What to do with the rows", choices=MODE_CHOICES, default="upsert")
    on_error = RadioField("Invalid rows", choices=ON_ERROR_CHOICES, default="skip")
