"""Import templates per entity, generated from its EntitySpec: XLSX, CSV, XML + XSD, JSON + JSON Schema.

Nothing here is written per entity: the columns, their order, types, required marks, allowed values and
limits all come from the spec, so a field added to a record service appears in every template (and in
the XSD and JSON Schema) the day it lands. The only hand-written knowledge is keyed by *field name*,
like the header synonyms in :mod:`.specs`: an example value where the type alone would give a poor or
invalid one (a website must start with ``https://``), and a note for rules the spec cannot express.

Why the header cells are the spec's field names and nothing else (no ``*`` on required ones): the mapping
step matches a column to the field of the same name first, so a filled template imports with no mapping
change. Required fields are marked by the header's fill and bold type instead, and the Instructions
sheet says so.

CSV is written as UTF-8 with a byte order mark, comma separated, CRLF line ends (RFC 4180): without the
BOM, Excel on Windows opens a CSV in the ANSI code page and turns "Zoë" into "ZoÃ«"; with it Excel reads
UTF-8, and our CSV reader strips the BOM (``readers/csv_reader.py``), so both sides agree.

XML follows the layout ``readers/xml_reader.py`` reads (root = the entity, one child per record, one
grandchild per field, in any order) and points at its XSD with ``xsi:noNamespaceSchemaLocation``; the XSD
uses ``xs:all`` for the same reason the reader ignores order. JSON is ``{"<entity>": [records]}``, the
envelope form the JSON reader accepts, with ``"$schema"`` naming its JSON Schema (draft 2020-12); the
reader skips that member because it is not an array.

openpyxl (~3.7 MB resident) is imported inside the XLSX functions: the import engine imports this module in every
process, the import workers included, but only a template download writes a workbook.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lxml import etree

from .specs import ENTITY_SPECS, EntitySpec, ImportField

if TYPE_CHECKING:
    from openpyxl.styles import PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

FORMATS: dict[str, tuple[str, str]] = {  # format → (file name suffix, media type)
    "xlsx": ("-template.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "csv": ("-template.csv", "text/csv"),  # Flask adds "; charset=utf-8" to text/* answers
    "xml": ("-template.xml", "application/xml"),
    "xsd": (".xsd", "application/xml"),
    "json": ("-template.json", "application/json"),
    "schema": (".schema.json", "application/schema+json"),
}
TEMPLATE_FORMATS = tuple(FORMATS)
DATA_FORMATS = ("xlsx", "csv", "xml", "json")  # the ones that hold records and can be imported
SCHEMA_OF = {"xml": "xsd", "json": "schema"}  # a data format → the format of the schema it names

# Example values by field name, for fields whose type alone gives a poor or invalid example. ``{label}``
# is the entity's label ("client"), so the example client is named "Example client" and a project's
# ``client`` example (derived from the client spec's key) names that same client.
EXAMPLES: dict[str, Any] = {
    "email": "ada.lovelace@example.com",
    "contact_email": "billing@example.com",
    "manager": "grace.hopper@example.com",  # a self-reference must name someone else
    "name": "Example {label}",
    "title": "Example {label} title",
    "code": "WEB-2026",
    "website": "https://example.com",
    "phone": "+44 20 7946 0958",
    "skills": "python, sql",
    "hourly_rate": Decimal("85.50"),
    "weekly_capacity": Decimal("37.5"),
    "budget": Decimal("25000"),
    "estimate_hours": Decimal("8"),
    "hours": Decimal("7.5"),
    "start_date": date(2026, 3, 2),
    "end_date": date(2026, 6, 30),
    "due_date": date(2026, 4, 15),
    "spent_on": date(2026, 3, 12),
}
# Rules a service checks in code, which the spec cannot show; said in the Instructions and the schemas.
NOTES: dict[str, str] = {
    "website": "Starts with http:// or https://.",
    "code": "No spaces; stored upper-case.",
    "email": "Stored lower-case.",
    "end_date": "On or after start_date.",
    "skills": "Comma separated, such as: python, sql.",
}
TYPE_WORDS = {
    "string": "Text", "email": "Email address", "integer": "Whole number", "decimal": "Number",
    "date": "Date (YYYY-MM-DD)", "boolean": "Yes or no", "enum": "One of the allowed values",
    "list": "Comma-separated list",
}
BOOLEAN_WORDS = ("yes", "no")
DATE_FORMAT = "yyyy-mm-dd"
TEXT_FORMAT = "@"
LAST_ROW = 1_048_576  # Excel's last row: validations and date formats cover every row a user can fill
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XS = "http://www.w3.org/2001/XMLSchema"
JSON_SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
REQUIRED_COLOUR = "FFD966"   # amber: must be filled
OPTIONAL_COLOUR = "D9E1F2"   # pale blue: may be left blank


class UnknownTemplate(LookupError):
    """An entity or format with no template; the message names the ones that exist."""

    def __init__(self, what: str, value: str, choices: list[str] | tuple[str, ...]) -> None:
        super().__init__(f"Unknown {what} {value!r}; choose one of {', '.join(choices)}.")
        self.what = what
        self.message = str(self)


@dataclass(frozen=True)
class TemplateFile:
    """A generated template, ready to send: ``Content-Disposition`` uses ``filename``."""

    filename: str
    mimetype: str
    content: bytes


def template_filename(entity: str, fmt: str) -> str:
    return f"{entity}{FORMATS[fmt][0]}"


def build_template(entity: str, fmt: str, *, schema_url: str | None = None) -> TemplateFile:
    """Build ``entity``'s template in ``fmt`` (xlsx, csv, xml, xsd, json or schema).

    Args:
        schema_url: where the XML and JSON templates say their schema lives (the XSD or JSON Schema
            download URL); by default the schema's file name, for a schema saved next to the template.

    Raises:
        UnknownTemplate: no such entity or format.
    """
    spec = ENTITY_SPECS.get(entity)
    if spec is None:
        raise UnknownTemplate("entity", entity, list(ENTITY_SPECS))
    if fmt not in FORMATS:
        raise UnknownTemplate("format", fmt, list(FORMATS))
    builders = {"xlsx": _xlsx, "csv": _csv, "xml": _xml, "xsd": _xsd, "json": _json, "schema": _json_schema}
    if fmt in ("xml", "json"):
        content = builders[fmt](spec, schema_url or template_filename(entity, SCHEMA_OF[fmt]))
    else:
        content = builders[fmt](spec)
    return TemplateFile(template_filename(entity, fmt), FORMATS[fmt][1], content)


def template_headers(entity: str) -> list[str]:
    """The column names of ``entity``'s templates, in order: its field names."""
    return [f.name for f in ENTITY_SPECS[entity].fields]


