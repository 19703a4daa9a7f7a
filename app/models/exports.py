"""Exports as rows: what was asked for (entity, format, filters, columns), by whom, and where the file is.

The work itself runs as a generic :class:`~app.models.jobs.BackgroundJob` (queue ``exports``), which this
row points at; the runner records progress there, the export service records the outcome here. The
status vocabulary is the jobs' own (:class:`~app.models.jobs.JobStatus`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, OrgScoped, utcnow
from app.models.jobs import BackgroundJob, JobStatus, JobTiming
from app.models.orgs import User


class ExportJob(JobTiming, OrgScoped, Base):
    """One export of one entity to one file."""

    __tablename__ = "export_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requested_by_label: Mapped[str] = mapped_column(String(200), default="")  # a user's email or an API key's name
    entity: Mapped[str] = mapped_column(String(30))
    format: Mapped[str] = mapped_column(String(10))
    filters: Mapped[dict] = mapped_column(JSON, default=dict)
    columns: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.QUEUED.value)
    row_count: Mapped[int | None] = mapped_column(Integer)
    file_path: Mapped[str | None] = mapped_column(String(500))  # relative to INTERCHANGE_STORAGE
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]  # when retention removed the file
    background_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("background_jobs.id", ondelete="SET NULL"), index=True
    )

    requested_by: Mapped[User | None] = relationship()
    background_job: Mapped[BackgroundJob | None] = relationship()
