"""Regression test of the SSO security review (L1): anonymous junk posts to the ACS cannot flood the audit log; at
most ``SSO_REFUSAL_AUDIT_LIMIT`` refusals per organisation and address are audited, the rest only logged."""

from __future__ import annotations

import logging

from app.services import accounts
from app.services.audit import SYSTEM
from tests.integration.sso.saml_support import SLUG, refusal_reasons, saml_idp, world  # noqa: F401 - fixtures


def junk(client, address: str, slug: str = SLUG):
    return client.post(f"/sso/{slug}/saml/acs", data={"SAMLResponse": "bm90IHhtbA=="},
                       environ_base={"REMOTE_ADDR": address})


def test_refusals_are_audited_up_to_the_limit_per_org_and_address(world, app, monkeypatch, caplog):  # noqa: F811
    monkeypatch.setitem(app.config, "SSO_REFUSAL_AUDIT_LIMIT", "3/minute")
    other = accounts.create_org("other", "Other Ltd", SYSTEM)
    with caplog.at_level(logging.WARNING, logger="app.services.sso.login"):
        statuses = [junk(world.client, "203.0.113.7").status_code for _ in range(6)]
    assert statuses == [403] * 6  # every junk post is still refused
    assert refusal_reasons(world.org) == ["malformed"] * 3
    assert sum("audit rate exceeded" in r.getMessage() for r in caplog.records) == 3
    # Another address, and the same address at another organisation, are counted separately.
    assert junk(world.client, "198.51.100.9").status_code == 403
    assert refusal_reasons(world.org) == ["malformed"] * 4
    assert junk(world.client, "203.0.113.7", "other").status_code == 403
    assert refusal_reasons(other) == ["not_configured"]
