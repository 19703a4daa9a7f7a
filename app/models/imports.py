"""Imports as rows: the file and its settings, what each run changed (for undo), its errors, saved mappings.

``ImportJob`` is the wizard's, the API's and the history page's view of one uploaded file; the generic
``BackgroundJob`` it links to is what the runner, the sweeper and the jobs page see of each phase
(validate, run, undo). ``ImportRowChange`` holds, per record written, what undo needs: the id, whether
the import created or updated it, the values it had before, and the version the import left it at, so
undo can tell whether anyone changed it since. ``ImportRowError`` rows make the first errors cheap to
show (an indexed ``LIMIT 100``) and all of them downloadable; they are written in the same transaction as
the chunk they belong to, so a crashed and resumed run never lists an error twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, OrgScoped, Timestamps, utcnow
from app.models.jobs import BackgroundJob
from app.models.orgs import User


class ImportStatus(StrEnum):
    UPLOADED = "uploaded"
    VALIDATING = "validating"
    VALIDATED = "validated"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNDOING = "undoing"
    UNDONE = "undone"


IMPORT_MODES = ("upsert", "create", "update")
IMPORT_ON_ERROR = ("skip", "abort")
# Statuses in which the file may still be re-laid-out, re-mapped and re-validated.
EDITABLE_STATUSES = frozenset({ImportStatus.UPLOADED, ImportStatus.VALIDATED, ImportStatus.FAILED})
TERMINAL_STATUSES = frozenset({ImportStatus.COMPLETED, ImportStatus.FAILED, ImportStatus.CANCELLED,
                               ImportStatus.UNDONE})
BUSY_STATUSES = frozenset({ImportStatus.VALIDATING, ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.UNDOING})


class ImportJob(OrgScoped, Timestamps, Base):
    """One uploaded file on its way through the wizard (or the API): upload → validate → run → undo."""

    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_org_created", "organization_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    entity: Mapped[str] = mapped_column(String(30))
    original_filename: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[str] = mapped_column(String(500))      # relative to INTERCHANGE_STORAGE
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    file_type: Mapped[str] = mapped_column(String(10))         # csv, xlsx, ods, json, xml (sniffed, not trusted)
    sheet: Mapped[str | None] = mapped_column(String(255))
    header_row: Mapped[int | None] = mapped_column(Integer)
    mapping: Mapped[dict | None] = mapped_column(JSON)          # source column → field name or null
    mode: Mapped[str] = mapped_column(String(10), default="upsert")
    on_error: Mapped[str] = mapped_column(String(10), default="skip")
    status: Mapped[str] = mapped_column(String(20), default=ImportStatus.UPLOADED.value)
    # Validation (dry run) figures: what the run would do.
    validated_total: Mapped[int | None] = mapped_column(Integer)
    validated_create: Mapped[int | None] = mapped_column(Integer)
    validated_update: Mapped[int | None] = mapped_column(Integer)
    validated_unchanged: Mapped[int | None] = mapped_column(Integer)
    validated_failed: Mapped[int | None] = mapped_column(Integer)
    # Run figures, committed with each chunk (they are the resume point of a crashed run).
    total_rows: Mapped[int | None] = mapped_column(Integer)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)  # errors of the latest phase (a row may have several)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error_message: Mapped[str | None] = mapped_column(Text)   # why it failed, in plain words
    background_job_id: Mapped[int | None] = mapped_column(ForeignKey("background_jobs.id", ondelete="SET NULL"))

    created_by: Mapped[User | None] = relationship()
    background_job: Mapped[BackgroundJob | None] = relationship()

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def is_busy(self) -> bool:
        return self.status in BUSY_STATUSES

    @property
    def is_terminal(self) -> bool:
        """Nothing more will happen to it without a user's action (a finished run, a failure, an undo)."""
        return self.status in TERMINAL_STATUSES

    @property
    def filename(self) -> str:
        return self.original_filename

    @property
    def error(self) -> str | None:
        return self.error_message

    @property
    def counts(self) -> dict[str, int]:
        """What the run did (created / updated / unchanged / failed), for pages and the API."""
        return {"created": self.created_count, "updated": self.updated_count, "unchanged": self.unchanged_count,
                "failed": self.failed_count}

    @property
    def validated_counts(self) -> dict[str, int] | None:
        """What validation says the run would do, or None before validation."""
        if self.validated_total is None:
            return None
        return {"total": self.validated_total, "created": self.validated_create or 0,
                "updated": self.validated_update or 0, "unchanged": self.validated_unchanged or 0,
                "failed": self.validated_failed or 0}


class ImportRowChange(Base):
    """One record an import wrote: enough to undo it and to see whether it changed since."""

    __tablename__ = "import_row_changes"
    __table_args__ = (Index("ix_import_row_changes_job", "import_job_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(30))
    record_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10))             # created | updated
    previous: Mapped[dict | None] = mapped_column(JSON)          # column → value before the import (updated only)
    version_after: Mapped[int] = mapped_column(Integer)


class ImportRowError(Base):
    """One problem with one row of the file, from validation (``phase`` validate) or the run (``run``)."""

    __tablename__ = "import_row_errors"
    __table_args__ = (Index("ix_import_row_errors_job", "import_job_id", "phase", "row_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    phase: Mapped[str] = mapped_column(String(10))
    row_number: Mapped[int] = mapped_column(Integer)
    column: Mapped[str | None] = mapped_column(String(255))
    field: Mapped[str | None] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(Text, default="")
    code: Mapped[str] = mapped_column(String(30))
    message: Mapped[str] = mapped_column(Text)

    @property
    def row(self) -> int:
        return self.row_number

    def as_dict(self) -> dict:
        return {"row": self.row_number, "column": self.column, "field": self.field, "value": self.value,
                "code": self.code, "message": self.message}


class MappingPreset(OrgScoped, Timestamps, Base):
    """A named column mapping an organisation saved, offered again for files with similar headers."""

    __tablename__ = "mapping_presets"
    __table_args__ = (UniqueConstraint("organization_id", "entity", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(100))
    mapping: Mapped[dict] = mapped_column(JSON)
    header_signature: Mapped[str] = mapped_column(String(64), index=True)  # sha256 of the normalised header set
    headers: Mapped[list] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_used_at: Mapped[datetime | None] = mapped_column(default=utcnow)
