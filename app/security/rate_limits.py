"""API rate limits: moving windows in Redis (``limits``), reported in every response's headers.

Headers follow the IETF draft (``RateLimit-Policy``, ``RateLimit``) and GitHub
(``X-RateLimit-Limit/-Remaining/-Reset``). When Redis is unreachable requests
are served (fail open) and the outage is logged: a cache outage must not
become an API outage.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import redis
from flask import Flask, Response, current_app, g
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.errors import DomainError
from app.extensions import redis_store

log = logging.getLogger(__name__)


class RateLimited(DomainError):
    status_code = 429

    def __init__(self, state: RateLimitState) -> None:
        super().__init__(
            f"Rate limit of {state.limit} requests per {state.window} seconds exceeded; "
            f"retry in {state.retry_after} seconds."
        )
        self.retry_after = state.retry_after


@dataclass
class RateLimitState:
    limit: int
    remaining: int
    reset_at: float
    window: int

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))

    def headers(self) -> dict[str, str]:
        reset = max(0, math.ceil(self.reset_at - time.time()))
        return {
            "RateLimit-Policy": f'"default";q={self.limit};w={self.window}',
            "RateLimit": f'"default";r={self.remaining};t={reset}',
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }


def _limiter() -> MovingWindowRateLimiter:
    limiter = current_app.extensions.get("api_rate_limiter")
    if limiter is None:
        url = redis_store.url
        uri = "redis+unix://" + url[len("unix://"):] if url.startswith("unix://") else url
        limiter = MovingWindowRateLimiter(storage_from_string(uri))
        current_app.extensions["api_rate_limiter"] = limiter
    return limiter


def _parse(spec: str) -> RateLimitItem:
    cache = current_app.extensions.setdefault("api_rate_limit_items", {})
    if spec not in cache:
        cache[spec] = parse(spec)
    return cache[spec]


def enforce(key: str, spec: str) -> RateLimitState | None:
    """Count one request for ``key`` under ``spec`` (e.g. "600/minute"); raise RateLimited when over."""
    item = _parse(spec)
    try:
        limiter = _limiter()
        allowed = limiter.hit(item, "api", key)
        stats = limiter.get_window_stats(item, "api", key)
    except (redis.RedisError, OSError, ConnectionError) as exc:
        log.warning("rate limiter unavailable; request allowed", extra={"error": str(exc)})
        return None
    state = RateLimitState(
        limit=item.amount, remaining=max(0, stats.remaining), reset_at=stats.reset_time, window=item.get_expiry()
    )
    g.rate_limit_state = state
    if not allowed:
        raise RateLimited(state)
    return state


def add_headers(response: Response) -> Response:
    state = g.get("rate_limit_state")
    if state is not None:
        for name, value in state.headers().items():
            response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_headers)
