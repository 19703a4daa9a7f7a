"""Benchmark of the import pipeline end to end (read → map → validate → load) against raw baselines.

Generates a file of ``--rows`` rows × 8 columns of ``--entity`` (``people``, or ``time_entries`` whose
person and project columns reference 500 people and 50 projects created first) as ``--format`` CSV or
XLSX (xlsxwriter, constant memory), then measures, each step in its own forked child (as RQ runs each
job in a forked work-horse, so each step's peak RSS is its own):

- ``raw load``: the same rows into a scratch table of TEXT columns with no checks at all: ``csv.reader``
  + one ``executemany`` on SQLite, the file streamed into ``COPY ... FROM STDIN`` on PostgreSQL (when
  ``DATABASE_URL`` is set);
- ``table load``: the same rows into the entity's own table (its indexes, foreign keys and column
  types), with only the conversions that make them fit, rolled back afterwards: the floor the database
  sets for storing these rows at all;
- ``reader``: ``open_reader(...).table()`` alone, the rows by position as the import reads them (the
  reader's fastest path, with every check on the file: decoding, dialect, sizes, the XLSX zip and extent
  checks), the floor of any import of this file;
- ``import``: ``services.imports.run_import_file`` creating every row (both passes, all checks,
  chunked inserts, one commit per chunk);
- ``re-import``: the same file again, every row found "unchanged" (lookups and comparisons, no writes).

It prints rows/s, the time ratio to the raw load, the table load and the reader, and each step's peak
RSS (``ru_maxrss`` of the child, which starts from the parent's resident pages it touches).

Reproduce: ``.venv/bin/python benchmarks/imports.py --rows 1000000 --entity time_entries`` (SQLite in a
temporary directory), ``--format xlsx --rows 200000``, or with ``DATABASE_URL=postgresql://...
REDIS_URL=redis://...`` (only its own organisation and scratch table are touched; both are removed at the
end). Figures and the commands behind them: ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import resource
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import benchmark_app, in_child  # noqa: E402

HEADERS = {
    "people": ["Email", "Full name", "Title", "Department", "Cost centre", "Hourly rate", "Weekly capacity", "Active"],
    "time_entries": ["External ID", "Person", "Project", "Task", "Spent on", "Hours", "Billable", "Note"],
}
SCRATCH = "bench_raw_rows"
REFERENCED_PEOPLE, REFERENCED_PROJECTS = 500, 50


def sample_rows(entity: str, rows: int) -> Iterator[list[str]]:
    """The benchmark's rows as text, the same for the CSV, the XLSX and the raw load."""
    for i in range(rows):
        if entity == "people":
            yield [f"person{i}@bench.example", f"Person {i}", "Engineer", f"Dept {i % 40}", f"CC-{i % 7}",
                   f"{50 + i % 100}.25", "37,5", "yes" if i % 3 else "no"]
        else:
            day = dt.date(2026, 1, 1) + dt.timedelta(days=i % 300)
            yield [f"TE-{i}", f"ref{i % REFERENCED_PEOPLE}@bench.example", f"P-{i % REFERENCED_PROJECTS}", "",
                   day.isoformat(), f"{1 + i % 8}.5", "yes" if i % 4 else "no", f"Work item {i}"]


