"""Import jobs: an uploaded file taken through layout, mapping, validation, run and undo.

The wizard, the API and the history page all call this module; the CLI calls ``services.imports``, and
both run the one pipeline of :mod:`app.importers` (the review step is that pipeline as a dry run).

The lifecycle of an :class:`ImportJob`::

    uploaded ─► validating ─► validated ─► queued ─► running ─► completed ─► undoing ─► undone
                    │              │                   │   └──► failed / cancelled
                    └──► failed    └── (layout or mapping changed: back to uploaded)

Validation, the run and undo are background jobs on the ``imports`` queue (``workers/jobs.py``), each
with its ``BackgroundJob`` row for the runner and the sweeper. Crash safety comes from the pipeline's
``on_chunk`` hook: with ``on_error="skip"`` each chunk commits together with its undo records, its errors
and the job's counters (``rows_done`` is the resume point), so a worker killed mid-run leaves either the
whole chunk or none of it, and the retried job resumes after the last committed chunk with the right
counts. With ``on_error="abort"`` the whole import is one transaction: a kill rolls everything back and
the retry starts over. Live progress and the cancel signal go through Redis, because in abort mode the
row cannot be committed before the end (and SQLite has a single writer).
"""

from __future__ import annotations

import csv
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import redis
from flask import current_app
from sqlalchemy import Date, Numeric, bindparam, delete, func, insert, select, update

from app.errors import Conflict, DomainError, NotFound, ValidationFailed
from app.extensions import db, redis_store
from app.importers import (
    ENTITY_SPECS,
    EntitySpec,
    ImportSummary,
    ReaderError,
    ReaderLimits,
    has_template_headers,
    open_reader,
)
from app.importers.exports import xlsx_cell
from app.importers.formulas import neutralise_formula
from app.importers.mapping import RowError, explain_mapping, header_label
from app.importers.pipeline import ChunkOutcome, run_pipeline
from app.importers.readers import EXTRA_KEY, PROBLEM_KEY, Reader
from app.importers.readers.detect import EXTENSIONS, detect_kind
from app.models import (
    BackgroundJob,
    ImportJob,
    ImportRowChange,
    ImportRowError,
    ImportStatus,
    JobStatus,
    MappingPreset,
    Organization,
    User,
    utcnow,
)
from app.models.imports import EDITABLE_STATUSES, IMPORT_MODES, IMPORT_ON_ERROR
from app.services import audit, jobs
from app.services.audit import Actor
from app.services.imports import resolve_mapping
from app.services.querying import Page, paginate, without_nul

PREVIEW_ROWS = 10
FIRST_ERRORS = 100
MAX_HEADER_ROW = 1000  # a header further down is not a header: the table starts near the top
UPLOAD_BLOCK = 1024 * 1024
PRESET_SIMILARITY = 0.8          # share of common headers for a preset to count as "a similar file"
PROGRESS_TTL = 24 * 3600
BATCH = 5_000                    # ids per IN (...) list in undo


class ImportFileRefused(ValidationFailed):
    """An upload refused before anything was stored: too large, hostile, or not what its name says."""

    def __init__(self, message: str) -> None:
        super().__init__({"file": [message]}, f"The file cannot be imported: {message}")


class UndoRefused(Conflict):
    """Undo would lose later changes (or other data); ``rows`` says which, one line each."""

    def __init__(self, message: str, rows: list[str] | None = None) -> None:
        super().__init__(message)
        self.rows = rows or []


class ImportCancelled(Exception):
    """Raised between chunks when a cancel was requested; the pipeline stops there."""


# ---------------------------------------------------------------------------------------------- values


@dataclass
class PreviewRow:
    row: int
    cells: list[str]
    problem: str | None = None


@dataclass
class FileOverview:
    """What the layout step shows: sheets, the chosen one, its header row, headers and the first rows."""

    import_id: int
    filename: str
    file_type: str
    size_bytes: int
    sheets: list[str]
    sheet: str | None
    header_row: int | None            # the row in use (None for JSON and XML, which have no header row)
    detected_header_row: int | None   # what detection picked, so the UI can say "detected"
    headers: list[str]
    rows: list[PreviewRow]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ColumnSuggestion:
    column: str
    target: str | None
    reason: str | None                # exact | synonym | fuzzy | preset | saved | None (ignored)
    samples: list[str] = field(default_factory=list)


@dataclass
class TargetField:
    name: str
    type: str
    required: bool
    choices: list[str] | None = None


@dataclass
class MappingSuggestion:
    """The mapping step: per source column a target (or None) and why; what is still missing."""

    columns: list[ColumnSuggestion]
    fields: list[TargetField]
    required_missing: list[str]
    matches_template: bool            # headers are the template's: the wizard may skip the mapping step
    preset: str | None = None         # name of the preset the suggestion came from, if any

    @property
    def mapping(self) -> dict[str, str | None]:
        return {c.column: c.target for c in self.columns}

    @property
    def reasons(self) -> dict[str, str | None]:
        return {c.column: c.reason for c in self.columns}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"mapping": self.mapping, "reasons": self.reasons}


# ---------------------------------------------------------------------------------------------- helpers


def _spec(entity: str) -> EntitySpec:
    spec = ENTITY_SPECS.get(entity)
    if spec is None:
        raise ValidationFailed({"entity": [f"Unknown entity {entity!r}; choose one of {', '.join(ENTITY_SPECS)}."]})
    return spec


def _actor(user: User | Actor | None) -> Actor:
    return user if isinstance(user, Actor) else Actor(user=user)


def _org(job: ImportJob) -> Organization:
    return db.session.get(Organization, job.organization_id)


def storage_root() -> Path:
    return Path(current_app.config["INTERCHANGE_STORAGE"]) / "imports"


def file_path(job: ImportJob) -> Path:
    return storage_root() / job.stored_path