def has_template_headers(headers: list[str], entity: str) -> bool:
    """True when a file's columns are template columns (any order, optional ones may be missing) and every
    required field has its column: the wizard can skip the mapping step for such a file."""
    names = set(template_headers(entity))
    return set(headers) <= names and set(ENTITY_SPECS[entity].required) <= set(headers)


# --- what each field looks like -------------------------------------------------------------------------


def example_record(spec: EntitySpec) -> dict[str, Any]:
    """The example row, typed: ``str``, ``Decimal``, ``date``, ``bool``, or ``None`` for a blank.

    A reference's example is the referenced entity's own example key (a task's ``project`` is the
    example project's code), so the untouched templates import one after the other in the order of
    ``ENTITY_SPECS`` (people, clients, projects, tasks, ...). A self-reference (a person's manager) is
    left blank in the row: the only person its file names is the example itself. The Instructions and
    the schemas still show an example value for it.
    """
    return {f.name: None if _self_reference(spec, f) else example_value(spec, f) for f in spec.fields}


def _self_reference(spec: EntitySpec, f: ImportField) -> bool:
    return f.reference is not None and f.reference.model is spec.model


def example_value(spec: EntitySpec, f: ImportField) -> Any:
    if f.name in EXAMPLES:
        value = EXAMPLES[f.name]
        return value.format(label=spec.label) if isinstance(value, str) else value
    if f.reference is not None:
        target = next(s for s in ENTITY_SPECS.values() if s.model is f.reference.model)
        return example_value(target, target.by_name[f.reference.key])
    if f.name == "external_id":
        return f"{spec.entity}-0001"
    return _typed_example(spec, f)


