"""The one list of blueprints."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
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
