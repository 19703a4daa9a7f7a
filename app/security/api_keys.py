"""API key format: ``ick_`` + 32 random base62 characters + a 6-character CRC32 checksum.

The prefix says what a leaked string is and the checksum lets scanners (and
us) reject typos and random strings offline, the way GitHub's ``ghp_`` tokens
work. 32 base62 characters carry about 190 random bits.
"""

from __future__ import annotations

import zlib

from app.security.hashing import base62, keyed_hash, random_base62

KEY_PREFIX = "ick_"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(KEY_PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 8


def _checksum(random_part: str) -> str:
    return base62(zlib.crc32(random_part.encode()), CHECKSUM_LENGTH)


def generate_key() -> str:
    random_part = random_base62(RANDOM_LENGTH)
    return f"{KEY_PREFIX}{random_part}{_checksum(random_part)}"


def is_well_formed(key: str) -> bool:
    """Shape and checksum only: no database, so garbage never costs a query."""
    if len(key) != KEY_LENGTH or not key.startswith(KEY_PREFIX):
        return False
    body = key[len(KEY_PREFIX):]
    random_part, checksum = body[:RANDOM_LENGTH], body[RANDOM_LENGTH:]
    return random_part.isalnum() and random_part.isascii() and _checksum(random_part) == checksum


def hash_key(key: str) -> str:
    return keyed_hash(key)


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]
