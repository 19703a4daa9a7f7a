from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, ExternalId, OrgScoped, Timestamps, Versioned, index_where_set
from app.models.clients import Client
from app.models.people import Person

PROJECT_STATUSES = ("planned", "active", "on_hold", "completed", "cancelled")
TASK_STATUSES = ("todo", "in_progress", "blocked", "done")
PRIORITIES = ("low", "medium", "high", "critical")


class Project(OrgScoped, ExternalId, Versioned, Timestamps, Base):
    __tablename__ = "projects"
    __table_args__ = (
        UniqueConstraint("organization_id", "code"),
        UniqueConstraint("organization_id", "external_id"),
        index_where_set("projects", "client_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="planned")
    priority: Mapped[str] = mapped_column(String(20), default="medium")
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    budget: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    description: Mapped[str | None] = mapped_column(Text)

    client: Mapped[Client | None] = relationship()

    def __str__(self) -> str:
        return f"{self.code} · {self.name}"


class Task(OrgScoped, ExternalId, Versioned, Timestamps, Base):
    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("organization_id", "external_id"), index_where_set("tasks", "assignee_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="todo")
    priority: Mapped[str] = mapped_column(String(20), default="medium")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    estimate_hours: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    due_date: Mapped[date | None]

    project: Mapped[Project] = relationship()
    assignee: Mapped[Person | None] = relationship()

    def __str__(self) -> str:
        return self.title
