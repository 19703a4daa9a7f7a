"""The one list of blueprints."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter


def digits_at_most(limit: int) -> str:
    """A regex matching the decimal numbers from 0 to ``limit`` (leading zeros allowed)."""
    text = str(limit)
    options = [f"[0-9]{{1,{len(text) - 1}}}"] if len(text) > 1 else []
    for i, digit in enumerate(text):
        if digit != "0":
            options.append(f"{text[:i]}[0-{int(digit) - 1}][0-9]{{{len(text) - i - 1}}}")
    options.append(text)
    return f"0*(?:{'|'.join(options)})"


class DatabaseIdConverter(IntegerConverter):
    """``<int:...>`` in every URL: ids past the 32-bit primary-key range match no route (404),
    instead of reaching PostgreSQL and failing with "integer out of range".

    The range is in the regex, not only in ``max``: werkzeug checks ``max`` after picking a
    rule by method, so with one rule per method an id out of range answered 405, not 404.
    """

    def __init__(self, map, **kwargs) -> None:  # noqa: A002 - werkzeug's signature
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, **kwargs)
        if self.max is not None and not self.signed:
            self.regex = digits_at_most(self.max)


def register_blueprints(app: Flask) -> None:
    app.url_map.converters["int"] = DatabaseIdConverter
    from app.blueprints.api import init_api
    from app.blueprints.api_keys import bp as api_keys_bp
    from app.blueprints.audit import bp as audit_bp
    from app.blueprints.auth import bp as auth_bp
    from app.blueprints.dashboard import bp as dashboard_bp
    from app.blueprints.data import bp as data_bp
    from app.blueprints.exports import bp as exports_bp
    from app.blueprints.health import bp as health_bp
    from app.blueprints.import_templates import bp as import_templates_bp
    from app.blueprints.imports import bp as imports_bp
    from app.blueprints.jobs import bp as jobs_bp
    from app.blueprints.members import bp as members_bp
    from app.blueprints.oauth import bp as oauth_bp
    from app.blueprints.oauth_apps import bp as oauth_apps_bp
    from app.blueprints.sso import bp as sso_bp
    from app.blueprints.sso import settings_bp as sso_settings_bp
    from app.blueprints.upcoming import bp as upcoming_bp

    for bp in (health_bp, auth_bp, dashboard_bp, data_bp, jobs_bp, members_bp, audit_bp, api_keys_bp,
               oauth_bp, oauth_apps_bp, imports_bp, import_templates_bp, exports_bp, sso_bp,
               sso_settings_bp, upcoming_bp):
        app.register_blueprint(bp)
    init_api(app)
