"""The Alembic revisions and the models describe the same schema, and the revisions apply from scratch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from app import create_app
from app.extensions import db


def _schema_diff() -> list:
    """What autogenerate would write into a new revision for the current database (empty when in step)."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def _model_tables() -> set[str]:
    return set(db.metadata.tables)


@pytest.fixture
def fresh_app(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    """A second app on a brand-new, empty SQLite file (SQLite only: CI's PostgreSQL is migrated once)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("a fresh database is only built on SQLite; the PostgreSQL test database is already migrated")
    fresh = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "fresh-secret-key",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'fresh.db'}",
            "REDIS_URL": app.config["REDIS_URL"],
            "INTERCHANGE_STORAGE": str(tmp_path),
            "INTERCHANGE_ENV": "test",
            "LOG_JSON": False,
            "LOG_LEVEL": "WARNING",
        }
    )
    yield fresh
    with fresh.app_context():
        db.engine.dispose()


def test_migrations_match_the_models():
    diff = _schema_diff()
    assert diff == [], f"models and migrations disagree; write a revision for: {diff}"


def test_migrations_upgrade_an_empty_database_through_the_cli(fresh_app):
    # The CLI runs in the current app context when there is one, so make it the fresh app's.
    with fresh_app.app_context():
        assert inspect(db.engine).get_table_names() == []
        result = fresh_app.test_cli_runner().invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        tables = set(inspect(db.engine).get_table_names())
        assert _model_tables() <= tables
        assert _schema_diff() == []


def test_migrations_downgrade_to_base_and_upgrade_again(fresh_app):
    with fresh_app.app_context():
        upgrade()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert _model_tables() <= set(inspect(db.engine).get_table_names())
        assert _schema_diff() == []


def test_nullable_reference_indexes_hold_only_set_values():
    """Autogenerate does not compare an index's WHERE clause, so the partial indexes are checked here."""
    columns = {f"ix_{table}_{column}": column for table, column in (
        ("people", "manager_id"), ("projects", "client_id"), ("tasks", "assignee_id"),
        ("assignments", "task_id"), ("time_entries", "task_id"), ("comments", "author_id"))}
    if db.engine.dialect.name == "postgresql":
        query = text("SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(:names)")
        params = {"names": list(columns)}
    else:
        query = text("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                     "AND name IN (SELECT value FROM json_each(:names))")
        params = {"names": json.dumps(list(columns))}
    with db.engine.connect() as connection:
        found = dict(connection.execute(query, params).all())
    assert sorted(found) == sorted(columns)
    for name, definition in found.items():
        assert definition.replace("(", "").replace(")", "").endswith(f" WHERE {columns[name]} IS NOT NULL"), definition
