"""Exports: check a request, start it as a background job, write the file, and hand it out to its organisation.

The rows are the list pages' rows: the query is the entity's own ``RecordService.query`` with the same
filters (and search ``q``) the list page and the API use, read in batches in id order (a server-side
cursor on PostgreSQL, keyset pages on SQLite; see ``_batches``) so a million rows never sit in memory. References are
joined in the same query and written as the referenced record's natural key, which is what an import
expects, so an export re-imports unchanged.

Files live under ``INTERCHANGE_STORAGE/exports/<org id>/`` and are kept ``RETENTION_DAYS`` days: starting an
export removes the organisation's older files (the row stays, marked expired), so there is no separate
cleaner to schedule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import Select, func, select
from sqlalchemy.orm import aliased

from app.errors import DomainError, NotFound, ValidationFailed
from app.extensions import db
from app.importers.exports import CONTENT_TYPES, FORMATS, SCHEMA_VERSION, Column, ExportTarget, write_export
from app.importers.specs import ENTITY_SPECS, EntitySpec
from app.models import ExportJob, JobStatus, Organization, utcnow
from app.services import audit, jobs
from app.services.audit import Actor
from app.services.querying import Page, paginate, without_nul
from app.services.records import ListQuery

BATCH_SIZE = 5_000
XLSX_MAX_DATA_ROWS = 1_048_575
RETENTION_DAYS = 7
SEARCH_KEY = "q"
MAX_FILTER_CHARS = 200


class ExportGone(DomainError):
    status_code = 410


@dataclass(frozen=True)
class ExportRequest:
    """A checked request: a known entity and format, its columns in template order, filters as text."""

    entity: str
    format: str
    columns: list[str]
    filters: dict[str, str]


def columns_of(entity: str) -> list[str]:
    """The exportable columns of ``entity``: its import fields, in template order."""
    return [f.name for f in ENTITY_SPECS[entity].fields]


def check_request(entity: Any, fmt: Any, columns: Any = None, filters: Any = None) -> ExportRequest:
    """Check what a form, the API or a test asked for; every problem is named at once.

    Raises:
        ValidationFailed: under ``entity``, ``format``, ``columns`` or ``filters``, saying what is known.
    """
    errors: dict[str, list[str]] = {}
    spec = ENTITY_SPECS.get(entity) if isinstance(entity, str) else None
    if spec is None:
        errors["entity"] = [f"Unknown entity {entity!r}; choose one of {', '.join(ENTITY_SPECS)}."]
    if fmt not in FORMATS:
        errors["format"] = [f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}."]
    chosen: list[str] = []
    clean: dict[str, str] = {}
    if spec is not None:
        chosen = _check_columns(spec, columns, errors)
        clean = _check_filters(spec, filters, errors)
    if errors:
        raise ValidationFailed(errors, "The export cannot be started.")
    return ExportRequest(entity, fmt, chosen, clean)


def _check_columns(spec: EntitySpec, columns: Any, errors: dict[str, list[str]]) -> list[str]:
    known = [f.name for f in spec.fields]
    if columns in (None, "", []):
        return known
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        errors["columns"] = ["Send the columns as a list of names."]
        return []
    unknown = [c for c in columns if c not in known]
    if unknown:
        errors["columns"] = [f"{spec.entity} has no column {', '.join(map(repr, unknown))}; "
                             f"its columns are {', '.join(known)}."]
    return [c for c in known if c in columns]


def _check_filters(spec: EntitySpec, filters: Any, errors: dict[str, list[str]]) -> dict[str, str]:
    if filters in (None, ""):
        return {}
    if not isinstance(filters, Mapping):
        errors["filters"] = ["Send the filters as an object of name: value."]
        return {}
    by_name = {f.name: f for f in spec.service.filters}
    problems: list[str] = []
    clean: dict[str, str] = {}
    for name, value in filters.items():
        if isinstance(value, bool):
            value = "1" if value else "0"
        if isinstance(value, int):
            value = str(value)
        if name != SEARCH_KEY and name not in by_name:
            known = ", ".join([SEARCH_KEY, *by_name])
            problems.append(f"{spec.entity} has no filter {name!r}; its filters are {known}.")
            continue
        if not isinstance(value, str):
            problems.append(f"filter {name!r}: send the value as text.")
            continue
        value = without_nul(value).strip()
        if not value:
            continue
        if len(value) > MAX_FILTER_CHARS:
            problems.append(f"filter {name!r}: at most {MAX_FILTER_CHARS} characters.")
            continue
        flt = by_name.get(name)
        problem = flt.problem(value) if flt is not None else None
        if problem:
            problems.append(f"filter {name!r}: {problem}")
            continue
        clean[name] = value.lower() if flt is not None and flt.kind == "bool" else value
    if problems:
        errors["filters"] = problems
    return clean


def filters_from_args(entity: str, args: Mapping[str, str]) -> dict[str, str]:
    """The entity's list-page filters found in a query string (the list page's "Export" link)."""
    spec = ENTITY_SPECS.get(entity)
    if spec is None:
        return {}
    names = {SEARCH_KEY, *(f.name for f in spec.service.filters)}
    return {name: args[name] for name in names if args.get(name)}


# --- starting and reading --------------------------------------------------------------------


def start_export(org: Organization, actor: Actor, entity: Any, fmt: Any, columns: Any = None,
                 filters: Any = None) -> ExportJob:
    """Check the request, store the export row and its job, commit, then enqueue it (queue ``exports``).

    Raises:
        ValidationFailed: an unknown entity, format, column or filter, or a bad filter value; nothing is stored.
    """
    request = check_request(entity, fmt, columns, filters)
    purge_expired(org)
    export = ExportJob(organization_id=org.id, requested_by_id=actor.user.id if actor.user else None,
                       requested_by_label=actor.label[:200], entity=request.entity, format=request.format,
                       columns=request.columns, filters=request.filters, status=JobStatus.QUEUED.value)
    db.session.add(export)
    db.session.flush()
    audit.record(org, actor, "export.started", export, object_type="ExportJob",
                 details={"entity": request.entity, "format": request.format, "filters": request.filters})
    job = jobs.start_job(org, actor, "export", {"export_id": export.id})  # commits, then enqueues
    export.background_job_id = job.id
    db.session.commit()
    return export


def get_export(org: Organization, export_id: int) -> ExportJob:
    """The organisation's export ``export_id``; another organisation's id is NotFound, as a missing one."""
    export = db.session.scalar(
        select(ExportJob).where(ExportJob.id == export_id, ExportJob.organization_id == org.id)
    ) if 0 < export_id <= 2**31 - 1 else None
    if export is None:
        raise NotFound("Export")
    return export


def list_exports(org: Organization, page: int = 1) -> Page:
    query = select(ExportJob).where(ExportJob.organization_id == org.id)
    return paginate(query.order_by(ExportJob.created_at.desc(), ExportJob.id.desc()), page, 25)


def progress_of(export: ExportJob) -> tuple[int, int | None]:
    """(rows done, rows total) from the background job the runner updates."""
    job = export.background_job
    if export.status == JobStatus.COMPLETED.value:
        return export.row_count or 0, export.row_count or 0
    if job is None:
        return 0, None
    return job.progress_done, job.progress_total


def serialize_export(export: ExportJob, urls: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The status a page or an API client polls."""
    done, total = progress_of(export)
    return {
        "id": export.id, "entity": export.entity, "format": export.format, "status": export.status,
        "columns": export.columns, "filters": export.filters, "processed": done, "total": total,
        "row_count": export.row_count, "file_size": export.file_size, "error": export.error,
        "requested_by": export.requested_by_label,
        "created_at": export.created_at.isoformat(),
        "started_at": export.started_at.isoformat() if export.started_at else None,
        "finished_at": export.finished_at.isoformat() if export.finished_at else None,
        "expired": export.expired_at is not None,
        **(dict(urls) if urls else {}),
    }


