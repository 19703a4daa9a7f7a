"""API rate limits: moving windows in Redis (``limits``), reported in every response's headers.

Headers follow the IETF draft (``RateLimit-Policy``, ``RateLimit``) and GitHub
(``X-RateLimit-Limit/-Remaining/-Reset``). When Redis is unreachable requests
are served (fail open) and the outage is logged: a cache outage must not
become an API outage.

One request costs one Redis round trip: a Lua script does the ``limits``
library's moving-window hit and its window statistics (the headers) at once,
on the library's own list (same key, same entries, same trimming and expiry),
so ``MovingWindowRateLimiter`` reads and clears what we count. The library
would need two round trips (``hit`` then ``get_window_stats``). A caller may
have the script read one more key in the same round trip (the API-key cache's
generation), which saves it a round trip of its own.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

import redis
from flask import Flask, Response, current_app, g
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import NoScriptError

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


# The moving-window hit of limits' acquire_moving_window.lua (amount 1) followed by the binary search
# of its moving_window.lua, in one script. KEYS[1] is the library's list, newest timestamp first.
# ARGV: now, limit, expiry. KEYS[2], if given, is a plain string key read on the way.
# Returns {1 if counted else 0, oldest timestamp in the window, entries in it, value of KEYS[2] or nil}.
HIT_AND_STATS = """
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])
local target = now - expiry
local acquired = 0
local extra = false
if #KEYS > 1 then
    extra = redis.call('get', KEYS[2])
end
local entry = redis.call('lindex', KEYS[1], limit - 1)
if not (entry and tonumber(entry) >= target) then
    redis.call('lpush', KEYS[1], now)
    redis.call('ltrim', KEYS[1], 0, limit - 1)
    redis.call('expire', KEYS[1], expiry)
    acquired = 1
end
local low, high, index = 0, limit - 1, nil
while low <= high do
    local mid = math.floor((low + high) / 2)
    local value = tonumber(redis.call('lindex', KEYS[1], mid))
    if value and value >= target then
        index = mid
        low = mid + 1
    else
        high = mid - 1
    end
end
if index then
    return {acquired, redis.call('lindex', KEYS[1], index), index + 1, extra}
end
return {acquired, tostring(now), 0, extra}
"""
HIT_AND_STATS_SHA = hashlib.sha1(HIT_AND_STATS.encode()).hexdigest()


@dataclass
class Counted:
    """One counted request: ``state`` is None when Redis was unreachable (then ``allowed`` is True)."""

    state: RateLimitState | None
    allowed: bool
    extra: bytes | None = None  # the value of ``also_get``, when asked for and Redis answered

    @property
    def available(self) -> bool:
        return self.state is not None


def count(key: str, spec: str, also_get: str | None = None) -> Counted:
    """Count one request for ``key`` under ``spec`` (e.g. "600/minute") in one Redis round trip.

    ``also_get`` names a Redis key whose value is read in the same round trip. Never raises for
    an unreachable Redis: the request is allowed and the outage logged (fail open).
    """
    item = _parse(spec)
    window = item.get_expiry()
    try:
        storage = _limiter().storage
        client = storage.get_connection()
        list_key = storage.prefixed_key(item.key_for("api", key))
        keys = (list_key, also_get) if also_get else (list_key,)
        arguments = (time.time(), item.amount, window)
        try:
            reply = client.evalsha(HIT_AND_STATS_SHA, len(keys), *keys, *arguments)
        except NoScriptError:  # a restarted or flushed Redis forgot the script
            reply = client.eval(HIT_AND_STATS, len(keys), *keys, *arguments)
    except (redis.RedisError, OSError, ConnectionError) as exc:
        log.warning("rate limiter unavailable; request allowed", extra={"error": str(exc)})
        return Counted(state=None, allowed=True)
    acquired, oldest, entries = reply[:3]
    state = RateLimitState(
        limit=item.amount, remaining=max(0, item.amount - int(entries)), reset_at=float(oldest) + window, window=window
    )
    return Counted(state=state, allowed=bool(acquired), extra=reply[3] if len(reply) > 3 else None)


def apply(counted: Counted) -> RateLimitState | None:
    """Report ``counted`` in this response's headers; raise RateLimited when it was over the limit."""
    if counted.state is None:
        return None
    g.rate_limit_state = counted.state
    if not counted.allowed:
        raise RateLimited(counted.state)
    return counted.state


def enforce(key: str, spec: str) -> RateLimitState | None:
    """Count one request for ``key`` under ``spec`` (e.g. "600/minute"); raise RateLimited when over."""
    return apply(count(key, spec))


def add_headers(response: Response) -> Response:
    state = g.get("rate_limit_state")
    if state is not None:
        for name, value in state.headers().items():
            response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_headers)