def _typed_example(spec: EntitySpec, f: ImportField) -> Any:
    if f.type == "enum" and f.choices:
        return f.default if f.default in f.choices else f.choices[0]
    if f.type == "boolean":
        return True if f.default is None else bool(f.default)
    if f.type == "date":
        return date(2026, 3, 12)
    if f.type in ("decimal", "integer"):
        low = f.minimum if f.minimum is not None else Decimal(0)
        high = f.maximum if f.maximum is not None else Decimal(1000)
        value = min(max(Decimal(10), low), high)
        return int(value) if f.type == "integer" else value
    if f.type == "email":
        return f"{f.name.replace('_', '.')}@example.com"
    if f.type == "list":
        return "first, second"
    text = f"Example {spec.label} {f.name.replace('_', ' ')}"
    return text[: f.max_length] if f.max_length else text


def as_text(value: Any) -> str:
    """A typed example as a user types it in a CSV or an XML element."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def describe(spec: EntitySpec, f: ImportField) -> str:
    """One plain sentence or three about a field: what it is, how it is matched, what blank means."""
    parts: list[str] = []
    if f.reference is not None:
        target = f.reference.model.__name__.lower()
        parts.append(f"The {f.reference.key.replace('_', ' ')} of an existing {target} of your organisation"
                     + (f" (or of a {target} elsewhere in this file)." if f.reference.model is spec.model else "."))
    else:
        parts.append(_type_phrase(f) + ".")
    if f.name == spec.natural_key:
        parts.append(f"Identifies the {spec.label}: a row whose {f.name} already exists updates that {spec.label}, "
                     f"any other row creates one. Each {f.name} may appear once per file.")
    elif f.unique:
        parts.append("Unique within your organisation; each value may appear once per file.")
    if f.name in NOTES:
        parts.append(NOTES[f.name])
    if not f.required and f.default is not None:
        parts.append(f"Blank means {_default_word(f)}.")
    return " ".join(parts)


def _type_phrase(f: ImportField) -> str:
    phrase = TYPE_WORDS.get(f.type, "Text")
    if f.type == "boolean":
        phrase += " (also true/false, y/n, 1/0)"
    if f.max_length is not None and f.type in ("string", "email"):
        phrase += f", at most {f.max_length:,} characters"
    if f.minimum is not None and f.maximum is not None:
        phrase += f", from {_number(f.minimum)} to {_number(f.maximum)}"
    elif f.minimum is not None:
        phrase += f", at least {_number(f.minimum)}"
    if f.type == "enum":
        phrase += " (the label, such as 'On hold', is accepted too)"
    return phrase


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _default_word(f: ImportField) -> str:
    if isinstance(f.default, bool):
        return "yes" if f.default else "no"
    if f.default == []:
        return "none"
    return str(f.default)


def allowed_values(f: ImportField) -> list[str]:
    if f.type == "enum" and f.choices:
        return list(f.choices)
    if f.type == "boolean":
        return list(BOOLEAN_WORDS)
    return []


# --- XLSX -----------------------------------------------------------------------------------------------


def _fill(required: bool) -> PatternFill:
    from openpyxl.styles import PatternFill  # lazy: see the module docstring

    return PatternFill("solid", start_color=REQUIRED_COLOUR if required else OPTIONAL_COLOUR)


def _xlsx(spec: EntitySpec) -> bytes:
    from openpyxl import Workbook  # lazy: see the module docstring
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    sheet.title = spec.entity.replace("_", " ").capitalize()[:31]
    example = example_record(spec)
    for column, f in enumerate(spec.fields, start=1):
        letter = get_column_letter(column)
        header = sheet.cell(row=1, column=column, value=f.name)
        header.font = Font(bold=f.required)
        header.fill = _fill(f.required)
        header.alignment = Alignment(vertical="center")
        header.comment = Comment(("Required. " if f.required else "Optional. ") + describe(spec, f), "Interchange",
                                 width=320, height=140)
        cell = sheet.cell(row=2, column=column, value=_spreadsheet_value(example[f.name]))
        sheet.column_dimensions[letter].width = max(len(f.name), len(as_text(example_value(spec, f))), 10) + 4
        cells = f"{letter}2:{letter}{LAST_ROW}"
        column_format = _column_format(f)
        if column_format is not None:
            cell.number_format = column_format
            sheet.column_dimensions[letter].number_format = column_format
        if f.type == "date":
            _validate(sheet, DataValidation(type="date", operator="greaterThan", formula1="1"), cells,
                      f"{f.name} must be a date, such as 2026-03-12.")
        elif f.type in ("decimal", "integer"):
            low = _number(f.minimum) if f.minimum is not None else "-1E+15"
            high = _number(f.maximum) if f.maximum is not None else "1E+15"
            kind = "whole" if f.type == "integer" else "decimal"
            _validate(sheet, DataValidation(type=kind, operator="between", formula1=low, formula2=high), cells,
                      f"{f.name} must be a number from {low} to {high}.")
        elif choices := allowed_values(f):
            _validate(sheet, DataValidation(type="list", formula1=_list_formula(f.name, choices)), cells,
                      f"{f.name} must be one of: {', '.join(choices)}.")
    sheet.freeze_panes = "A2"
    _instructions(book.create_sheet("Instructions"), spec)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _column_format(f: ImportField) -> str | None:
    """Dates show as dates; text columns are Text ("@"), so Excel keeps what is typed ("00123", "1-2", "+44 ...")
    instead of turning it into a number or a date."""
    if f.type == "date":
        return DATE_FORMAT
    if f.type in ("string", "email", "list") or f.reference is not None:
        return TEXT_FORMAT
    return None


def _spreadsheet_value(value: Any) -> Any:
    """Dates and numbers as real cells (so Excel shows and sorts them as such); yes/no as the dropdown's words."""
    if isinstance(value, bool):
        return BOOLEAN_WORDS[0] if value else BOOLEAN_WORDS[1]
    return value


