"""The credential vault: Fernet with the configured key; a derived key only outside production."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from app.security import vault


def app_with(**config) -> Flask:
    app = Flask(__name__)
    app.config.update({"SECRET_KEY": "k", "INTERCHANGE_ENV": "test", **config})
    return app


def test_vault_round_trip_never_stores_the_plaintext():
    with app_with().app_context():
        token = vault.encrypt("client-secret-value")
        assert "client-secret-value" not in token
        assert vault.decrypt(token) == "client-secret-value"


def test_vault_uses_the_configured_key():
    key = Fernet.generate_key().decode()
    with app_with(INTERCHANGE_ENCRYPTION_KEY=key).app_context():
        token = vault.encrypt("s")
    assert Fernet(key).decrypt(token.encode()) == b"s"


def test_vault_refuses_to_run_in_production_without_a_key():
    with app_with(INTERCHANGE_ENV="production").app_context(), pytest.raises(vault.VaultError) as error:
        vault.encrypt("s")
    assert "INTERCHANGE_ENCRYPTION_KEY is not set" in str(error.value)


def test_vault_says_when_the_key_changed_and_when_it_is_malformed():
    with app_with().app_context():
        token = vault.encrypt("s")
    with app_with(INTERCHANGE_ENCRYPTION_KEY=Fernet.generate_key().decode()).app_context():
        with pytest.raises(vault.VaultError, match="INTERCHANGE_ENCRYPTION_KEY has changed"):
            vault.decrypt(token)
    with app_with(INTERCHANGE_ENCRYPTION_KEY="short").app_context():
        with pytest.raises(vault.VaultError, match="not a valid Fernet key"):
            vault.encrypt("s")