def generate(path: Path, entity: str, rows: int, fmt: str) -> Path:
    """Write the file to import (and, for XLSX, a CSV twin of the same rows for the raw load)."""
    csv_path = path.with_suffix(".csv")
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS[entity])
        writer.writerows(sample_rows(entity, rows))
    if fmt == "csv":
        return csv_path
    import xlsxwriter

    xlsx_path = path.with_suffix(".xlsx")
    workbook = xlsxwriter.Workbook(str(xlsx_path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Data")
    sheet.write_row(0, 0, HEADERS[entity])
    for number, row in enumerate(sample_rows(entity, rows), start=1):
        sheet.write_row(number, 0, row)
    workbook.close()
    return xlsx_path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, rows: int, work: Callable[[], object], baselines: tuple[float, ...] = ()) -> tuple[float, object]:
    """Run one step in its own forked child (see ``harness.in_child``); print and return its time and result."""

    def step() -> dict[str, object]:
        start = time.perf_counter()
        result = work()
        return {"seconds": time.perf_counter() - start, "result": result}

    outcome, rss = in_child(step)
    seconds = outcome["seconds"]
    ratios = "".join(f" {seconds / b:7.2f}x" for b in baselines)
    print(f"{label:<12} {rows:>10,} {seconds:9.2f} s {rows / seconds:>11,.0f} rows/s {ratios:<27} "
          f"{rss:6.0f} MB", flush=True)
    return seconds, outcome["result"]


def raw_load(path: Path) -> None:
    """The fastest plain load of the same file the database offers, with no validation at all."""
    from sqlalchemy import text

    from app.extensions import db

    connection = db.session.connection()
    width = len(next(iter(HEADERS.values())))
    columns = ", ".join(f"c{i} TEXT" for i in range(width))
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
            placeholders = ", ".join("?" * width)
            raw.cursor().executemany(f"INSERT INTO {SCRATCH} VALUES ({placeholders})", reader)
    db.session.commit()


def table_rows(entity: str, path: Path, org_id: int) -> Iterator[tuple[object, ...]]:
    """The file's rows as the entity's table stores them, with the least work that makes them fit.

    Decimal commas become points and references become ids by a dict lookup; nothing is validated.
    The references are read before the first row is asked for, not while a ``COPY`` holds the connection.
    """
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Person, Project, utcnow

    now = utcnow()
    stamp = (org_id, now, now, 1)
    people = dict(db.session.execute(select(Person.email, Person.id).where(Person.organization_id == org_id)).all())
    projects = dict(db.session.execute(select(Project.code, Project.id).where(Project.organization_id == org_id)).all())

    def rows() -> Iterator[tuple[object, ...]]:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            for cells in reader:
                if entity == "people":
                    email, name, title, department, centre, rate, capacity, active = cells
                    yield (email.lower(), name, title, department, centre, rate, capacity.replace(",", "."),
                           active == "yes", "[]", *stamp)
                else:
                    external_id, person, project, _, spent_on, hours, billable, note = cells
                    yield (external_id, people[person], projects[project], spent_on, hours, billable == "yes",
                           note, *stamp)

    return rows()


TABLE_COLUMNS = {
    "people": "email, name, title, department, cost_centre, hourly_rate, weekly_capacity, active, skills, "
              "organization_id, created_at, updated_at, version",
    "time_entries": "external_id, person_id, project_id, spent_on, hours, billable, note, "
                    "organization_id, created_at, updated_at, version",
}


def table_load(entity: str, path: Path, org_id: int) -> None:
    """The same rows straight into the entity's own table (its indexes, foreign keys and types), then undone.

    This is the floor the database itself sets for loading these rows: ``COPY`` on PostgreSQL, one
    ``executemany`` on SQLite, in one transaction that is rolled back so the import starts from empty.
    """
    from app.extensions import db

    connection = db.session.connection()
    raw = connection.connection.dbapi_connection
    columns = TABLE_COLUMNS[entity]
    rows = table_rows(entity, path, org_id)
    if db.engine.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {entity} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        placeholders = ", ".join("?" * len(columns.split(",")))
        raw.cursor().executemany(f"INSERT INTO {entity} ({columns}) VALUES ({placeholders})", rows)
    db.session.rollback()


def vacuum(entity: str) -> None:
    """Clear away the table load's rolled-back rows on PostgreSQL before the import runs.

    They stay in the table and its indexes as dead tuples until a vacuum, and every insert of the same
    key then checks them on the unique index: the import of a million time entries took 28.5 s after
    the table load, 21.4 s on a fresh table. No real import follows a million rolled-back copies of itself.
    """
    from app.extensions import db

    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f"VACUUM {entity}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--entity", choices=sorted(HEADERS), default="people")
    parser.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    args = parser.parse_args()
    with benchmark_app("interchange-import-bench-") as (app, workspace):
        started = time.perf_counter()
        path = generate(workspace / args.entity, args.entity, args.rows, args.format)
        print(f"generated {path.name} in {time.perf_counter() - started:.1f} s; "
              f"peak RSS so far {peak_rss_mb():.0f} MB")
        with app.app_context():
            run(app, path, args.entity, args.rows)


def create_references(org, entity: str) -> None:
    """Time entries point at people and projects by natural key: create those first (one insert each)."""
    if entity != "time_entries":
        return
    from sqlalchemy import insert

    from app.extensions import db
    from app.models import Person, Project, utcnow

    now = utcnow()
    stamp = {"organization_id": org.id, "created_at": now, "updated_at": now, "version": 1}
    db.session.execute(insert(Person), [stamp | {"email": f"ref{i}@bench.example", "name": f"Ref {i}", "skills": []}
                                        for i in range(REFERENCED_PEOPLE)])
    db.session.execute(insert(Project), [stamp | {"code": f"P-{i}", "name": f"Project {i}"}
                                         for i in range(REFERENCED_PROJECTS)])
    db.session.commit()


def run(app, path: Path, entity: str, rows: int) -> None:
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
    print(f"{db.engine.dialect.name}, {entity} {path.suffix[1:].upper()} {rows:,} rows × {len(HEADERS[entity])} "
          f"columns, {size:.1f} MB")
    print(f"{'step':<12} {'rows':>10} {'time':>11} {'speed':>18} {'vs raw':>8} {'vs table':>8} {'vs reader':>9} "
          f"{'peak RSS':>9}")
    try:
        create_references(org, entity)
        baseline, _ = timed("raw load", rows, lambda: raw_load(path.with_suffix(".csv")))
        table, _ = timed("table load", rows, lambda: table_load(entity, path.with_suffix(".csv"), org.id), (baseline,))
        vacuum(entity)
        reading, _ = timed("reader", rows, lambda: sum(1 for _ in open_reader(path, path.name).table(None)[1]),
                           (baseline, table))
        outcome: dict[str, object] = {}
        for label in ("import", "re-import"):
            _, outcome[label] = timed(label, rows,
                                      lambda: run_import_file(org, actor, path, path.name, entity).as_dict(),
                                      (baseline, table, reading))
        for label, summary in outcome.items():
            print(f"{label}: {summary}")
    finally:
        db.session.rollback()
        db.session.execute(text(f"DROP TABLE IF EXISTS {SCRATCH}"))
        db.session.delete(db.session.merge(org))
        db.session.commit()
    print(f"peak RSS of the benchmark's own process (setup, file generation) {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
