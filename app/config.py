"""Settings, read from the environment in this one place, with embedded defaults.

Without any environment the console runs on SQLite and an embedded Redis under
``instance/``; production sets ``DATABASE_URL``, ``REDIS_URL`` and ``SECRET_KEY``.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key(storage: Path) -> str:
    """Use SECRET_KEY, else a key generated once and kept in the storage folder.

    A generated key survives restarts so sessions and invitation links stay valid
    for a local install; production sets SECRET_KEY explicitly.
    """
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = storage / "secret_key"
    storage.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of several processes starting at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    for _ in range(100):  # another process may have created the file and not written it yet
        if key := path.read_text().strip():
            return key
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty; delete it or set SECRET_KEY")


@dataclass
class Config:
    """Flask settings. Attribute names in upper case become ``app.config`` keys."""

    SECRET_KEY: str
    SQLALCHEMY_DATABASE_URI: str
    REDIS_URL: str
    INTERCHANGE_STORAGE: str
    INTERCHANGE_ENV: str = "production"
    TESTING: bool = False
    SQLALCHEMY_ENGINE_OPTIONS: dict | None = None
    SESSION_COOKIE_SECURE: bool = True
    SESSION_COOKIE_HTTPONLY: bool = True
    SESSION_COOKIE_SAMESITE: str = "Lax"
    SESSION_COOKIE_NAME: str = "interchange_session"
    REMEMBER_COOKIE_SECURE: bool = True
    REMEMBER_COOKIE_HTTPONLY: bool = True
    PERMANENT_SESSION_LIFETIME: timedelta = timedelta(hours=12)
    WTF_CSRF_ENABLED: bool = True
    WTF_CSRF_TIME_LIMIT: int | None = None
    MAX_CONTENT_LENGTH: int = 201 * 1024 * 1024   # the import limit plus room for the multipart envelope
    # Imports: the upload size limit (the issue's default, 200 MB) and rows per chunk (one transaction each).
    IMPORT_MAX_BYTES: int = 200 * 1024 * 1024
    IMPORT_CHUNK_SIZE: int = 20_000
    BOOTSTRAP_SERVE_LOCAL: bool = True
    # Argon2id cost; tests lower it, production keeps the library's defaults.
    PASSWORD_HASH_TIME_COST: int = 3
    PASSWORD_HASH_MEMORY_COST: int = 65536
    # Login throttling: failures per account / per address inside the window.
    LOGIN_SLOWDOWN_AFTER: int = 3
    LOGIN_LOCK_AFTER_ACCOUNT: int = 5
    LOGIN_LOCK_AFTER_ADDRESS: int = 20
    LOGIN_LOCK_MINUTES: int = 15
    LOG_LEVEL: str = "INFO"
    LOG_JSON: bool = True
    PROXY_FIX_HOPS: int = 0
    # REST API: default limit per API key / OAuth app, and per address for failed credentials.
    API_RATE_LIMIT: str = "600/minute"
    API_ANONYMOUS_RATE_LIMIT: str = "60/minute"
    # Secret for the keyed hashes of API keys and OAuth secrets; derived from SECRET_KEY when unset.
    API_KEY_SECRET: str | None = None
    # Seconds a process may reuse an API key it has checked (confirmed by a Redis token per request); 0: off.
    API_KEY_CACHE_SECONDS: int = 30
    # OAuth server: the issuer (set it in production; else the request's host URL) and token-endpoint limits.
    OAUTH_ISSUER: str | None = None
    OAUTH_TOKEN_RATE_LIMIT: str = "60/minute"
    OAUTH_TOKEN_ADDRESS_RATE_LIMIT: str = "300/minute"
    # Fernet key for stored credentials (app/security/vault.py); required in production.
    INTERCHANGE_ENCRYPTION_KEY: str | None = None
    # SAML: clock skew allowed on assertion time windows, and how long a sent AuthnRequest may be answered.
    SAML_CLOCK_SKEW_SECONDS: int = 120
    SSO_REQUEST_TTL_SECONDS: int = 600
    # Refused SSO sign-ins audited per organisation and address (the rest are only logged): anonymous junk posts
    # to the ACS/SLS must not flood the audit log.
    SSO_REFUSAL_AUDIT_LIMIT: str = "20/minute"
    # Outbound HTTP (IdP metadata URLs) to private/loopback addresses; always allowed in development and test.
    OUTBOUND_ALLOW_PRIVATE: bool = False

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        storage = Path(env.get("INTERCHANGE_STORAGE") or PROJECT_ROOT / "instance").resolve()
        mode = env.get("INTERCHANGE_ENV", "production")
        secure_default = mode != "development"
        return cls(
            SECRET_KEY=_secret_key(storage),
            SQLALCHEMY_DATABASE_URI=normalise_database_url(
                env.get("DATABASE_URL") or f"sqlite:///{storage / 'interchange.db'}"
            ),
            REDIS_URL=env.get("REDIS_URL") or "",
            INTERCHANGE_STORAGE=str(storage),
            INTERCHANGE_ENV=mode,
            SESSION_COOKIE_SECURE=_bool(env.get("COOKIE_SECURE"), secure_default),
            REMEMBER_COOKIE_SECURE=_bool(env.get("COOKIE_SECURE"), secure_default),
            LOG_LEVEL=env.get("LOG_LEVEL", "INFO"),
            LOG_JSON=_bool(env.get("LOG_JSON"), True),
            PROXY_FIX_HOPS=int(env.get("PROXY_FIX_HOPS", "0")),
            API_RATE_LIMIT=env.get("API_RATE_LIMIT", "600/minute"),
            API_ANONYMOUS_RATE_LIMIT=env.get("API_ANONYMOUS_RATE_LIMIT", "60/minute"),
            API_KEY_SECRET=env.get("API_KEY_SECRET") or None,
            API_KEY_CACHE_SECONDS=int(env.get("API_KEY_CACHE_SECONDS", "30")),
            OAUTH_ISSUER=env.get("OAUTH_ISSUER") or None,
            IMPORT_MAX_BYTES=int(env.get("IMPORT_MAX_BYTES", 200 * 1024 * 1024)),
            MAX_CONTENT_LENGTH=int(env.get("IMPORT_MAX_BYTES", 200 * 1024 * 1024)) + 1024 * 1024,
            IMPORT_CHUNK_SIZE=int(env.get("IMPORT_CHUNK_SIZE", 20_000)),
            INTERCHANGE_ENCRYPTION_KEY=env.get("INTERCHANGE_ENCRYPTION_KEY") or None,
            OUTBOUND_ALLOW_PRIVATE=_bool(env.get("OUTBOUND_ALLOW_PRIVATE"), False),
        )

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k.isupper() and v is not None}


def normalise_database_url(url: str) -> str:
    """Accept the ``postgres://`` and ``postgresql://`` forms and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