def limits() -> ReaderLimits:
    return ReaderLimits(max_bytes=current_app.config.get("IMPORT_MAX_BYTES", ReaderLimits.max_bytes))


def _reader(job: ImportJob, header_row: int | None = None) -> Reader:
    try:
        return open_reader(file_path(job), job.original_filename, limits(),
                           header_row=header_row if header_row is not None else job.header_row)
    except ReaderError as exc:
        raise ImportFileRefused(str(exc)) from exc


def _detected_header_row(reader: Reader, sheet: str | None) -> int | None:
    finder = getattr(reader, "header_row", None)
    return finder(sheet) if finder is not None else None


def _detect_header_row(job: ImportJob, sheet: str | None) -> int | None:
    """The header row detection picks for ``sheet``, whatever row the job uses now."""
    if job.file_type in ("json", "xml"):
        return None
    return _detected_header_row(open_reader(file_path(job), job.original_filename, limits()), sheet)


def _preview(reader: Reader, sheet: str | None, headers: list[str]) -> list[PreviewRow]:
    rows = []
    for number, raw in reader.rows(sheet):
        rows.append(PreviewRow(number, [raw.get(h, "") for h in headers], raw.get(PROBLEM_KEY)))
        if len(rows) >= PREVIEW_ROWS:
            break
    return rows


def _require(job: ImportJob, allowed: frozenset[ImportStatus] | set[ImportStatus], doing: str) -> None:
    if job.status not in allowed:
        raise Conflict(f"This import is {job.status}; it cannot {doing} now.")


