"""Assignments, time entries and comments: the records that hang off people and projects."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Numeric, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, ExternalId, OrgScoped, Timestamps, Versioned, index_where_set
from app.models.people import Person
from app.models.projects import Project, Task


class Assignment(OrgScoped, ExternalId, Versioned, Timestamps, Base):
    """A person planned onto a project (or one of its tasks) for some hours over a period."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("organization_id", "external_id"), index_where_set("assignments", "task_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    hours: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]

    person: Mapped[Person] = relationship()
    project: Mapped[Project] = relationship()
    task: Mapped[Task | None] = relationship()

    def __str__(self) -> str:
        return f"{self.person.name} on {self.project.code}"


class TimeEntry(OrgScoped, ExternalId, Versioned, Timestamps, Base):
    __tablename__ = "time_entries"
    __table_args__ = (UniqueConstraint("organization_id", "external_id"), index_where_set("time_entries", "task_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    spent_on: Mapped[date] = mapped_column(index=True)
    hours: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    billable: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str | None] = mapped_column(Text)

    person: Mapped[Person] = relationship()
    project: Mapped[Project] = relationship()
    task: Mapped[Task | None] = relationship()

    def __str__(self) -> str:
        return f"{self.hours} h by {self.person.name} on {self.spent_on}"


class Comment(OrgScoped, ExternalId, Versioned, Timestamps, Base):
    """A comment on a task, optionally attributed to a person."""

    __tablename__ = "comments"
    __table_args__ = (UniqueConstraint("organization_id", "external_id"), index_where_set("comments", "author_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)

    task: Mapped[Task] = relationship()
    author: Mapped[Person | None] = relationship()

    def __str__(self) -> str:
        return self.body[:60]