def _list_formula(name: str, choices: list[str]) -> str:
    """An in-cell dropdown list. Excel allows 255 characters and no commas inside values here; a longer list
    would need a range on another sheet, so it fails loudly (every template is built in the tests)."""
    formula = f'"{",".join(choices)}"'
    if len(formula) > 257 or any("," in choice or '"' in choice for choice in choices):
        raise ValueError(f"the allowed values of {name} do not fit an Excel dropdown list; use a range")
    return formula


def _validate(sheet: Any, validation: DataValidation, cells: str, message: str) -> None:
    validation.error = message
    validation.errorTitle = "Not allowed here"
    validation.showErrorMessage = True
    validation.allow_blank = True
    validation.add(cells)
    sheet.add_data_validation(validation)


INSTRUCTION_HEADERS = ("Field", "Required", "Type", "Allowed values", "Example", "Description")


def _instructions(sheet: Any, spec: EntitySpec) -> None:
    from openpyxl.styles import Alignment, Font  # lazy: see the module docstring

    first = spec.entity.replace("_", " ").capitalize()
    lines = [
        f"How to fill in this {spec.label} template",
        f"Add one {spec.label} per row on the '{first}' sheet, below the header row; the example row may be "
        "replaced or deleted.",
        "Keep the header names as they are: the import then maps every column without questions.",
        "Required columns have an amber header in bold; the others (pale blue, not bold) may be left blank.",
        "Dates: a date cell or text as YYYY-MM-DD. Numbers: 12.5 or 12,5. Yes/no: also true/false, y/n, 1/0.",
        "Text columns are formatted as Text, so codes such as 00123 keep their leading zeros.",
        f"A row whose {spec.natural_key} already exists updates that {spec.label}; importing the same file twice "
        "changes nothing the second time.",
    ]
    for number, line in enumerate(lines, start=1):
        sheet.cell(row=number, column=1, value=line).font = Font(bold=number == 1, size=14 if number == 1 else 11)
    top = len(lines) + 2
    for column, title in enumerate(INSTRUCTION_HEADERS, start=1):
        cell = sheet.cell(row=top, column=column, value=title)
        cell.font = Font(bold=True)
        cell.fill = _fill(required=False)
    for row, f in enumerate(spec.fields, start=top + 1):
        values = (f.name, "yes" if f.required else "no", TYPE_WORDS.get(f.type, "Text"),
                  ", ".join(allowed_values(f)), as_text(_spreadsheet_value(example_value(spec, f))),
                  describe(spec, f))
        for column, value in enumerate(values, start=1):
            cell = sheet.cell(row=row, column=column, value=value)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            if column == 1 and f.required:
                cell.font = Font(bold=True)
                cell.fill = _fill(required=True)
    for letter, width in zip("ABCDEF", (20, 10, 22, 34, 28, 80), strict=True):
        sheet.column_dimensions[letter].width = width


