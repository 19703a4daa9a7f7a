"""Configuring single sign-on through the CLI and the Single sign-on page; the organisation then signs in."""

from __future__ import annotations

import io

import requests
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, GroupRoleMapping, IdentityProvider, Role
from app.security import vault
from app.services import accounts
from app.services.audit import SYSTEM
from tests.integration.sso.saml_support import (
    SLUG,
    SP_BASE,
    SamlWorld,
    membership_role,
    saml_idp,  # noqa: F401 - fixture
    signed_in_email,
)

EMAIL = "saml.jackson@example.com"


def provider() -> IdentityProvider | None:
    db.session.expire_all()
    return db.session.scalar(select(IdentityProvider))


# --- CLI ---------------------------------------------------------------------------------------------------------

def test_cli_sso_saml_from_metadata_url_configures_an_org_that_then_signs_in(runner, client, saml_idp):  # noqa: F811
    peer = saml_idp(SP_BASE, SLUG)
    org = accounts.create_org(SLUG, "Acme Works", SYSTEM)
    result = runner.invoke(args=[
        "sso", "saml", "--org", SLUG, "--metadata-url", peer.metadata_url, "--domain", "example.com",
        "--group", "Interchange Editors=editor", "--group", "Interchange Admins=admin", "--default-role", "deny",
        "--name-attribute", "displayName",
    ])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == f"configured saml single sign-on for {SLUG} (idp {peer.issuer})"
    configured = provider()
    assert (configured.saml_entity_id, configured.saml_sso_url, configured.allow_idp_initiated) == (
        peer.issuer, peer.sso_url, False)
    assert sorted((m.group, m.role) for m in configured.group_roles) == [
        ("Interchange Admins", "admin"), ("Interchange Editors", "editor")]
    world = SamlWorld(org=org, peer=peer, client=client)
    assert world.login(groups="Interchange Admins").status_code == 302
    assert signed_in_email(client) == EMAIL
    assert membership_role(EMAIL, org) == Role.ADMIN.value
    assert db.session.scalar(select(AuditEvent.actor_label).where(AuditEvent.action == "sso.configured")) == "cli"


def test_cli_sso_saml_from_metadata_file_with_idp_initiated(runner, tmp_path, saml_idp):  # noqa: F811
    peer = saml_idp(SP_BASE, SLUG)
    accounts.create_org(SLUG, "Acme Works", SYSTEM)
    path = tmp_path / "idp.xml"
    path.write_bytes(requests.get(peer.metadata_url, timeout=10).content)
    result = runner.invoke(args=["sso", "saml", "--org", SLUG, "--metadata-file", str(path), "--idp-initiated",
                                 "--default-role", "viewer"])
    assert result.exit_code == 0, result.output
    assert (provider().allow_idp_initiated, provider().default_role) == (True, "viewer")


def test_cli_sso_saml_errors_are_precise_and_store_nothing(runner, tmp_path):
    accounts.create_org(SLUG, "Acme Works", SYSTEM)
    bad = tmp_path / "bad.xml"
    bad.write_text("<EntityDescriptor xmlns='urn:oasis:names:tc:SAML:2.0:metadata' entityID='x'/>")
    result = runner.invoke(args=["sso", "saml", "--org", SLUG, "--metadata-file", str(bad)])
    assert result.exit_code != 0
    assert "No IDPSSODescriptor with an entityID was found in the metadata." in result.output
    neither = runner.invoke(args=["sso", "saml", "--org", SLUG])
    assert neither.exit_code != 0 and "exactly one of --metadata-url or --metadata-file" in neither.output
    unknown = runner.invoke(args=["sso", "saml", "--org", "nobody", "--metadata-file", str(bad)])
    assert unknown.exit_code != 0 and "Organisation 'nobody' not found." in unknown.output
    bad_group = runner.invoke(args=["sso", "oidc", "--org", SLUG, "--issuer", "https://id.example.com",
                                    "--client-id", "c", "--client-secret", "s", "--group", "Admins=owner"])
    assert bad_group.exit_code != 0 and "row 1: choose a role for 'Admins'." in bad_group.output
    assert db.session.scalar(select(func.count(IdentityProvider.id))) == 0


def test_cli_sso_oidc_stores_the_client_secret_encrypted(runner):
    accounts.create_org(SLUG, "Acme Works", SYSTEM)
    result = runner.invoke(args=["sso", "oidc", "--org", SLUG, "--issuer", "https://id.example.com/",
                                 "--client-id", "interchange", "--client-secret", "s3cr3t-value",
                                 "--domain", "example.com"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"configured oidc single sign-on for {SLUG} (idp https://id.example.com/)")  # as typed: issuers match exactly
    stored = provider()
    assert stored.oidc_client_secret_encrypted and "s3cr3t-value" not in stored.oidc_client_secret_encrypted
    assert vault.decrypt(stored.oidc_client_secret_encrypted) == "s3cr3t-value"
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "sso.configured")).all()
    assert "s3cr3t-value" not in str([e.details for e in events])
    assert events[-1].details["changes"]["oidc_client_secret"] == "changed"


# --- the Single sign-on page -------------------------------------------------------------------------------------

def test_sso_page_shows_our_sp_urls_to_paste_into_the_idp(client, make_member, login_as):
    admin = make_member(Role.ADMIN)
    org = admin.memberships[0].organization
    login_as(admin, org)
    html = client.get("/settings/sso").get_data(as_text=True)
    assert f"http://localhost/sso/{org.slug}/saml/metadata" in html
    assert f"http://localhost/sso/{org.slug}/saml/acs" in html
    assert f"http://localhost/sso/{org.slug}/oidc/callback" in html
    assert "Single sign-on is not set up." in html


