"""Declarative base and the mixins every tenant table shares."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, MetaData, String, TypeDecorator, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, registry
from sqlalchemy.sql import Select

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def index_where_set(table: str, column: str) -> Index:
    """An index of a nullable reference over the rows that have one (``WHERE column IS NOT NULL``).

    It serves every lookup such an index is for (the rows pointing at a record, as a delete's
    cascade or SET NULL finds them), and rows without a reference, often most of them (people
    without a manager, time entries without a task), cost no index entry when written: ~1.7 µs
    per imported row on PostgreSQL and SQLite alike (docs/performance.md).
    """
    where = text(f"{column} IS NOT NULL")
    return Index(f"ix_{table}_{column}", column, postgresql_where=where, sqlite_where=where)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware datetime that reads back aware on SQLite too.

    A TypeDecorator, not a DateTime subclass: SQLite adapts DateTime subclasses to
    its own DATETIME type, which dropped an overridden result processor and read
    values back naive (so ``utcnow() - row.heartbeat_at`` raised TypeError).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        # SQLite stores no offset: store every aware value as UTC.
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION), type_annotation_map={datetime: UTCDateTime()}
    )


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OrgScoped:
    """Tenant data: every row belongs to one organisation and is queried through it."""

    @declared_attr
    def organization_id(cls) -> Mapped[int]:
        # Records with an external id have a unique (organization_id, external_id) index, which serves
        # lookups by organisation too; a second index of one repeated value made every imported row
        # cost ~4.5 µs more on PostgreSQL (docs/performance.md).
        own_index = not issubclass(cls, ExternalId)
        return mapped_column(Integer, ForeignKey("organizations.id", ondelete="CASCADE"), index=own_index)

    @classmethod
    def for_org(cls, org_id: int) -> Select:
        """The only way services should start a query on tenant data."""
        return select(cls).where(cls.organization_id == org_id)


class ExternalId:
    """The id a record has in the system it came from (imports, syncs)."""

    external_id: Mapped[str | None] = mapped_column(String(255))


class Versioned:
    """An integer bumped on every update: the record's ETag, and optimistic locking.

    SQLAlchemy checks it in every UPDATE's WHERE clause, so two writers that read
    the same version cannot both save (the second gets StaleDataError).
    """

    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    @declared_attr.directive
    def __mapper_args__(cls) -> dict:
        return {"version_id_col": cls.version}