@dataclass(frozen=True)
class Download:
    path: Path
    filename: str
    content_type: str
    headers: dict[str, str]


def download(org: Organization, actor: Actor, export_id: int) -> Download:
    """The file of a completed export of ``org``, its safe name, type and metadata headers.

    Each download is an audit event: an export is the organisation's data leaving the building.

    Raises:
        NotFound: no such export in this organisation.
        ExportGone (410): not finished, failed, expired, or its file is missing.
    """
    export = get_export(org, export_id)
    if export.status != JobStatus.COMPLETED.value:
        raise ExportGone(f"Export {export.id} has no file to download: it is {export.status}"
                         + (f" ({export.error})" if export.error else "") + ".")
    path = _storage() / export.file_path if export.file_path else None
    if path is None or not path.is_file():
        raise ExportGone(f"The file of export {export.id} is no longer available (exports are kept "
                         f"{RETENTION_DAYS} days); start the export again to get a fresh file.")
    audit.record(org, actor, "export.downloaded", export, object_type="ExportJob",
                 details={"entity": export.entity, "format": export.format, "rows": export.row_count})
    db.session.commit()
    metadata = _metadata(export, export.row_count or 0)
    headers = {f"X-Export-{key.replace('_', '-').title()}": _header_value(value) for key, value in metadata.items()}
    return Download(path, _filename(export), CONTENT_TYPES[export.format], headers)


