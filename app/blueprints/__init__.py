"""The one list of blueprints."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter


class DatabaseIdConverter(IntegerConverter):
    """``<int:...>`` in every URL: ids past the 32-bit primary-key range match no route (404),
    instead of reaching PostgreSQL and failing with "integer out of range"."""

    def __init__(self, map, **kwargs) -> None:  # noqa: A002 - werkzeug's signature
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, **kwargs)


def register_blueprints(app: Flask) -> None:
    app.url_map.converters["int"] = DatabaseIdConverter
    from app.blueprints.api import init_api
    from app.blueprints.audit import bp as audit_bp
    from app.blueprints.auth import bp as auth_bp
    from app.blueprints.dashboard import bp as dashboard_bp
    from app.blueprints.data import bp as data_bp
    from app.blueprints.health import bp as health_bp
    from app.blueprints.jobs import bp as jobs_bp
    from app.blueprints.members import bp as members_bp
    from app.blueprints.upcoming import bp as upcoming_bp

    for bp in (health_bp, auth_bp, dashboard_bp, data_bp, jobs_bp, members_bp, audit_bp, upcoming_bp):
        app.register_blueprint(bp)
    init_api(app)
