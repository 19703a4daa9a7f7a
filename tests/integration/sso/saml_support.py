"""Shared pieces of the SAML tests: an organisation wired to the real saml-idp, the login round trip through the
Flask test client, and a forger that edits a real IdP response and re-signs it with xmlsec (with the IdP's own key,
or another one).

Test modules import the fixtures they use from here (``from tests.integration.sso.saml_support import ...``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import lxml.html
import pytest
import requests
import xmlsec
from flask import g
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Membership, Organization, User
from app.services import accounts
from app.services.audit import SYSTEM
from app.services.sso import config as sso_config
from tests.peers.saml import KeyPair, SamlIdpPeer, saml_idp  # noqa: F401 - re-exported fixture

SLUG = "acme"
SP_BASE = "http://localhost"  # the Flask test client's host
NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
GROUP_ROLES = [("Interchange Editors", "editor"), ("Interchange Admins", "admin"), ("Interchange Viewers", "viewer")]


@dataclass
class SamlWorld:
    org: Organization
    peer: SamlIdpPeer
    client: FlaskClient

    def start(self, next_path: str | None = None) -> str:
        """Ask our SP to start a login; return the IdP URL it redirects to (the AuthnRequest is now pending)."""
        url = f"/sso/{SLUG}/login" + (f"?next={next_path}" if next_path else "")
        response = self.client.get(url)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return response.headers["Location"]

    def idp_response(self, next_path: str | None = None, **user: str) -> dict[str, str]:
        """A fresh, genuine response from the IdP to a request we just sent (not yet posted to the ACS)."""
        return self.peer.sign_in(self.start(next_path), **user)

    def post(self, form: dict[str, str]):
        """Post to the ACS like the IdP's page, then follow its 303 to the same-site finish step like a browser."""
        response = self.client.post(f"/sso/{SLUG}/saml/acs", data={k: v for k, v in form.items() if k != "_action"})
        if response.status_code == 303 and "/saml/finish" in response.headers["Location"]:
            g.pop("_login_user", None)
            response = self.client.get(response.headers["Location"])
        return response

    def login(self, **user: str):
        return self.post(self.idp_response(**user))


def configure(org: Organization, peer: SamlIdpPeer, **policy) -> None:
    """Configure ``org`` from the IdP's real metadata, with the test policy (overridable)."""
    idp = sso_config.parse_metadata(requests.get(peer.metadata_url, timeout=10).content)
    settings = dict(email_domains=["example.com"], name_attribute="displayName", group_roles=GROUP_ROLES,
                    default_role="deny")
    settings.update(policy)
    sso_config.configure_saml(org, SYSTEM, idp, sso_config.SsoPolicy(**settings))


@pytest.fixture
def world(client: FlaskClient, saml_idp) -> SamlWorld:  # noqa: F811 - the fixture imported above
    peer = saml_idp(SP_BASE, SLUG)
    org = accounts.create_org(SLUG, "Acme Works", SYSTEM)
    configure(org, peer)
    return SamlWorld(org=org, peer=peer, client=client)


def sign_out(world: SamlWorld) -> None:
    """Forget the test client's session (and Flask-Login's cached user) between two logins."""
    with world.client.session_transaction() as session:
        session.clear()
    g.pop("_login_user", None)


def continued_to(response) -> str:
    """The off-site URL of a hand-over page (a meta refresh: CSP form-action blocks redirects of form POSTs)."""
    assert response.status_code == 200, response.status_code
    content = lxml.html.fromstring(response.data).xpath("//meta[@http-equiv='refresh']/@content")[0]
    return content.split(";url=", 1)[1]


def signed_in_email(client: FlaskClient) -> str | None:
    with client.session_transaction() as session:
        user_id = session.get("_user_id")
    user = db.session.get(User, int(user_id)) if user_id else None
    return user.email if user else None


def membership_role(email: str, org: Organization) -> str | None:
    membership = db.session.scalar(
        select(Membership).join(User).where(User.email == email, Membership.organization_id == org.id)
    )
    return membership.role if membership else None


def audit_actions(org: Organization, prefix: str = "") -> list[tuple[str, dict]]:
    db.session.expire_all()
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.organization_id == org.id).order_by(AuditEvent.id)
    ).all()
    return [(e.action, e.details) for e in events if e.action.startswith(prefix)]


def refusal_reasons(org: Organization) -> list[str]:
    return [details["reason"] for action, details in audit_actions(org, "auth.sso_login_refused")]


# --- forging ---------------------------------------------------------------------------------------------------

def decode(form: dict[str, str]) -> etree._Element:
    return etree.fromstring(base64.b64decode(form["SAMLResponse"]))


def encode(form: dict[str, str], root: etree._Element | bytes) -> dict[str, str]:
    raw = root if isinstance(root, bytes) else etree.tostring(root)
    return {**form, "SAMLResponse": base64.b64encode(raw).decode()}


def assertion_of(root: etree._Element) -> etree._Element:
    return root.find("saml:Assertion", NS)


def strip_signatures(element: etree._Element) -> None:
    for signature in element.findall(".//ds:Signature", NS):
        signature.getparent().remove(signature)


def sign(element: etree._Element, keys: KeyPair, *, algorithm=xmlsec.Transform.RSA_SHA256,
         digest=xmlsec.Transform.SHA256) -> None:
    """Sign ``element`` (a Response or an Assertion) in place, enveloped, right after its Issuer, as IdPs do."""
    signature = xmlsec.template.create(element, xmlsec.Transform.EXCL_C14N, algorithm, ns="ds")
    element.find("saml:Issuer", NS).addnext(signature)
    reference = xmlsec.template.add_reference(signature, digest, uri="#" + element.get("ID"))
    xmlsec.template.add_transform(reference, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(reference, xmlsec.Transform.EXCL_C14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(keys.key_pem, xmlsec.KeyFormat.PEM, None)
    context.key.load_cert_from_memory(keys.cert_pem, xmlsec.KeyFormat.PEM)
    xmlsec.tree.add_ids(element, ["ID"])
    context.sign(signature)


def forge(form: dict[str, str], keys: KeyPair, change: Callable[[etree._Element], None] | None = None, *,
          sign_assertion: bool = True, sign_response: bool = True) -> dict[str, str]:
    """Take a real IdP response, apply ``change`` to it, and sign it again (assertion first, then response)."""
    root = decode(form)
    strip_signatures(root)
    if change is not None:
        change(root)
    if sign_assertion:
        sign(assertion_of(root), keys)
    if sign_response:
        sign(root, keys)
    return encode(form, root)


def set_in_response_to(root: etree._Element, request_id: str | None) -> None:
    for element in [root, *root.findall(".//saml:SubjectConfirmationData", NS)]:
        if request_id is None:
            element.attrib.pop("InResponseTo", None)
        else:
            element.set("InResponseTo", request_id)


