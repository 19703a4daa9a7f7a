"""Small query helpers shared by list pages: LIKE escaping and pagination."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Any

from sqlalchemy import Select, func, select

from app.extensions import db

MAX_PER_PAGE = 200


def escape_like(term: str) -> str:
    term = without_nul(term)
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def without_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL, and a NUL in a search term can match nothing anyway."""
    return text.replace("\x00", "")


def contains(column, term: str):
    return column.ilike(f"%{escape_like(term)}%", escape="\\")


@dataclass
class Page:
    items: list[Any]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first_index(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.per_page + 1

    @property
    def last_index(self) -> int:
        return min(self.total, self.page * self.per_page)


def paginate(query: Select, page: int = 1, per_page: int = 25) -> Page:
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, ceil(total / per_page))
    page = max(1, min(page, pages))
    items = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    return Page(items=items, page=page, per_page=per_page, total=total)
