"""What every view needs: the acting user, form error hand-off, list query parsing."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from app.errors import ValidationFailed
from app.services.audit import Actor
from app.services.querying import without_nul


def safe_next(target: str | None) -> str:
    """Only redirect inside the console after sign-in (``next``, SAML RelayState): no open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target \
            and not urlsplit(target).netloc:
        return target
    return url_for("dashboard.index")


def current_actor() -> Actor:
    user = current_user if current_user.is_authenticated else None
    return Actor(user=user._get_current_object() if user is not None else None, ip_address=request.remote_addr)


def apply_errors(form: FlaskForm, exc: ValidationFailed) -> None:
    """Show service-level errors inline, next to the field they concern."""
    for name, messages in exc.errors.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + messages
        else:
            form.form_errors.extend(messages)


def int_arg(name: str, default: int = 1) -> int:
    try:
        return max(1, int(request.args.get(name, default)))
    except (TypeError, ValueError):
        return default


def text_arg(name: str, max_length: int) -> str:
    """A query argument as clean text: trimmed, bounded, without NUL (which PostgreSQL refuses)."""
    return without_nul(request.args.get(name, "")).strip()[:max_length]
