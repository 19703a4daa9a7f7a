"""Benchmark of exports (CSV and XLSX) against a raw read of the same rows, with peak RSS.

Fills an organisation with ``--rows`` people (11 export columns: email, name, title, department, cost
centre, manager by email (a join), skills, hourly rate, weekly capacity, active, external id), then in
one process measures:

- ``raw read``: ``SELECT`` of the same columns (and the manager join) streamed with ``yield_per``, each
  row's values fetched and discarded: the floor of any export of them;
- ``csv`` / ``xlsx`` / ``json``: ``services.exports.execute_export``, the export job's own work (keyset
  batches, value conversion, formula neutralising, the writer, the file on disk).

It prints rows/s, the ratio to the raw read, the file size, and the process's peak RSS after each step
(a high-water mark: a step that held all rows in memory would raise it far above the raw read's).

Reproduce: ``.venv/bin/python benchmarks/exports.py --rows 1000000`` (SQLite in a temporary directory), or
``DATABASE_URL=postgresql://... .venv/bin/python benchmarks/exports.py`` (only its own organisation is
touched, and it is removed at the end).
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import benchmark_app  # noqa: E402

FILL_CHUNK = 20_000


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, rows: int, work: Callable[[], object], baseline: float | None = None) -> float:
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    ratio = f"{seconds / baseline:6.2f}x" if baseline else "   1.00x"
    size = f"{result / 1e6:8.1f} MB" if isinstance(result, int) and result > 0 else " " * 11
    print(f"{label:<10} {rows:>10,} {seconds:8.2f} s {rows / seconds:>10,.0f} rows/s {ratio} raw read {size}"
          f"   peak RSS {peak_mb():5.0f} MB")
    return seconds


def fill(org_id: int, rows: int) -> None:
    """People rows straight into the table (no ORM objects), every tenth managed by the first person."""
    from sqlalchemy import insert, select

    from app.extensions import db
    from app.models import Person, utcnow

    now = utcnow()
    table = Person.__table__
    connection = db.session.connection()
    boss: int | None = None

    def person(i: int) -> dict:
        return {
            "organization_id": org_id, "email": f"person{i}@bench.example", "name": f"Person {i}",
            "title": "=cmd" if i % 50 == 0 else "Engineer", "department": f"Dept {i % 40}",
            "cost_centre": f"CC-{i % 7}", "manager_id": boss if i % 10 == 0 else None,
            "skills": ["python", "sql"] if i % 2 else [], "hourly_rate": Decimal(50 + i % 100) + Decimal("0.25"),
            "weekly_capacity": Decimal("37.50"), "active": bool(i % 3), "external_id": f"ext-{i}",
            "created_at": now, "updated_at": now, "version": 1,
        }

    connection.execute(insert(table), [person(0)])
    boss = connection.execute(select(table.c.id).where(table.c.organization_id == org_id)).scalar_one()
    for start in range(1, rows, FILL_CHUNK):
        connection.execute(insert(table), [person(i) for i in range(start, min(rows, start + FILL_CHUNK))])
    db.session.commit()


def raw_read(org_id: int) -> None:
    """The same columns and join as the export, streamed and discarded."""
    from sqlalchemy import select
    from sqlalchemy.orm import aliased

    from app.extensions import db
    from app.models import Person

    manager = aliased(Person)
    query = (select(Person.id, Person.email, Person.name, Person.title, Person.department, Person.cost_centre,
                    manager.email, Person.skills, Person.hourly_rate, Person.weekly_capacity, Person.active,
                    Person.external_id)
             .outerjoin(manager, manager.id == Person.manager_id)
             .where(Person.organization_id == org_id).order_by(Person.id))
    result = db.session.execute(query.execution_options(yield_per=5_000))
    count = 0
    for part in result.partitions():
        for row in part:
            tuple(row)  # touch every value, as any consumer would (type conversions run here)
        count += len(part)
    db.session.commit()
    assert count > 0


def export(org, fmt: str) -> int:
    from app.extensions import db
    from app.models import ExportJob
    from app.services import exports

    job = ExportJob(organization_id=org.id, requested_by_label="benchmark", entity="people", format=fmt,
                    columns=exports.columns_of("people"), filters={})
    db.session.add(job)
    db.session.commit()
    exports.execute_export(job)
    return job.file_size or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="csv,xlsx", help="comma separated: csv, xlsx, json, xml")
    args = parser.parse_args()
    with benchmark_app("interchange-export-bench-") as (app, _), app.app_context():
        run(args.rows, args.formats.split(","))


def run(rows: int, formats: list[str]) -> None:
    from flask_migrate import upgrade

    from app.extensions import db
    from app.services import accounts
    from app.services.audit import Actor

    upgrade()
    org = accounts.create_org(f"bench-{secrets.token_hex(4)}", "Export benchmark", Actor(user=None,
                                                                                          label_override="benchmark"))
    org_id = org.id
    load = os.getloadavg()[0]
    print(f"{db.engine.dialect.name}, {rows:,} people × 11 export columns; {os.cpu_count()} CPUs, load average "
          f"{load:.2f} at the start")
    try:
        start = time.perf_counter()
        fill(org_id, rows)
        print(f"filled in {time.perf_counter() - start:.1f} s; peak RSS {peak_mb():.0f} MB")
        print(f"{'step':<10} {'rows':>10} {'time':>10} {'speed':>17} {'vs':>8}")
        baseline = timed("raw read", rows, lambda: raw_read(org_id))
        for fmt in formats:
            timed(fmt, rows, lambda fmt=fmt: export(db.session.merge(org), fmt), baseline)
    finally:
        db.session.rollback()
        db.session.delete(db.session.merge(org))
        db.session.commit()
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
