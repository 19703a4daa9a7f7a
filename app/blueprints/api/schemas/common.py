"""Schemas and fields every API resource shares."""

from __future__ import annotations

from datetime import UTC, datetime

import marshmallow as ma

PROBLEM_JSON = "application/problem+json"


class Text(ma.fields.String):
    """A string that can be stored: JSON may carry lone surrogates, which no database encodes."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ma.ValidationError("Contains characters that are not valid Unicode text.") from exc
        return text


class UTCDateTime(ma.fields.AwareDateTime):
    """An ISO 8601 date and time; without an offset it is read as UTC."""

    def __init__(self, **kwargs) -> None:
        super().__init__(format="iso", default_timezone=UTC, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError as exc:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
            raise ma.ValidationError("The date and time is out of range.") from exc


class ProblemSchema(ma.Schema):
    """An error, as RFC 9457 application/problem+json."""

    type = ma.fields.String(
        required=True, metadata={"description": "A URI naming the problem type", "example": "about:blank"}
    )
    title = ma.fields.String(
        required=True, metadata={"description": "Short summary of the status", "example": "Invalid input"}
    )
    status = ma.fields.Integer(required=True, metadata={"description": "The HTTP status code", "example": 422})
    detail = ma.fields.String(required=True, metadata={"description": "What went wrong, for a person to read"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={
            "description": "For invalid input: the messages for each field",
            "example": {"email": ["Enter a valid email address, such as ada@example.com."]},
        },
    )


class PageMetaSchema(ma.Schema):
    page = ma.fields.Integer(required=True, metadata={"description": "This page's number (1 is the first)"})
    per_page = ma.fields.Integer(required=True, metadata={"description": "Records per page"})
    total = ma.fields.Integer(required=True, metadata={"description": "Records matching the filters"})
    pages = ma.fields.Integer(required=True, metadata={"description": "Number of pages (at least 1)"})


class PageLinksSchema(ma.Schema):
    self = ma.fields.String(required=True, metadata={"description": "This page"})
    first = ma.fields.String(required=True, metadata={"description": "The first page"})
    last = ma.fields.String(required=True, metadata={"description": "The last page"})
    next = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "The next page, or null on the last"}
    )
    prev = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "The previous page, or null on the first"}
    )
