"""Encryption of stored credentials (OIDC client secrets, SP private keys): Fernet from ``cryptography``.

The key is ``INTERCHANGE_ENCRYPTION_KEY`` (a Fernet key: ``python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"``). Production must set it: without it, outside production only
(``INTERCHANGE_ENV`` development or test), a key derived from ``SECRET_KEY`` is used, which is acceptable for a
local install and the tests but would tie every stored credential to the session secret. Encrypted values are
never rendered back into a page; forms treat them as write-only.

``cryptography.fernet`` (~8 MB resident with the OpenSSL bindings) is imported on first use: only SSO stores or
reads credentials here, and every process (the import workers too) imports this module.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from flask import current_app

from app.errors import DomainError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


class VaultError(DomainError):
    """The vault has no usable key, or a stored value cannot be decrypted with it.

    A domain error, so the page or API answer says what the operator must fix (503) instead of a crash.
    """

    status_code = 503


def _fernet() -> Fernet:
    from cryptography.fernet import Fernet  # lazy: see the module docstring

    cached = current_app.extensions.get("vault_fernet")
    if cached is not None:
        return cached
    key = current_app.config.get("INTERCHANGE_ENCRYPTION_KEY")
    if not key:
        if current_app.config.get("INTERCHANGE_ENV", "production") == "production":
            raise VaultError("INTERCHANGE_ENCRYPTION_KEY is not set; production needs it to store credentials.")
        digest = hashlib.sha256(b"interchange-vault:" + current_app.config["SECRET_KEY"].encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    try:
        cached = Fernet(key)
    except ValueError as exc:
        raise VaultError("INTERCHANGE_ENCRYPTION_KEY is not a valid Fernet key (32 url-safe base64 bytes).") from exc
    current_app.extensions["vault_fernet"] = cached
    return cached


def encrypt(plaintext: str) -> str:
    """Encrypt a credential for storage."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a stored credential; a wrong key is a clear operator error, not a traceback."""
    from cryptography.fernet import InvalidToken  # lazy: see the module docstring

    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise VaultError("A stored credential cannot be decrypted: INTERCHANGE_ENCRYPTION_KEY has changed.") from exc