def _header_value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, sort_keys=True) if isinstance(value, dict | list) else str(value)
    return re.sub(r"[\r\n]", " ", text.encode("ascii", "backslashreplace").decode("ascii"))


def _filename(export: ExportJob) -> str:
    stamp = (export.finished_at or export.created_at).strftime("%Y%m%d-%H%M%S")
    return f"{export.entity}-{stamp}-{export.id}.{export.format}"


# --- running (in the worker) -----------------------------------------------------------------


def execute_export(export: ExportJob, progress: Callable[[int, int | None], None] | None = None) -> dict[str, Any]:
    """Write the export's file; mark the row completed (or failed with the reason). Safe to run twice.

    Called by the ``run_export`` job; ``progress(done, total)`` is the job runner's. A rerun after a
    lost worker (the row still "running") writes the file again from the start.
    """
    if export.is_terminal:
        return {"rows": export.row_count or 0}
    export.status = JobStatus.RUNNING.value
    export.started_at = utcnow()
    db.session.commit()
    relative = Path("exports") / str(export.organization_id) / f"export-{export.id}.{export.format}"
    path = _storage() / relative
    try:
        rows = _write(export, path, progress)
    except Exception as exc:
        db.session.rollback()
        with suppress(OSError):  # the failure may be the storage itself
            path.unlink(missing_ok=True)
        export.status = JobStatus.FAILED.value if isinstance(exc, DomainError) else JobStatus.ERRORED.value
        export.error = exc.message if isinstance(exc, DomainError) else (
            f"The export stopped on an internal error (reference export-{export.id}).")
        export.finished_at = utcnow()
        db.session.commit()
        raise
    export.row_count = rows
    export.file_path = str(relative)
    export.file_size = path.stat().st_size
    export.status = JobStatus.COMPLETED.value
    export.finished_at = utcnow()
    db.session.commit()
    return {"rows": rows, "bytes": export.file_size}


def row_limit_problem(fmt: str, total: int) -> str | None:
    """Why ``total`` rows cannot go into ``fmt``, or None: a worksheet holds 1,048,576 rows, header included."""
    if fmt == "xlsx" and total > XLSX_MAX_DATA_ROWS:
        return (f"An XLSX sheet holds at most {XLSX_MAX_DATA_ROWS:,} rows of data and this export has {total:,}; "
                "export to CSV, JSON or XML, or narrow the filters.")
    return None


