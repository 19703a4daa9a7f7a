"""Interchange: the integration console. ``create_app`` only wires the parts together."""

from __future__ import annotations

from flask import Flask

from app.config import Config


def create_app(config: Config | dict | None = None) -> Flask:
    """Build the app from ``config`` (a Config or a mapping of overrides) or the environment."""
    app = Flask(__name__, instance_relative_config=False)
    if isinstance(config, Config):
        app.config.from_mapping(config.as_dict())
    else:
        app.config.from_mapping(Config.from_env().as_dict())
        app.config.from_mapping(config or {})
    register_logging(app)
    register_extensions(app)
    register_security(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_cli(app)
    register_jinja(app)
    return app


def register_logging(app: Flask) -> None:
    from app.logging_setup import configure_logging

    configure_logging(app)


def register_extensions(app: Flask) -> None:
    from app.extensions import init_extensions

    init_extensions(app)


def register_security(app: Flask) -> None:
    from app.security import hooks

    hooks.init_app(app)


def register_blueprints(app: Flask) -> None:
    from app.blueprints import register_blueprints as register

    register(app)


def register_errorhandlers(app: Flask) -> None:
    from app.blueprints.errors import init_app

    init_app(app)


def register_cli(app: Flask) -> None:
    from app.cli import init_app

    init_app(app)


def register_jinja(app: Flask) -> None:
    from app.blueprints.navigation import init_app

    init_app(app)
