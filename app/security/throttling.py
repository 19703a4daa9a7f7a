"""Sign-in throttling: failures per account and per address are slowed, then locked.

Counters live in Redis (moving windows from ``limits``). When Redis is down the
check fails open and logs it: an outage must not lock every admin out.
"""

from __future__ import annotations

import logging
import math
import time

import redis
from flask import Flask
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.errors import LoginThrottled
from app.extensions import redis_store

log = logging.getLogger(__name__)


def _limits_uri(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://"):]
    return redis_url


class LoginThrottle:
    def __init__(self, app: Flask) -> None:
        cfg = app.config
        minutes = cfg["LOGIN_LOCK_MINUTES"]
        self.lock_minutes = minutes
        self.slowdown_after = cfg["LOGIN_SLOWDOWN_AFTER"]
        self.account_limit = parse(f"{cfg['LOGIN_LOCK_AFTER_ACCOUNT']}/{minutes} minutes")
        self.address_limit = parse(f"{cfg['LOGIN_LOCK_AFTER_ADDRESS']}/{minutes} minutes")
        self._limiter: MovingWindowRateLimiter | None = None

    @property
    def limiter(self) -> MovingWindowRateLimiter:
        if self._limiter is None:
            self._limiter = MovingWindowRateLimiter(storage_from_string(_limits_uri(redis_store.url)))
        return self._limiter

    def check(self, email: str, address: str) -> None:
        """Raise LoginThrottled if this attempt must not be tried now."""
        try:
            self._check(email.lower(), address)
        except (redis.RedisError, OSError, ConnectionError) as exc:
            log.warning("login throttle unavailable, allowing attempt", extra={"error": str(exc)})

    def _check(self, email: str, address: str) -> None:
        for limit, key, what in (
            (self.account_limit, f"account:{email}", "this account"),
            (self.address_limit, f"address:{address}", "your network address"),
        ):
            if not self.limiter.test(limit, "login", key):
                reset = self.limiter.get_window_stats(limit, "login", key).reset_time
                wait = max(1, math.ceil(reset - time.time()))
                raise LoginThrottled(
                    f"Too many failed sign-in attempts for {what}. Sign-in is locked for "
                    f"{_minutes(wait)}; try again later.",
                    retry_after=wait,
                )
        pause = redis_store.client.ttl(f"login:pause:{email}")
        if pause and pause > 0:
            raise LoginThrottled(
                f"Too many failed attempts. Wait {pause} seconds before trying again.", retry_after=pause
            )

    def record_failure(self, email: str, address: str) -> None:
        email = email.lower()
        try:
            self.limiter.hit(self.account_limit, "login", f"account:{email}")
            self.limiter.hit(self.address_limit, "login", f"address:{address}")
            stats = self.limiter.get_window_stats(self.account_limit, "login", f"account:{email}")
            failures = self.account_limit.amount - stats.remaining
            if failures >= self.slowdown_after:
                seconds = min(2 ** (failures - self.slowdown_after) * 5, 300)
                redis_store.client.set(f"login:pause:{email}", "1", ex=seconds)
        except (redis.RedisError, OSError, ConnectionError) as exc:
            log.warning("login throttle unavailable, failure not counted", extra={"error": str(exc)})

    def record_success(self, email: str) -> None:
        try:
            self.limiter.clear(self.account_limit, "login", f"account:{email.lower()}")
            redis_store.client.delete(f"login:pause:{email.lower()}")
        except (redis.RedisError, OSError, ConnectionError) as exc:
            log.warning("login throttle unavailable", extra={"error": str(exc)})


def _minutes(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def allow_event(namespace: str, key: str, limit: str) -> bool:
    """Count one event of ``key``; False once more than ``limit`` (e.g. "20/minute") happened in the moving window.

    For cheap anonymous actions with a costly side effect (an audit row per refused SSO post). Fails open: when
    Redis is down the event is allowed, like the login throttle.
    """
    try:
        return login_throttle().limiter.hit(parse(limit), namespace, key)
    except (redis.RedisError, OSError, ConnectionError) as exc:
        log.warning("event throttle unavailable, allowing", extra={"error": str(exc), "namespace": namespace})
        return True


def init_app(app: Flask) -> None:
    app.extensions["login_throttle"] = LoginThrottle(app)


def login_throttle() -> LoginThrottle:
    from flask import current_app

    return current_app.extensions["login_throttle"]
