"""Outbound HTTP refuses private, loopback, link-local and metadata addresses outside development and tests."""

from __future__ import annotations

import pytest

from app.security import outbound
from app.services.sso import oidc
from app.services.sso.identity import OidcSettings, SsoRefused


@pytest.fixture
def production(app, monkeypatch):
    """The operator's setting as in production: private addresses off."""
    monkeypatch.setitem(app.config, "INTERCHANGE_ENV", "production")
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOW_PRIVATE", False)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/", "https://10.1.2.3/metadata", "http://169.254.169.254/latest/meta-data/",
    "https://[::1]/", "http://0.0.0.0/", "https://192.168.1.10/", "ftp://93.184.216.34/file",
])
def test_private_local_and_metadata_addresses_are_refused(production, url):
    assert outbound.url_allowed(url) is False


def test_public_address_is_allowed(production):
    assert outbound.url_allowed("https://93.184.216.34/.well-known/openid-configuration") is True


def test_operator_setting_allows_private_addresses(app, monkeypatch, production):
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOW_PRIVATE", True)
    assert outbound.url_allowed("http://127.0.0.1:8080/") is True


def test_oidc_discovery_on_a_private_address_is_refused_before_any_request(production):
    settings = OidcSettings(issuer="http://127.0.0.1:9", client_id="interchange", client_secret="s", scopes=("openid",))

    with pytest.raises(SsoRefused) as refused:
        oidc.begin_login(settings, "https://console.example/sso/acme/oidc/callback")

    assert refused.value.reason == "discovery_failed"
    assert "private or local address" in refused.value.detail