def test_sso_page_imports_saml_metadata_from_a_url_then_sets_roles(client, make_member, login_as,
                                                                  saml_idp):  # noqa: F811
    peer = saml_idp(SP_BASE, SLUG)
    org = accounts.create_org(SLUG, "Acme Works", SYSTEM)
    login_as(make_member(Role.ADMIN, org=org, email="admin@example.com"), org)
    response = client.post("/settings/sso/saml", data={"metadata_url": peer.metadata_url,
                                                       "nameid_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:"
                                                                        "emailAddress"})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert provider().saml_entity_id == peer.issuer
    response = client.post("/settings/sso/policy", data={
        "enabled": "y", "email_attribute": "email", "name_attribute": "displayName", "groups_attribute": "groups",
        "email_domains": "example.com, Example.org", "default_role": "deny", "break_glass_email": "",
        "group_roles-0-group": "Interchange Editors", "group_roles-0-role": "editor",
        "group_roles-1-group": "", "group_roles-1-role": "",
    })
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    stored = provider()
    assert (stored.email_domains, stored.default_role) == (["example.com", "example.org"], None)
    assert [(m.group, m.role) for m in stored.group_roles] == [("Interchange Editors", "editor")]
    page = client.get("/settings/sso").get_data(as_text=True)
    assert 'value="Interchange Editors"' in page and "example.com, example.org" in page


def test_sso_page_hand_entry_errors_show_inline_and_store_nothing(client, make_member, login_as):
    admin = make_member(Role.ADMIN)
    login_as(admin)
    response = client.post("/settings/sso/saml", data={
        "entity_id": "", "sso_url": "ftp://idp.example.com/sso", "certificate": "not a certificate",
        "nameid_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    })
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Enter the identity provider&#39;s entity ID." in html
    assert "Enter an http:// or https:// URL." in html
    assert "This is not a PEM or base64 X.509 certificate." in html
    assert db.session.scalar(select(func.count(IdentityProvider.id))) == 0


def test_sso_page_metadata_file_upload_with_a_dtd_is_refused(client, make_member, login_as):
    login_as(make_member(Role.ADMIN))
    evil = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><EntityDescriptor>&e;</EntityDescriptor>'
    response = client.post("/settings/sso/saml", data={
        "metadata_file": (io.BytesIO(evil), "idp.xml"),
        "nameid_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    }, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "not well-formed XML metadata (DTDs and entities are not allowed)" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(IdentityProvider.id))) == 0


def test_sso_page_oidc_secret_is_write_only(client, make_member, login_as):
    login_as(make_member(Role.ADMIN))
    data = {"issuer": "https://id.example.com", "client_id": "interchange", "client_secret": "top-secret-123",
            "scopes": "openid email profile groups"}
    assert client.post("/settings/sso/oidc", data=data).status_code == 302
    page = client.get("/settings/sso").get_data(as_text=True)
    assert "top-secret-123" not in page
    assert "A client secret is stored (encrypted)." in page
    assert client.post("/settings/sso/oidc", data={**data, "client_secret": ""}).status_code == 302
    assert vault.decrypt(provider().oidc_client_secret_encrypted) == "top-secret-123"
    assert provider().oidc_scopes == "openid email profile groups"


def test_sso_page_group_role_errors_name_the_row(client, make_member, login_as):
    admin = make_member(Role.ADMIN)
    login_as(admin)
    client.post("/settings/sso/oidc", data={"issuer": "https://id.example.com", "client_id": "c",
                                            "client_secret": "s", "scopes": "openid"})
    response = client.post("/settings/sso/policy", data={
        "email_domains": "not a domain", "default_role": "deny",
        "group_roles-0-group": "Admins", "group_roles-0-role": "",
    })
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Not a domain name: not a domain." in html
    assert "row 1: choose a role for &#39;Admins&#39;." in html
    assert db.session.scalar(select(func.count(GroupRoleMapping.id))) == 0


def test_sso_domains_cannot_be_claimed_by_two_orgs(client, make_member, login_as, runner):
    first = accounts.create_org("first", "First", SYSTEM)
    accounts.create_org("second", "Second", SYSTEM)
    args = ["--issuer", "https://id.example.com", "--client-id", "c", "--client-secret", "s", "--domain",
            "example.com"]
    assert runner.invoke(args=["sso", "oidc", "--org", "first", *args]).exit_code == 0
    second = runner.invoke(args=["sso", "oidc", "--org", "second", *args])
    assert second.exit_code != 0
    assert "Already claimed by another organisation: example.com." in second.output
    assert db.session.scalar(select(func.count(IdentityProvider.id))) == 1
    assert provider().organization_id == first.id


def test_cli_sso_in_production_without_an_encryption_key_says_what_to_set(app, runner, monkeypatch):
    monkeypatch.setitem(app.config, "INTERCHANGE_ENV", "production")
    monkeypatch.setitem(app.config, "INTERCHANGE_ENCRYPTION_KEY", None)
    monkeypatch.delitem(app.extensions, "vault_fernet", raising=False)
    accounts.create_org(SLUG, "Acme Works", SYSTEM)

    result = runner.invoke(args=["sso", "oidc", "--org", SLUG, "--issuer", "https://id.example.com",
                                 "--client-id", "interchange", "--client-secret", "s3cr3t-value"])

    assert result.exit_code != 0
    assert "INTERCHANGE_ENCRYPTION_KEY is not set" in result.output
    assert "Traceback" not in result.output
    assert db.session.scalar(select(func.count(IdentityProvider.id))) == 0
