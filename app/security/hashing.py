"""Keyed hashes for secrets we must recognise but never store: API keys, OAuth secrets and tokens.

HMAC-SHA256 with a server secret, so a stolen database alone cannot be used to
test guesses offline. The secret is ``API_KEY_SECRET`` or, by default, derived
from ``SECRET_KEY`` (rotating it invalidates every key and token).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

from flask import current_app

BASE62 = string.digits + string.ascii_letters


def _server_secret() -> bytes:
    cached = current_app.extensions.get("hashing_secret")
    if cached is None:
        configured = current_app.config.get("API_KEY_SECRET")
        if configured:
            cached = configured.encode()
        else:
            cached = hmac.new(current_app.config["SECRET_KEY"].encode(), b"interchange-keyed-hash", "sha256").digest()
        current_app.extensions["hashing_secret"] = cached
    return cached


def keyed_hash(value: str) -> str:
    return hmac.new(_server_secret(), value.encode(), hashlib.sha256).hexdigest()


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(BASE62[remainder])
    return "".join(reversed(digits))