# --- CSV ------------------------------------------------------------------------------------------------


def _csv(spec: EntitySpec) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    example = example_record(spec)
    writer.writerow([f.name for f in spec.fields])
    writer.writerow([_csv_text(example[f.name]) for f in spec.fields])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _csv_text(value: Any) -> str:
    """Booleans as yes/no, as a spreadsheet user types them; everything else as in XML."""
    return _spreadsheet_value(value) if isinstance(value, bool) else as_text(value)


# --- XML and XSD ----------------------------------------------------------------------------------------


def record_element(spec: EntitySpec) -> str:
    """The element of one record: the entity's label as a name (``time entry`` → ``time_entry``)."""
    return spec.label.replace(" ", "_")


def _xml(spec: EntitySpec, schema_url: str) -> bytes:
    root = etree.Element(spec.entity, nsmap={"xsi": XSI})
    root.set(f"{{{XSI}}}noNamespaceSchemaLocation", schema_url)
    root.append(etree.Comment(f" One <{record_element(spec)}> per {spec.label}; one element per field, in any "
                              "order; leave out (or leave empty) what you do not know. "))
    record = etree.SubElement(root, record_element(spec))
    for f, value in zip(spec.fields, example_record(spec).values(), strict=True):
        etree.SubElement(record, f.name).text = as_text(value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _xsd(spec: EntitySpec) -> bytes:
    schema = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS})
    schema.set("elementFormDefault", "unqualified")
    _doc(schema, f"Interchange import layout for {spec.entity}: the root <{spec.entity}> holds any number of "
                 f"<{record_element(spec)}> records; each holds one element per field, in any order.")
    empty = etree.SubElement(schema, f"{{{XS}}}simpleType", name="empty")
    _doc(empty, "An empty element: the same as leaving the field out.")
    etree.SubElement(etree.SubElement(empty, f"{{{XS}}}restriction", base="xs:string"), f"{{{XS}}}length",
                     value="0")
    root = etree.SubElement(schema, f"{{{XS}}}element", name=spec.entity)
    sequence = etree.SubElement(etree.SubElement(root, f"{{{XS}}}complexType"), f"{{{XS}}}sequence")
    record = etree.SubElement(sequence, f"{{{XS}}}element", name=record_element(spec), minOccurs="0",
                              maxOccurs="unbounded")
    fields = etree.SubElement(etree.SubElement(record, f"{{{XS}}}complexType"), f"{{{XS}}}all")
    for f in spec.fields:
        element = etree.SubElement(fields, f"{{{XS}}}element", name=f.name, minOccurs="1" if f.required else "0")
        _doc(element, describe(spec, f))
        element.append(_xsd_type(f))
    return etree.tostring(schema, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _doc(parent: etree._Element, text: str) -> None:
    annotation = etree.SubElement(parent, f"{{{XS}}}annotation")
    etree.SubElement(annotation, f"{{{XS}}}documentation").text = text


XSD_BASES = {"integer": "xs:integer", "decimal": "xs:decimal", "date": "xs:date", "boolean": "xs:boolean"}


def _xsd_type(f: ImportField) -> etree._Element:
    """The field's simple type; an optional field also accepts an empty element (the reader's "blank")."""
    base = etree.Element(f"{{{XS}}}simpleType")
    restriction = etree.SubElement(base, f"{{{XS}}}restriction", base=XSD_BASES.get(f.type, "xs:string"))
    facets: list[tuple[str, str]] = []
    if f.type == "enum" and f.choices:
        facets += [("enumeration", choice) for choice in f.choices]
    if f.type in ("string", "email", "list") or f.reference is not None:
        if f.required:
            facets.append(("minLength", "1"))
        if f.max_length is not None:
            facets.append(("maxLength", str(f.max_length)))
    if f.type == "email":
        facets.append(("pattern", r"[^@\s]+@[^@\s]+"))
    if f.minimum is not None:
        facets.append(("minInclusive", _number(f.minimum)))
    if f.maximum is not None:
        facets.append(("maxInclusive", _number(f.maximum)))
    for facet, value in facets:
        etree.SubElement(restriction, f"{{{XS}}}{facet}", value=value)
    if f.required or (f.type in ("string", "list") and f.reference is None):
        return base  # a plain optional text field already accepts ""
    union = etree.Element(f"{{{XS}}}simpleType")
    member = etree.SubElement(union, f"{{{XS}}}union", memberTypes="empty")
    member.append(base)
    return union


# --- JSON and JSON Schema -------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _json(spec: EntitySpec, schema_url: str) -> bytes:
    record = {name: _json_value(value) for name, value in example_record(spec).items()}
    document = {"$schema": schema_url, spec.entity: [record]}
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


JSON_TYPES = {"integer": "integer", "decimal": "number", "boolean": "boolean"}


def field_json_schema(spec: EntitySpec, f: ImportField) -> dict[str, Any]:
    """One property: its type and limits; an optional field may also be ``null`` (the reader's "blank")."""
    schema: dict[str, Any] = {"description": describe(spec, f)}
    if f.type == "enum" and f.choices:
        schema["enum"] = list(f.choices) + ([] if f.required else [None])
    else:
        kind = JSON_TYPES.get(f.type, "string")
        schema["type"] = kind if f.required else [kind, "null"]
    if f.type == "date":
        schema["format"] = "date"
    elif f.type == "email":
        schema["format"] = "email"
    if schema.get("type") in ("string", ["string", "null"]):
        if f.required:
            schema["minLength"] = 1
        if f.max_length is not None:
            schema["maxLength"] = f.max_length
    if f.minimum is not None:
        schema["minimum"] = _json_value(f.minimum)
    if f.maximum is not None:
        schema["maximum"] = _json_value(f.maximum)
    schema["examples"] = [_json_value(example_value(spec, f))]
    return schema


def json_schema(spec: EntitySpec) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``{"<entity>": [records]}``, or of a bare array of records."""
    record_name = record_element(spec)
    record = {
        "type": "object",
        "title": spec.label.capitalize(),
        "properties": {f.name: field_json_schema(spec, f) for f in spec.fields},
        "required": spec.required,
        "additionalProperties": False,
    }
    records = {"type": "array", "items": {"$ref": f"#/$defs/{record_name}"}}
    return {
        "$schema": JSON_SCHEMA_DRAFT,
        "$id": f"urn:interchange:import:{spec.entity}",
        "title": f"Interchange import: {spec.entity.replace('_', ' ')}",
        "description": f'An object {{"{spec.entity}": [...]}} holding the records (other members are ignored), '
                       "or a bare array of records.",
        "anyOf": [
            {"type": "object", "properties": {"$schema": {"type": "string"}, spec.entity: records},
             "required": [spec.entity]},
            records,
        ],
        "$defs": {record_name: record},
    }


def _json_schema(spec: EntitySpec) -> bytes:
    return (json.dumps(json_schema(spec), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
