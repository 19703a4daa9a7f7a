"""Friendly error pages (HTML) and problem+json (API); never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.errors import DomainError, ValidationFailed

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Too large",
    422: "Invalid input",
    429: "Too many requests",
    500: "Something went wrong",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _respond(status: int, detail: str, errors: dict | None = None, headers: dict | None = None):
    title = TITLES.get(status, "Error")
    if _wants_json():
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        if errors:
            body["errors"] = errors
        response = jsonify(body)
        response.mimetype = "application/problem+json"
    else:
        response = render_template("errors/error.html", status=status, title=title, detail=detail, errors=errors)
    return response, status, headers or {}


def handle_http(exc: HTTPException):
    if exc.code == 500 or exc.code is None:
        return handle_crash(exc)
    data = getattr(exc, "data", None) or {}
    if "messages" in data:
        # Request parsing (webargs) found invalid fields: name each one and say what was expected.
        return _respond(exc.code, "The request has invalid fields.", _flatten_messages(data["messages"]),
                        data.get("headers"))
    detail = exc.description or TITLES.get(exc.code, "")
    if exc.code == 404:
        detail = "The page or record you asked for does not exist, or it is not in your organisation."
    elif exc.code == 403:
        detail = "Your role in this organisation does not allow this. Ask an admin if you need access."
    return _respond(exc.code, detail)


def handle_csrf(exc: CSRFError):
    return _respond(400, "The form expired or was sent from another site. Reload the page and try again.")


def _flatten_messages(messages: dict) -> dict[str, list[str]]:
    """webargs nests errors by location (json, query) and field; keep field -> messages."""
    errors: dict[str, list[str]] = {}
    for location in messages.values():
        for field, problems in (location.items() if isinstance(location, dict) else []):
            errors[field] = problems if isinstance(problems, list) else [str(problems)]
    return errors


def handle_domain(exc: DomainError):
    headers = {}
    if getattr(exc, "retry_after", None):
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status_code == 401 and request.path.startswith("/api/"):
        headers["WWW-Authenticate"] = 'Bearer realm="interchange"'
    errors = exc.errors if isinstance(exc, ValidationFailed) else None
    return _respond(exc.status_code, exc.message, errors, headers)


def handle_crash(exc: Exception):
    original = getattr(exc, "original_exception", None) or exc
    log.error("unhandled error", exc_info=original, extra={"request_id": g.get("request_id")})
    return _respond(
        500,
        "An unexpected error happened on our side. It has been logged; "
        f"quote reference {g.get('request_id', '-')} if you report it.",
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf)
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(DomainError, handle_domain)
    app.register_error_handler(InternalServerError, handle_crash)
    app.register_error_handler(Exception, handle_crash)