def header_signature(headers: list[str]) -> str:
    """Order- and spelling-insensitive fingerprint of a header set: same columns, same signature."""
    labels = sorted({header_label(h) for h in headers})
    return hashlib.sha256("\x1f".join(labels).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------- upload


def upload(org: Organization, user: User | Actor | None, entity: str, filename: str, stream: BinaryIO) -> ImportJob:
    """Store an uploaded file under a random name and check it; the new job is ``uploaded``.

    The stream is copied in 1 MB blocks and refused as soon as it passes ``IMPORT_MAX_BYTES``; then the
    real type is sniffed from the bytes, workbooks are checked for decompression bombs from their zip
    directory, and the first rows are parsed (an XML DOCTYPE, an over-long cell near the top, a file with
    no header row are refused here). On any refusal the stored bytes are deleted and no row is written.

    Raises:
        ValidationFailed: an unknown entity.
        ImportFileRefused: the file itself, with a message that says what is wrong.
    """
    spec = _spec(entity)
    display_name = Path(without_nul(filename or "").replace("\\", "/")).name[:255]
    if not display_name:
        raise ImportFileRefused("no file was chosen")
    extension = Path(display_name).suffix.lower()
    if extension not in EXTENSIONS:
        raise ImportFileRefused(
            f"{display_name!r} has an unsupported extension; upload .csv, .tsv, .xlsx, .xlsm, .ods, .json or .xml"
        )
    max_bytes = limits().max_bytes
    folder = storage_root() / str(org.id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{secrets.token_hex(16)}{extension}"
    size = 0
    try:
        with open(path, "xb") as out:
            while block := stream.read(UPLOAD_BLOCK):
                size += len(block)
                if size > max_bytes:
                    raise ImportFileRefused(f"the file is larger than the limit of {max_bytes / 1e6:,.0f} MB")
                out.write(block)
        try:
            kind = detect_kind(path, display_name, limits())
            reader = open_reader(path, display_name, limits())
            sheets = reader.sheets()
            sheet = sheets[0] if sheets else None
            headers = reader.headers(sheet)
            header_row = _detected_header_row(reader, sheet)
            _preview(reader, sheet, headers)
        except ReaderError as exc:
            raise ImportFileRefused(str(exc)) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    actor = _actor(user)
    job = ImportJob(
        organization_id=org.id, created_by_id=actor.user.id if actor.user else None, entity=spec.entity,
        original_filename=display_name, stored_path=f"{org.id}/{path.name}", size_bytes=size, file_type=kind,
        sheet=sheet, header_row=header_row, status=ImportStatus.UPLOADED.value,
    )
    db.session.add(job)
    db.session.flush()
    audit.record(org, actor, "import.uploaded", job, object_type="import",
                 details={"entity": entity, "file": display_name, "bytes": size, "type": kind})
    db.session.commit()
    return job


def get_import(org: Organization, import_id: int) -> ImportJob:
    """The organisation's import ``import_id``; another organisation's id is simply not found."""
    job = db.session.scalar(ImportJob.for_org(org.id).where(ImportJob.id == import_id))
    if job is None:
        raise NotFound("Import")
    return job


def overview(job: ImportJob) -> FileOverview:
    """Sheets, the chosen sheet and header row (and the detected one), headers and the first 10 rows."""
    reader = _reader(job)
    try:
        sheets = reader.sheets()
        headers = reader.headers(job.sheet)
        rows = _preview(reader, job.sheet, headers)
        detected = _detect_header_row(job, job.sheet)
    except ReaderError as exc:
        raise ImportFileRefused(str(exc)) from exc
    return FileOverview(job.id, job.original_filename, job.file_type, job.size_bytes, sheets, job.sheet,
                        job.header_row, detected, headers, rows)


def _headers(job: ImportJob) -> list[str]:
    try:
        return _reader(job).headers(job.sheet)
    except ReaderError as exc:
        raise ImportFileRefused(str(exc)) from exc


def _reset_review(job: ImportJob) -> None:
    """A changed layout or mapping makes the last validation meaningless."""
    job.status = ImportStatus.UPLOADED.value
    job.validated_total = job.validated_create = job.validated_update = None
    job.validated_unchanged = job.validated_failed = None
    job.error_count = 0
    job.error_message = None
    db.session.execute(delete(ImportRowError).where(ImportRowError.import_job_id == job.id))


def set_layout(job: ImportJob, sheet: str | None, header_row: int | None) -> FileOverview:
    """Choose the sheet and the header row (``None``: detect it); clears a mapping made for other headers.

    Raises:
        ValidationFailed: a sheet the workbook does not have, a header row below 1, or a row that is empty.
        Conflict: the import is past the review step.
    """
    _require(job, EDITABLE_STATUSES, "change its layout")
    reader = _reader(job)
    sheets = reader.sheets()
    problems: dict[str, list[str]] = {}
    if sheets and sheet not in sheets:
        problems["sheet"] = [f"The workbook has no sheet {sheet!r}; its sheets are {', '.join(sheets)}."]
    if not sheets:
        sheet = None
    if header_row is not None and (job.file_type in ("json", "xml")):
        header_row = None
    if header_row is not None and not 1 <= header_row <= MAX_HEADER_ROW:
        problems["header_row"] = [f"The header row is a row number from 1 to {MAX_HEADER_ROW}."]
    if problems:
        raise ValidationFailed(problems)
    try:
        old_headers = reader.headers(job.sheet)
    except ReaderError as exc:
        raise ImportFileRefused(str(exc)) from exc
    job.sheet = sheet
    if header_row is None:
        header_row = _detect_header_row(job, sheet)
    job.header_row = header_row
    try:
        new_headers = _reader(job).headers(sheet)
    except (ReaderError, ImportFileRefused) as exc:
        db.session.rollback()
        raise ValidationFailed({"header_row": [f"Row {header_row} cannot be the header row: {exc}"]}) from exc
    if new_headers != old_headers and job.mapping is not None:
        job.mapping = None
    _reset_review(job)
    db.session.commit()
    return overview(job)


# ---------------------------------------------------------------------------------------------- mapping


def _best_preset(org_id: int, entity: str, headers: list[str]) -> MappingPreset | None:
    """The organisation's preset for the same headers, else for mostly the same headers (most recent first)."""
    candidates = db.session.scalars(
        MappingPreset.for_org(org_id).where(MappingPreset.entity == entity)
        .order_by(MappingPreset.last_used_at.desc(), MappingPreset.id.desc())
    ).all()
    signature = header_signature(headers)
    for preset in candidates:
        if preset.header_signature == signature:
            return preset
    mine = {header_label(h) for h in headers}
    best, score = None, 0.0
    for preset in candidates:
        theirs = {header_label(h) for h in preset.headers or preset.mapping}
        similarity = len(mine & theirs) / max(len(mine | theirs), 1)
        if similarity >= PRESET_SIMILARITY and similarity > score:
            best, score = preset, similarity
    return best


def suggest_mapping(job: ImportJob) -> MappingSuggestion:
    """Per source column a target field and why (saved / preset / exact / synonym / fuzzy), what is missing.

    A mapping already saved on the job wins; else the organisation's preset for similar headers; columns
    it does not cover get the name-based suggestion for the fields still free.
    """
    spec = _spec(job.entity)
    reader = _reader(job)  # one reader for the headers and the samples: a workbook is parsed once
    try:
        headers = reader.headers(job.sheet)
    except ReaderError as exc:
        raise ImportFileRefused(str(exc)) from exc
    explained = explain_mapping(headers, spec)
    chosen: dict[str, tuple[str | None, str | None]] = {}
    preset_name = None
    if job.mapping is not None:
        chosen = {h: (job.mapping.get(h), "saved" if job.mapping.get(h) else None) for h in headers}
    else:
        preset = _best_preset(job.organization_id, job.entity, headers)
        if preset is not None:
            preset_name = preset.name
            by_label = {header_label(k): v for k, v in preset.mapping.items()}
            for h in headers:
                target = by_label.get(header_label(h))
                if target in spec.by_name:
                    chosen[h] = (target, "preset")
        taken = {t for t, _ in chosen.values() if t}
        for h in headers:
            if h not in chosen:
                target, reason = explained[h]
                chosen[h] = (target, reason) if target and target not in taken else (None, None)
                if target:
                    taken.add(target)
    samples = _samples(reader, job.sheet, headers)
    columns = [ColumnSuggestion(h, chosen[h][0], chosen[h][1], samples.get(h, [])) for h in headers]
    targets = {c.target for c in columns if c.target}
    return MappingSuggestion(
        columns=columns,
        fields=[TargetField(f.name, f.type, f.required, list(f.choices) if f.choices else None) for f in spec.fields],
        required_missing=[name for name in spec.required if name not in targets],
        matches_template=has_template_headers(headers, job.entity),
        preset=preset_name,
    )


def _samples(reader: Reader, sheet: str | None, headers: list[str], count: int = 3) -> dict[str, list[str]]:
    """A few non-empty values per column, so the mapping step shows what each column holds."""
    found: dict[str, list[str]] = {h: [] for h in headers}
    try:
        for row in _preview(reader, sheet, headers):
            for header, cell in zip(headers, row.cells, strict=False):
                if cell.strip() and len(found[header]) < count:
                    found[header].append(cell)
    except ReaderError:
        return found
    return found


def save_mapping(job: ImportJob, mapping: dict[str, str | None], preset_name: str | None = None,
                 user: User | Actor | None = None) -> dict[str, str | None]:
    """Check and store the mapping (every file column, ``None`` = ignored); optionally save it as a preset.

    Raises:
        ValidationFailed: under ``mapping``, every problem (unknown column or field, a field fed twice,
            required fields unmapped); under ``preset_name``, a name that is too long.
        Conflict: the import is past the review step.
    """
    _require(job, EDITABLE_STATUSES, "change its mapping")
    spec = _spec(job.entity)
    headers = _headers(job)
    cleaned = {str(k): (v or None) for k, v in mapping.items()}
    resolve_mapping(headers, spec, cleaned)
    full = {h: cleaned.get(h) for h in headers}
    if full != job.mapping:
        _reset_review(job)
    job.mapping = full
    name = without_nul(preset_name or "").strip()
    if name:
        if len(name) > 100:
            raise ValidationFailed({"preset_name": ["A preset name is at most 100 characters."]})
        preset = db.session.scalar(MappingPreset.for_org(job.organization_id).where(
            MappingPreset.entity == job.entity, MappingPreset.name == name))
        actor = _actor(user)
        if preset is None:
            preset = MappingPreset(organization_id=job.organization_id, entity=job.entity, name=name,
                                   created_by_id=actor.user.id if actor.user else None)
            db.session.add(preset)
        preset.mapping = {h: t for h, t in full.items() if t}
        preset.headers = headers
        preset.header_signature = header_signature(headers)
        preset.last_used_at = utcnow()
    db.session.commit()
    return full


def presets(org: Organization, entity: str) -> list[MappingPreset]:
    """The organisation's saved mappings for ``entity``, most recently used first."""
    return list(db.session.scalars(
        MappingPreset.for_org(org.id).where(MappingPreset.entity == entity)
        .order_by(MappingPreset.last_used_at.desc(), MappingPreset.id.desc())
    ))


# ---------------------------------------------------------------------------------------------- progress


def _progress_key(job_id: int) -> str:
    return f"import:{job_id}:progress"


def _cancel_key(job_id: int) -> str:
    return f"import:{job_id}:cancel"


def _publish(job_id: int, **values: Any) -> None:
    try:
        redis_store.client.set(_progress_key(job_id), json.dumps(values), ex=PROGRESS_TTL)
    except redis.RedisError:
        pass


def _live(job_id: int) -> dict[str, Any] | None:
    try:
        raw = redis_store.client.get(_progress_key(job_id))
    except redis.RedisError:
        return None
    return json.loads(raw) if raw else None


def _cancel_requested(job_id: int) -> bool:
    try:
        return bool(redis_store.client.exists(_cancel_key(job_id)))
    except redis.RedisError:
        return False


def _clear_signals(job_id: int) -> None:
    try:
        redis_store.client.delete(_progress_key(job_id), _cancel_key(job_id))
    except redis.RedisError:
        pass


def progress(job: ImportJob) -> dict[str, Any]:
    """JSON-ready state for polling: status, rows done of total, speed, time left, counts, the error.

    While a phase runs the figures come from Redis (published after every chunk); at rest from the row.
    """
    db.session.refresh(job)
    validating = job.status == ImportStatus.VALIDATING
    counts = {"created": job.created_count, "updated": job.updated_count, "unchanged": job.unchanged_count,
              "failed": job.failed_count}
    if job.status in (ImportStatus.VALIDATED, ImportStatus.UPLOADED) and job.validated_total is not None:
        counts = {"created": job.validated_create, "updated": job.validated_update,
                  "unchanged": job.validated_unchanged, "failed": job.validated_failed}
    done, total = job.rows_done, job.total_rows
    if job.status == ImportStatus.VALIDATED:
        done = total = job.validated_total
    live = _live(job.id) if job.is_busy else None
    rate = seconds_left = None
    if live is not None:
        done, total = live["done"], live["total"]
        counts = live["counts"]
        elapsed = time.time() - live["since"]
        processed = done - live.get("resumed_at", 0)
        if elapsed > 0 and processed > 0:
            rate = processed / elapsed
            seconds_left = max(0.0, (total - done) / rate) if total else None
    if job.status == ImportStatus.COMPLETED and job.total_rows is not None:
        done = total = job.total_rows
    return {
        "id": job.id,
        "status": job.status,
        "phase": "validate" if validating else ("undo" if job.status == ImportStatus.UNDOING else "run"),
        "rows_done": done or 0,
        "total": total,
        "percent": round(100 * (done or 0) / total, 1) if total else (100.0 if job.status == "completed" else 0.0),
        "rows_per_second": round(rate, 1) if rate else None,
        "seconds_left": round(seconds_left, 1) if seconds_left is not None else None,
        "counts": counts,
        "errors": job.error_count,
        "error_message": job.error_message,
        "error": job.error_message,
        "mode": job.mode,
        "on_error": job.on_error,
        "finished": job.status in (ImportStatus.VALIDATED, ImportStatus.COMPLETED, ImportStatus.FAILED,
                                   ImportStatus.CANCELLED, ImportStatus.UNDONE),
    }


# ---------------------------------------------------------------------------------------------- validation


def _start(job: ImportJob, kind: str, status: ImportStatus, user: User | Actor | None) -> ImportJob:
    previous = job.status
    job.status = status.value
    job.error_message = None
    _clear_signals(job.id)
    actor = _actor(user if user is not None else job.created_by)
    params = {"import_id": job.id, "from_status": previous}
    background = jobs.start_job(_org(job), actor, kind, params)  # commits, then enqueues
    job.background_job_id = background.id
    db.session.commit()
    return job


def _ensure_mapping(job: ImportJob, mapping: dict[str, str | None] | None) -> None:
    if mapping is not None:
        save_mapping(job, mapping)
    elif job.mapping is None:
        suggestion = suggest_mapping(job)
        save_mapping(job, suggestion.mapping)
    else:
        resolve_mapping(_headers(job), _spec(job.entity), job.mapping)


def start_validation(job: ImportJob, mapping: dict[str, str | None] | None = None,
                     user: User | Actor | None = None) -> ImportJob:
    """Validate the whole file in the background: the run's pipeline as a dry run (status ``validating``).

    ``mapping`` saves a mapping first; without one the saved mapping (or, if none, the suggestion) is used.

    Raises:
        ValidationFailed: the mapping cannot be used. Conflict: the import is busy or already ran.
    """
    _require(job, EDITABLE_STATUSES, "be validated")
    _ensure_mapping(job, mapping)
    _reset_review(job)
    return _start(job, "import_validate", ImportStatus.VALIDATING, user)


def _error_rows(job_id: int, phase: str, errors: list[RowError]) -> None:
    if errors:
        db.session.execute(insert(ImportRowError), [
            {"import_job_id": job_id, "phase": phase, "row_number": e.row,
             "column": e.column[:255] if e.column else None,
             "field": e.field, "value": e.value[:1000], "code": e.code[:30], "message": e.message} for e in errors
        ])


def _pipeline(job: ImportJob, **kwargs: Any) -> ImportSummary:
    spec = _spec(job.entity)
    reader = _reader(job)
    mapping = resolve_mapping(reader.headers(job.sheet), spec, job.mapping)
    chunk_size = current_app.config.get("IMPORT_CHUNK_SIZE", 20_000)
    return run_pipeline(reader, job.sheet, mapping, spec, _org(job), chunk_size=chunk_size, **kwargs)


def _progress_callback(job: ImportJob, run: Any, summary: ImportSummary, resumed_at: int,
                       heartbeat: bool) -> Any:
    since = time.time()

    def report(done: int, total: int) -> None:
        _publish(job.id, done=done, total=total, since=since, resumed_at=resumed_at,
                 counts={"created": summary.created, "updated": summary.updated, "unchanged": summary.unchanged,
                         "failed": summary.failed})
        if heartbeat and run is not None:
            run.progress(done, total)
        if _cancel_requested(job.id):
            raise ImportCancelled

    return report


def execute_validation(import_id: int, run: Any = None) -> dict[str, Any]:
    """The validate job: dry-run the pipeline, store every error, record the would-be counts.

    Safe to deliver twice: only a job in ``validating`` is worked on, and it starts from scratch.
    """
    job = db.session.get(ImportJob, import_id)
    if job is None or job.status != ImportStatus.VALIDATING:
        return {"skipped": True}
    db.session.execute(delete(ImportRowError).where(ImportRowError.import_job_id == job.id))
    job.error_count = 0
    db.session.commit()
    summary = ImportSummary()

    def on_chunk(outcome: ChunkOutcome) -> None:
        _error_rows(job.id, "validate", outcome.errors)

    try:
        summary = _pipeline(job, mode=job.mode, on_error="skip", dry_run=True, on_chunk=on_chunk, start=summary,
                            progress=_progress_callback(job, run, summary, 0, heartbeat=True))
    except ImportCancelled:
        db.session.rollback()
        job.status = ImportStatus.UPLOADED.value
        db.session.commit()
        _clear_signals(job.id)
        return {"cancelled": True}
    except (ReaderError, ImportFileRefused, ValidationFailed) as exc:
        db.session.rollback()
        job.status = ImportStatus.FAILED.value
        job.error_message = f"The file could not be validated: {exc}"
        db.session.commit()
        raise DomainError(job.error_message) from exc
    except Exception:
        db.session.rollback()
        job.status = ImportStatus.FAILED.value
        job.error_message = "Validation stopped on an internal error; try again or contact support."
        db.session.commit()
        raise
    job.status = ImportStatus.VALIDATED.value
    job.validated_total = summary.rows_total
    job.validated_create, job.validated_update = summary.created, summary.updated
    job.validated_unchanged, job.validated_failed = summary.unchanged, summary.failed
    job.error_count = summary.errors_total
    db.session.commit()
    _clear_signals(job.id)
    return summary.as_dict()


# ---------------------------------------------------------------------------------------------- run


def start_run(job: ImportJob, mode: str = "upsert", on_error: str = "skip",
              user: User | Actor | None = None) -> ImportJob:
    """Queue the import (status ``queued``); the worker loads it in chunks.

    Validation first is what the wizard does, but not required: an uploaded job with a mapping may run.

    Raises:
        ValidationFailed: unknown mode or on_error, or no usable mapping. Conflict: busy or already ran.
    """
    problems = {}
    if mode not in IMPORT_MODES:
        problems["mode"] = [f"Unknown mode {mode!r}; choose one of {', '.join(IMPORT_MODES)}."]
    if on_error not in IMPORT_ON_ERROR:
        problems["on_error"] = [f"Unknown on_error {on_error!r}; choose one of {', '.join(IMPORT_ON_ERROR)}."]
    if problems:
        raise ValidationFailed(problems)
    _require(job, {ImportStatus.UPLOADED, ImportStatus.VALIDATED}, "run")
    _ensure_mapping(job, None)
    job.mode, job.on_error = mode, on_error
    job.rows_done = job.created_count = job.updated_count = job.unchanged_count = job.failed_count = 0
    job.total_rows = None
    job.started_at = job.finished_at = None
    db.session.execute(delete(ImportRowError).where(ImportRowError.import_job_id == job.id,
                                                    ImportRowError.phase == "run"))
    return _start(job, "import_run", ImportStatus.QUEUED, user)


def _encode(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decode(column_type: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column_type, Date):
        return date.fromisoformat(value)
    if isinstance(column_type, Numeric):
        return Decimal(value)
    return value


def _record_chunk(job: ImportJob, outcome: ChunkOutcome) -> None:
    """Undo records, errors and the resume point of one chunk, in the chunk's own transaction."""
    counts = outcome.counts
    changes = [{"import_job_id": job.id, "entity": job.entity, "record_id": rid, "action": "created",
                "previous": None, "version_after": 1} for rid in counts.created_ids]
    changes += [{"import_job_id": job.id, "entity": job.entity, "record_id": rid, "action": "updated",
                 "previous": {c: _encode(v) for c, v in before.items()}, "version_after": version}
                for rid, before, version in counts.previous]
    if changes:
        db.session.execute(insert(ImportRowChange), changes)
    _error_rows(job.id, "run", outcome.errors)
    db.session.execute(update(ImportJob).where(ImportJob.id == job.id).values(
        rows_done=outcome.done, total_rows=outcome.total,
        created_count=ImportJob.created_count + counts.created,
        updated_count=ImportJob.updated_count + counts.updated,
        unchanged_count=ImportJob.unchanged_count + counts.unchanged,
        failed_count=ImportJob.failed_count + outcome.failed,
        error_count=ImportJob.error_count + len(outcome.errors),
    ))


def execute_run(import_id: int, run: Any = None) -> dict[str, Any]:
    """The run job: load the file, or resume it after the last committed chunk if a worker died mid-run.

    A ``queued`` job starts; a ``running`` one is a redelivery after a crash (the sweeper queued it again):
    with ``on_error="skip"`` it continues at ``rows_done`` with the committed counts; with ``abort`` the
    crash rolled everything back, so it starts over. Any other status means there is nothing to do.
    """
    job = db.session.get(ImportJob, import_id)
    if job is None or job.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
        return {"skipped": True}
    resume = job.status == ImportStatus.RUNNING and job.on_error == "skip" and job.rows_done > 0
    if not resume:
        db.session.execute(delete(ImportRowChange).where(ImportRowChange.import_job_id == job.id))
        db.session.execute(delete(ImportRowError).where(ImportRowError.import_job_id == job.id,
                                                        ImportRowError.phase == "run"))
        job.rows_done = job.created_count = job.updated_count = job.unchanged_count = job.failed_count = 0
        job.error_count = 0
    elif run is not None:
        run.log(f"resuming after row {job.rows_done} of the file (the earlier attempt was interrupted)")
    job.status = ImportStatus.RUNNING.value
    job.started_at = job.started_at or utcnow()
    job.finished_at = None
    db.session.commit()
    db.session.refresh(job)
    skip = job.rows_done if resume else 0
    start = ImportSummary(created=job.created_count, updated=job.updated_count, unchanged=job.unchanged_count,
                          failed=job.failed_count)
    start.errors_total = job.error_count
    try:
        summary = _pipeline(job, mode=job.mode, on_error=job.on_error, on_chunk=lambda o: _record_chunk(job, o),
                            skip_rows=skip, start=start,
                            progress=_progress_callback(job, run, start, skip, heartbeat=job.on_error == "skip"))
    except ImportCancelled:
        db.session.rollback()
        db.session.refresh(job)
        job.status = ImportStatus.CANCELLED.value
        job.finished_at = utcnow()
        job.error_message = ("Cancelled; the rows imported before the cancel stay (undo removes them)."
                             if job.on_error == "skip" else "Cancelled; nothing was imported.")
        audit.record(_org(job), Actor(user=job.created_by), "import.cancelled", job, object_type="import",
                     details=_counts(job))
        db.session.commit()
        _clear_signals(job.id)
        return {"cancelled": True, **_counts(job)}
    except (ReaderError, ImportFileRefused, ValidationFailed) as exc:
        db.session.rollback()
        _fail(job, f"The file could not be imported: {exc}")
        raise DomainError(job.error_message or "") from exc
    except Exception:
        db.session.rollback()
        _fail(job, "The import stopped on an internal error; the rows of the chunks finished before it stay.")
        raise
    db.session.refresh(job)
    if summary.aborted:
        # The one transaction was rolled back, errors included: keep the errors (capped) to show them.
        _error_rows(job.id, "run", summary.errors)
        job.error_message = (f"Nothing was imported: {summary.failed} row(s) failed and the import was set to "
                             "abort on errors.")
        job.created_count = job.updated_count = 0
        job.unchanged_count, job.failed_count = summary.unchanged, summary.failed
        job.rows_done = job.total_rows = summary.rows_total
        job.error_count = summary.errors_total
        job.status = ImportStatus.FAILED.value
    else:
        job.status = ImportStatus.COMPLETED.value
        if job.on_error == "abort":  # the counters written inside the one transaction are the final ones
            job.total_rows = job.rows_done = summary.rows_total
    job.finished_at = utcnow()
    audit.record(_org(job), Actor(user=job.created_by), "import.completed", job, object_type="import",
                 details={"entity": job.entity, "file": job.original_filename, "mode": job.mode,
                          "on_error": job.on_error, **_counts(job), "aborted": summary.aborted})
    db.session.commit()
    _clear_signals(job.id)
    return _counts(job)


def _counts(job: ImportJob) -> dict[str, int]:
    return {"created": job.created_count, "updated": job.updated_count, "unchanged": job.unchanged_count,
            "failed": job.failed_count, "total": job.total_rows or 0}


def _fail(job: ImportJob, message: str) -> None:
    db.session.refresh(job)
    job.status = ImportStatus.FAILED.value
    job.finished_at = utcnow()
    job.error_message = message
    db.session.commit()
    _clear_signals(job.id)


def cancel(job: ImportJob) -> ImportJob:
    """Stop a queued, validating or running import. Cooperative: the worker stops between chunks.

    A job no worker has claimed yet is cancelled at once; otherwise a signal is left for the worker.
    With ``on_error="skip"`` the chunks committed before the cancel stay (undo removes them).

    Raises:
        Conflict: nothing is in progress.
    """
    _require(job, {ImportStatus.VALIDATING, ImportStatus.QUEUED, ImportStatus.RUNNING}, "be cancelled")
    claimed = True
    if job.background_job_id is not None:
        result = db.session.execute(
            update(BackgroundJob).where(BackgroundJob.id == job.background_job_id,
                                        BackgroundJob.status == JobStatus.QUEUED.value)
            .values(status=JobStatus.CANCELLED.value, finished_at=utcnow())
        )
        claimed = result.rowcount != 1
    if not claimed:
        job.status = (ImportStatus.UPLOADED if job.status == ImportStatus.VALIDATING else ImportStatus.CANCELLED).value
        job.finished_at = utcnow() if job.status == ImportStatus.CANCELLED else None
        db.session.commit()
        _clear_signals(job.id)
        return job
    db.session.commit()
    try:
        redis_store.client.set(_cancel_key(job.id), "1", ex=PROGRESS_TTL)
    except redis.RedisError as exc:
        raise Conflict("The cancel could not be sent to the worker (the queue is unreachable); try again.") from exc
    return job


# ---------------------------------------------------------------------------------------------- errors


def first_errors(job: ImportJob, limit: int = FIRST_ERRORS) -> list[ImportRowError]:
    """The first ``limit`` errors of the latest phase (run errors once the import ran), by row."""
    return list(db.session.scalars(
        select(ImportRowError).where(ImportRowError.import_job_id == job.id, ImportRowError.phase == _phase(job))
        .order_by(ImportRowError.row_number, ImportRowError.id).limit(limit)
    ))


def _phase(job: ImportJob) -> str:
    ran = job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.COMPLETED, ImportStatus.CANCELLED,
                         ImportStatus.UNDOING, ImportStatus.UNDONE) or job.started_at is not None
    return "run" if ran else "validate"


def _failed_rows(job: ImportJob) -> Iterator[tuple[list[str], list[str]]]:
    """(headers, []) first, then (original cells, error messages) for every row with an error, in file order."""
    reader = _reader(job)
    headers = reader.headers(job.sheet)
    yield headers, []
    errors = db.session.execute(
        select(ImportRowError.row_number, ImportRowError.column, ImportRowError.message)
        .where(ImportRowError.import_job_id == job.id, ImportRowError.phase == _phase(job))
        .order_by(ImportRowError.row_number, ImportRowError.id)
    ).yield_per(BATCH)
    pending = next(errors, None)
    for number, raw in reader.rows(job.sheet):
        if pending is None:
            break
        if pending.row_number > number:
            continue
        messages = []
        while pending is not None and pending.row_number == number:
            where = f"{pending.column}: " if pending.column else ""
            messages.append(f"{where}{pending.message}")
            pending = next(errors, None)
        if messages:
            cells = [raw.get(h, "") for h in headers]
            if EXTRA_KEY in raw:
                cells += json.loads(raw[EXTRA_KEY])
            yield cells, messages


def error_file(job: ImportJob, fmt: str = "csv") -> Path:
    """Write the error file: the original rows that failed, with an "errors" column; returns its path.

    CSV (UTF-8 with BOM, so Excel opens it right) or XLSX. Formula-like cells are neutralised.

    Raises:
        ValidationFailed: an unknown format.
    """
    if fmt not in ("csv", "xlsx"):
        raise ValidationFailed({"format": ["Choose csv or xlsx."]})
    source = file_path(job)
    target = source.with_name(f"{source.stem}-errors-{_phase(job)}.{fmt}")
    # Written aside and renamed into place, so two downloads at once never read a half-written file.
    partial = target.with_name(f"{target.name}.{secrets.token_hex(8)}.partial")
    rows = _failed_rows(job)
    headers, _ = next(rows)
    lines = chain([[*headers, "errors"]], ([*cells, "; ".join(messages)] for cells, messages in rows))
    try:
        if fmt == "csv":
            with open(partial, "w", encoding="utf-8-sig", newline="") as handle:
                csv.writer(handle).writerows([neutralise_formula(c) for c in line] for line in lines)
        else:
            from openpyxl import Workbook

            book = Workbook(write_only=True)
            sheet = book.create_sheet("Errors")
            for line in lines:
                sheet.append([xlsx_cell(c) for c in line])
            book.save(partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


# ---------------------------------------------------------------------------------------------- undo


@dataclass
class _Changed:
    record_id: int
    key: str | None
    reason: str


def _conflicts(job: ImportJob, spec: EntitySpec) -> list[_Changed]:
    """Records this import wrote that changed since (another version) or, if it updated them, are gone."""
    model = spec.model
    key_column = getattr(model, spec.key_field.column)
    found: list[_Changed] = []
    changes = db.session.execute(
        select(ImportRowChange.record_id, ImportRowChange.action, ImportRowChange.version_after)
        .where(ImportRowChange.import_job_id == job.id).order_by(ImportRowChange.id)
    ).yield_per(BATCH).partitions()
    for batch in changes:
        ids = [c.record_id for c in batch]
        current = {r.id: r for r in db.session.execute(
            select(model.id, model.version, key_column.label("key")).where(
                model.organization_id == job.organization_id, model.id.in_(ids))
        )}
        for change in batch:
            now = current.get(change.record_id)
            if now is None:
                if change.action == "updated":
                    found.append(_Changed(change.record_id, None, "was deleted since"))
            elif now.version != change.version_after:
                found.append(_Changed(change.record_id, now.key,
                                      f"was changed since (version {now.version}; the import left version "
                                      f"{change.version_after})"))
    return found


def _describe(spec: EntitySpec, changed: list[_Changed]) -> str:
    shown = _lines(spec, changed[:20])
    more = f", and {len(changed) - 20} more" if len(changed) > 20 else ""
    return (f"Undo refused: {len(changed)} record(s) this import wrote changed since, so restoring them would "
            f"lose those changes: {'; '.join(shown)}{more}.")


def _lines(spec: EntitySpec, changed: list[_Changed]) -> list[str]:
    return [f"{spec.label} {c.key!r} (id {c.record_id}) {c.reason}" if c.key else
            f"{spec.label} id {c.record_id} {c.reason}" for c in changed]


def undo_conflicts(job: ImportJob) -> list[str]:
    """Why undo would be refused now, one line per changed record (empty: undo can go ahead)."""
    spec = _spec(job.entity)
    return _lines(spec, _conflicts(job, spec))


def undo(job: ImportJob, user: User | Actor | None = None) -> ImportJob:
    """Undo a finished import in the background: delete what it created, restore what it updated.

    Checked here first so a refusal is immediate, and again by the worker inside its transaction.

    Raises:
        Conflict: the import cannot be undone (not finished, already undone) or records it wrote changed
            since; the message lists which.
    """
    _require(job, {ImportStatus.COMPLETED, ImportStatus.CANCELLED}, "be undone")
    spec = _spec(job.entity)
    changed = _conflicts(job, spec)
    if changed:
        raise UndoRefused(_describe(spec, changed), _lines(spec, changed))
    return _start(job, "import_undo", ImportStatus.UNDOING, user)


def _referenced_elsewhere(spec: EntitySpec, org_id: int, ids: list[int]) -> list[str]:
    """Rows of other tables (or other rows of this one) that point at records undo would delete."""
    table = spec.model.__table__
    found = []
    for other in db.metadata.sorted_tables:
        for fk in other.foreign_keys:
            if fk.column.table is not table or fk.parent.table is not other or other.name.startswith("import_"):
                continue
            for start in range(0, len(ids), BATCH):
                chunk = ids[start:start + BATCH]
                query = select(func.count()).select_from(other).where(fk.parent.in_(chunk))
                if other is table:
                    query = query.where(table.c.id.not_in(chunk))
                if "organization_id" in other.c:
                    query = query.where(other.c.organization_id == org_id)
                count = db.session.scalar(query) or 0
                if count:
                    found.append(f"{count} {other.name.replace('_', ' ')} row(s) refer to records this import "
                                 f"created (through {fk.parent.name})")
    return found


def execute_undo(import_id: int, run: Any = None) -> dict[str, Any]:
    """The undo job, in one transaction: re-check, restore updated rows, delete created rows.

    Restores bump ``version`` (undo is a change like any other) and only touch rows still at the
    version the import left, so a write racing the check makes the undo refuse instead of overwrite.
    """
    job = db.session.get(ImportJob, import_id)
    if job is None or job.status != ImportStatus.UNDOING:
        return {"skipped": True}
    spec = _spec(job.entity)
    table = spec.model.__table__
    changed = _conflicts(job, spec)
    if changed:
        return _refuse_undo(job, _describe(spec, changed))
    created: list[int] = []
    restored = 0
    now = utcnow()
    connection = db.session.connection()
    changes = db.session.execute(
        select(ImportRowChange.record_id, ImportRowChange.action, ImportRowChange.previous,
               ImportRowChange.version_after)
        .where(ImportRowChange.import_job_id == job.id).order_by(ImportRowChange.id)
    ).yield_per(BATCH).partitions()
    for batch in changes:
        updates = [c for c in batch if c.action == "updated"]
        created += [c.record_id for c in batch if c.action == "created"]
        if updates:
            columns = list(updates[0].previous)
            params = [{f"p_{c}": _decode(table.c[c].type, u.previous.get(c)) for c in columns}
                      | {"p_id": u.record_id, "p_version": u.version_after} for u in updates]
            statement = (update(table)
                         .where(table.c.id == bindparam("p_id"), table.c.version == bindparam("p_version"))
                         .values({c: bindparam(f"p_{c}") for c in columns}
                                 | {"version": table.c.version + 1, "updated_at": now}))
            result = connection.execute(statement, params)
            if result.rowcount not in (-1, len(params)):
                db.session.rollback()
                return _refuse_undo(job, "Undo refused: some records changed while undoing; nothing was undone.")
            restored += len(params)
    blockers = _referenced_elsewhere(spec, job.organization_id, created)
    if blockers:
        db.session.rollback()
        return _refuse_undo(job, "Undo refused: deleting the records this import created would also delete or "
                                 f"unlink other data: {'; '.join(blockers)}.")
    for start in range(0, len(created), BATCH):
        connection.execute(delete(table).where(table.c.id.in_(created[start:start + BATCH]),
                                               table.c.organization_id == job.organization_id))
    job.status = ImportStatus.UNDONE.value
    job.error_message = None
    audit.record(_org(job), Actor(user=job.created_by), "import.undone", job, object_type="import",
                 details={"entity": job.entity, "file": job.original_filename, "deleted": len(created),
                          "restored": restored})
    db.session.commit()
    if run is not None:
        run.log(f"undone: deleted {len(created)}, restored {restored}")
    return {"deleted": len(created), "restored": restored}


def _refuse_undo(job: ImportJob, message: str) -> NoReturn:
    """Leave the import as it was before the undo was asked for (completed or cancelled), saying why."""
    db.session.rollback()
    db.session.refresh(job)
    started = db.session.get(BackgroundJob, job.background_job_id) if job.background_job_id else None
    job.status = (started.params.get("from_status") if started else None) or ImportStatus.COMPLETED.value
    job.error_message = message
    db.session.commit()
    raise DomainError(message)


# ---------------------------------------------------------------------------------------------- history


def changed_records(job: ImportJob, limit: int = 20) -> list[tuple[str, int, str]]:
    """The first records the import wrote that still exist: ``(action, record id, natural key)``, for links."""
    spec = _spec(job.entity)
    model = spec.model
    key_column = getattr(model, spec.key_field.column)
    rows = db.session.execute(
        select(ImportRowChange.action, model.id, key_column)
        .join(model, model.id == ImportRowChange.record_id)
        .where(ImportRowChange.import_job_id == job.id, model.organization_id == job.organization_id)
        .order_by(ImportRowChange.id).limit(limit)
    )
    return [(action, record_id, str(key)) for action, record_id, key in rows]


def history(org: Organization, page: int = 1, per_page: int = 25) -> Page:
    """Every import of the organisation, newest first (who, when, file, counts, status, duration)."""
    return paginate(ImportJob.for_org(org.id).order_by(ImportJob.created_at.desc(), ImportJob.id.desc()),
                    page, per_page)
