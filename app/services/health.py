"""Readiness: can this process reach the database and Redis right now?"""

from __future__ import annotations

import logging

from sqlalchemy import text

from app.extensions import db, redis_store

log = logging.getLogger(__name__)


def readiness() -> dict[str, dict]:
    return {"database": _check(_database), "redis": _check(_redis)}


def _database() -> None:
    db.session.execute(text("SELECT 1"))
    db.session.rollback()


def _redis() -> None:
    redis_store.client.ping()


def _check(probe) -> dict:
    try:
        probe()
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
        log.warning("readiness check failed", extra={"check": probe.__name__.strip("_"), "error": str(exc)})
        return {"ok": False}
    return {"ok": True}
