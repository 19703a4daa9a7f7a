"""The API key format: ``ick_`` + 32 random base62 characters + a 6-character checksum, checked offline."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.security.api_keys import (
    CHECKSUM_LENGTH,
    KEY_LENGTH,
    KEY_PREFIX,
    RANDOM_LENGTH,
    _checksum,
    display_prefix,
    generate_key,
    is_well_formed,
)

BASE62 = string.digits + string.ascii_letters


def test_generate_key_has_prefix_length_and_base62_body():
    key = generate_key()

    assert key.startswith("ick_") and len(key) == KEY_LENGTH == 4 + RANDOM_LENGTH + CHECKSUM_LENGTH
    assert set(key[len(KEY_PREFIX):]) <= set(BASE62)


def test_generate_key_carries_at_least_128_random_bits():
    assert RANDOM_LENGTH * 5.95 >= 128  # log2(62) ~ 5.954 bits per character


def test_generate_key_is_different_every_time():
    assert len({generate_key() for _ in range(1000)}) == 1000


def test_display_prefix_shows_the_kind_and_a_few_characters():
    key = generate_key()

    assert display_prefix(key) == key[:12]


def _replace(key: str, index: int, char: str) -> str:
    return key[:index] + char + key[index + 1:]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1],
        lambda k: k + "0",
        lambda k: "ghp_" + k[4:],
        lambda k: k.upper(),
        lambda k: _replace(k, 20, "é"),
        lambda k: _replace(k, 20, "-"),
        lambda k: _replace(k, 8, "\u0662"),  # ARABIC-INDIC DIGIT TWO: isalnum() but not ASCII
        lambda k: "",
    ],
    ids=["short", "long", "other-prefix", "case-changed", "non-ascii", "punctuation", "unicode-digit", "empty"],
)
def test_is_well_formed_refuses_wrong_shapes(mangle):
    assert not is_well_formed(mangle(generate_key()))


RANDOM_PARTS = st.text(alphabet=BASE62, min_size=RANDOM_LENGTH, max_size=RANDOM_LENGTH)


@settings(max_examples=300)
@given(RANDOM_PARTS, st.integers(len(KEY_PREFIX), KEY_LENGTH - 1), st.sampled_from(BASE62))
def test_is_well_formed_checksum_catches_any_single_changed_character(random_part, index, char):
    key = KEY_PREFIX + random_part + _checksum(random_part)
    assume(key[index] != char)

    assert not is_well_formed(_replace(key, index, char))


def test_generate_key_is_always_well_formed():
    assert all(is_well_formed(generate_key()) for _ in range(2000))


@settings(max_examples=300)
@given(RANDOM_PARTS)
def test_is_well_formed_accepts_any_random_part_with_its_checksum(random_part):
    assert is_well_formed(KEY_PREFIX + random_part + _checksum(random_part))


@settings(max_examples=1000)
@given(st.text(alphabet=BASE62, min_size=RANDOM_LENGTH + CHECKSUM_LENGTH, max_size=RANDOM_LENGTH + CHECKSUM_LENGTH))
def test_is_well_formed_random_strings_of_the_same_length_almost_never_pass(body):
    # A random body matches its 32-bit checksum about once in 4 billion tries: not in 1000.
    assert not is_well_formed(KEY_PREFIX + body)
