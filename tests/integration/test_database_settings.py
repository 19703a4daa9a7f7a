"""What every SQLite connection the app opens asks for, whichever database the suite runs on."""

from __future__ import annotations

from sqlalchemy import create_engine

from app.extensions import SQLITE_CACHE_KIB


def test_sqlite_connections_enforce_foreign_keys_and_cache_pages_for_bulk_loads(app, tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'settings.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            assert connection.exec_driver_sql("PRAGMA cache_size").scalar_one() == -SQLITE_CACHE_KIB
    finally:
        engine.dispose()
