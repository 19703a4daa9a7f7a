from __future__ import annotations

from decimal import Decimal

from sqlalchemy import JSON, Boolean, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, ExternalId, OrgScoped, Timestamps, Versioned, index_where_set


class Person(OrgScoped, ExternalId, Versioned, Timestamps, Base):
    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("organization_id", "email"),
        UniqueConstraint("organization_id", "external_id"),
        index_where_set("people", "manager_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-case: the natural key, matched case-insensitively.
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(200))
    cost_centre: Mapped[str | None] = mapped_column(String(100))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    hourly_rate: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    weekly_capacity: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    manager: Mapped[Person | None] = relationship(remote_side="Person.id")

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"