def _write(export: ExportJob, path: Path, progress: Callable[[int, int | None], None] | None) -> int:
    org = db.session.get(Organization, export.organization_id)
    spec = ENTITY_SPECS[export.entity]
    query = spec.service.query(org, ListQuery(search=export.filters.get(SEARCH_KEY, ""), filters=export.filters))
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    if problem := row_limit_problem(export.format, total):
        raise ValidationFailed({"format": [problem]}, problem)
    if progress is not None:
        progress(0, total)
    target = ExportTarget(path=path, entity=export.entity,
                          columns=tuple(Column(f.name, f.type) for f in map(spec.field, export.columns)),
                          metadata=lambda rows: _metadata(export, rows))
    return write_export(export.format, target, _batches(query, spec, export.columns),
                        progress=(lambda done: progress(done, max(total, done))) if progress else None)


def _batches(query: Select, spec: EntitySpec, names: list[str]) -> Iterator[list[tuple[Any, ...]]]:
    """The query's rows as value tuples in id order, ``BATCH_SIZE`` at a time, never all in memory.

    PostgreSQL: one query through a server-side cursor on a connection of its own, so the progress
    commits of the job's session do not touch it (and the file is one consistent snapshot). A keyset
    loop there would depend on the planner: with stale statistics after a bulk import it reads the
    organisation's index and sorts all its rows again for every batch.
    SQLite: keyset pagination by id (the rowid, so each batch is a range read); a second connection
    reading throughout would hold a lock that blocks the progress commits.
    """
    model = spec.model
    selected = []
    joins = []
    for name in names:
        f = spec.field(name)
        if f.reference is None:
            selected.append(getattr(model, f.column))
            continue
        target = aliased(f.reference.model)
        selected.append(getattr(target, f.reference.key))
        joins.append((target, target.id == getattr(model, f.column)))
    base = query.order_by(None).with_only_columns(model.id, *selected)
    for target, onclause in joins:
        base = base.outerjoin_from(model, target, onclause)
    base = base.order_by(model.id)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=BATCH_SIZE).execute(base)
            for part in result.partitions():
                yield [tuple(row)[1:] for row in part]
        return
    base = base.limit(BATCH_SIZE)
    last = 0
    while True:
        rows = db.session.execute(base.where(model.id > last)).all()
        if not rows:
            return
        last = rows[-1][0]
        yield [tuple(row)[1:] for row in rows]
        if len(rows) < BATCH_SIZE:
            return


def _metadata(export: ExportJob, rows: int) -> dict[str, Any]:
    org = db.session.get(Organization, export.organization_id)
    return {
        "exported_at": (export.started_at or utcnow()).isoformat(timespec="seconds"),
        "exported_by": export.requested_by_label,
        "organization": org.slug if org else "",
        "entity": export.entity,
        "format": export.format,
        "filters": export.filters,
        "columns": export.columns,
        "row_count": rows,
        "schema_version": SCHEMA_VERSION,
        "export_id": export.id,
    }


def _storage() -> Path:
    return Path(current_app.config["INTERCHANGE_STORAGE"])


# --- retention -------------------------------------------------------------------------------


def purge_expired(org: Organization, now=None) -> int:
    """Delete the organisation's export files older than RETENTION_DAYS; the rows stay, marked expired."""
    now = now or utcnow()
    old = db.session.scalars(select(ExportJob).where(
        ExportJob.organization_id == org.id, ExportJob.file_path.is_not(None),
        ExportJob.created_at < now - timedelta(days=RETENTION_DAYS),
    )).all()
    for export in old:
        (_storage() / export.file_path).unlink(missing_ok=True)
        export.file_path = None
        export.expired_at = now
    if old:
        db.session.commit()
    return len(old)
