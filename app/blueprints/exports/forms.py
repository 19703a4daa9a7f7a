"""The Exports page's form: entity and format as fields; columns and filters depend on the entity, so they
are read from the posted data (``columns`` checkboxes, ``filter_<name>`` inputs) and the service checks them."""

from __future__ import annotations

from collections.abc import Mapping

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import HiddenField, RadioField
from wtforms.fields.choices import SelectChoice

from app.importers.exports import FORMATS

FORMAT_LABELS = {"xlsx": "Excel (XLSX)", "csv": "CSV", "json": "JSON", "xml": "XML"}
FILTER_PREFIX = "filter_"


class ExportForm(FlaskForm):
    # No choice validation here: the service names an unknown entity or format precisely.
    entity = HiddenField("Entity")
    format = RadioField("Format", choices=[SelectChoice(f, FORMAT_LABELS[f]) for f in FORMATS], default="xlsx",
                        validate_choice=False)


def posted_columns(data: MultiDict) -> list[str]:
    return data.getlist("columns")


def posted_filters(data: Mapping[str, str]) -> dict[str, str]:
    return {key.removeprefix(FILTER_PREFIX): value for key, value in data.items()
            if key.startswith(FILTER_PREFIX) and value.strip()}
