"""The import engine: read → map → validate → load, plain functions shared by the wizard, the API and the CLI.

``run_pipeline`` streams a :class:`Reader`'s rows through the stages; ``ENTITY_SPECS`` says what each
entity accepts; ``ImportSummary`` and ``RowError`` are what callers get back; ``build_template`` makes the
per-entity template files (XLSX, CSV, XML + XSD, JSON + JSON Schema) from those specs.
"""

from .mapping import RowError, map_row, suggest_mapping
from .pipeline import ImportSummary, run_pipeline
from .readers import Reader, ReaderError, ReaderLimits, open_reader
from .specs import ENTITY_SPECS, EntitySpec, spec_for
from .templates import (
    TEMPLATE_FORMATS,
    TemplateFile,
    UnknownTemplate,
    build_template,
    has_template_headers,
    template_headers,
)

__all__ = [
    "ENTITY_SPECS", "EntitySpec", "ImportSummary", "Reader", "ReaderError", "ReaderLimits", "RowError", "map_row",
    "open_reader", "run_pipeline", "spec_for", "suggest_mapping", "TEMPLATE_FORMATS", "TemplateFile", "UnknownTemplate",
    "build_template", "has_template_headers", "template_headers",
]
