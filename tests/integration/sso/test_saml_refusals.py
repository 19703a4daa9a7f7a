"""Every SAML refusal of issue 5, each its own test, against real responses of the npm saml-idp.

A genuine response is edited and, where the attack needs it, signed again with xmlsec: with the IdP's own key
(so only the check under test can refuse it) or with another key. Each test asserts nobody is signed in, nobody
is created, the user sees the plain refusal, and the audit log has the precise reason.
"""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta

import pytest
import xmlsec
from lxml import etree
from sqlalchemy import func, select

from app.extensions import db
from app.models import User
from tests.integration.sso.saml_support import (
    NS,
    assertion_of,
    decode,
    encode,
    forge,
    refusal_reasons,
    saml_idp,  # noqa: F401 - fixture
    set_in_response_to,
    sign,
    sign_out,
    signed_in_email,
    strip_signatures,
    world,  # noqa: F401 - fixture
)
from tests.peers.saml import make_keypair

EMAIL = "saml.jackson@example.com"


def saml_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_refused(world, response, reason: str, users: int = 0) -> None:  # noqa: F811
    """Refused with the plain message, nobody signed in, nobody created (beyond ``users``), the reason audited."""
    body = response.get_data(as_text=True)
    assert response.status_code == 403, body[:300]
    assert "The sign-in response from your identity provider was not accepted." in body
    assert signed_in_email(world.client) is None
    assert db.session.scalar(select(func.count(User.id))) == users
    assert refusal_reasons(world.org)[-1] == reason



def test_saml_control_genuine_and_resigned_responses_sign_in(world):  # noqa: F811
    """The control for every test below: an untouched response, and one re-signed with the IdP key, sign in."""
    assert world.login().status_code == 302
    assert signed_in_email(world.client) == EMAIL
    sign_out(world)
    response = world.post(forge(world.idp_response(), world.peer.keys))
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    assert signed_in_email(world.client) == EMAIL


def test_saml_refuses_a_tampered_signature(world):  # noqa: F811
    form = world.idp_response()
    root = decode(form)
    value = assertion_of(root).find(".//saml:Attribute[@Name='email']/saml:AttributeValue", NS)
    value.text = "ceo@example.com"  # changed after the IdP signed it
    assert_refused(world, world.post(encode(form, root)), "invalid_signature")


def test_saml_refuses_an_unsigned_assertion(world):  # noqa: F811
    """Only the Response is signed (validly, with the IdP key): python3-saml must still want the assertion signed."""
    form = forge(world.idp_response(), world.peer.keys, sign_assertion=False, sign_response=True)
    assert_refused(world, world.post(form), "no_signed_assertion")


def test_saml_refuses_a_response_signed_by_another_key(world):  # noqa: F811
    form = forge(world.idp_response(), make_keypair("Forger"))
    assert_refused(world, world.post(form), "invalid_signature")


def test_saml_refuses_deprecated_signature_algorithms(world):  # noqa: F811
    """RSA-SHA1 with a SHA-1 digest, by the IdP's own key: refused because the algorithm is deprecated."""
    form = world.idp_response()
    root = decode(form)
    strip_signatures(root)
    sign(assertion_of(root), world.peer.keys, algorithm=xmlsec.Transform.RSA_SHA1, digest=xmlsec.Transform.SHA1)
    assert_refused(world, world.post(encode(form, root)), "deprecated_signature_method")


def test_saml_refuses_a_wrong_audience(world):  # noqa: F811
    def change(root):
        assertion_of(root).find(".//saml:Audience", NS).text = "https://other-sp.example.com/metadata"

    assert_refused(world, world.post(forge(world.idp_response(), world.peer.keys, change)), "wrong_audience")


def test_saml_refuses_an_expired_assertion(world):  # noqa: F811
    expired = saml_time(datetime.now(UTC) - timedelta(minutes=10))

    def change(root):
        assertion = assertion_of(root)
        assertion.find("saml:Conditions", NS).set("NotOnOrAfter", expired)
        for data in assertion.findall(".//saml:SubjectConfirmationData", NS):
            data.set("NotOnOrAfter", expired)

    assert_refused(world, world.post(forge(world.idp_response(), world.peer.keys, change)), "assertion_expired")


def test_saml_refuses_conditions_expired_beyond_our_smaller_clock_skew(world):  # noqa: F811
    """Conditions ended 200 s ago: inside python3-saml's own 300 s drift, so only our 120 s skew refuses it."""
    expired = saml_time(datetime.now(UTC) - timedelta(seconds=200))

    def change(root):
        assertion_of(root).find("saml:Conditions", NS).set("NotOnOrAfter", expired)

    assert_refused(world, world.post(forge(world.idp_response(), world.peer.keys, change)), "expired")


def test_saml_refuses_a_replayed_response(world):  # noqa: F811
    form = world.idp_response()
    assert world.post(form).status_code == 302
    sign_out(world)
    assert_refused(world, world.post(form), "unknown_request", users=1)


def test_saml_refuses_a_replayed_assertion_in_a_new_response(world):  # noqa: F811
    """The attacker re-wraps a used assertion as the answer to a new, genuine request: the assertion ID is known."""
    used = world.idp_response()
    assert world.post(used).status_code == 302
    sign_out(world)
    fresh_request_id = decode(world.idp_response()).get("InResponseTo")
    form = forge(used, world.peer.keys, lambda root: set_in_response_to(root, fresh_request_id))
    assert_refused(world, world.post(form), "replayed", users=1)


def test_saml_refuses_an_unsolicited_response(world):  # noqa: F811
    form = forge(world.idp_response(), world.peer.keys, lambda root: set_in_response_to(root, None))
    assert_refused(world, world.post(form), "unsolicited")


def test_saml_refuses_an_answer_to_a_request_we_never_sent(world):  # noqa: F811
    form = forge(world.idp_response(), world.peer.keys, lambda root: set_in_response_to(root, "ONELOGIN_forged"))
    assert_refused(world, world.post(form), "unknown_request")


def _evil_assertion(root):
    evil = copy.deepcopy(assertion_of(root))
    strip_signatures(evil)
    evil.set("ID", "_evil")
    evil.find(".//saml:NameID", NS).text = "ceo@example.com"
    evil.find(".//saml:Attribute[@Name='email']/saml:AttributeValue", NS).text = "ceo@example.com"
    return evil


def xsw_second_assertion_before(root):
    """XSW: an unsigned evil assertion placed before the signed original."""
    root.find("saml:Assertion", NS).addprevious(_evil_assertion(root))


def xsw_original_inside_evil(root):
    """XSW: the evil assertion replaces the original, which hides inside the evil one's Signature/Object."""
    original = assertion_of(root)
    evil = _evil_assertion(root)
    signature = original.find("ds:Signature", NS)
    wrapper = copy.deepcopy(signature)
    obj = etree.SubElement(wrapper, f"{{{NS['ds']}}}Object")
    obj.append(copy.deepcopy(original))
    evil.find("saml:Issuer", NS).addnext(wrapper)
    root.replace(original, evil)


def xsw_original_in_extensions(root):
    """XSW: the signed original moves into samlp:Extensions; an evil assertion with the same ID takes its place."""
    original = assertion_of(root)
    evil = _evil_assertion(root)
    evil.set("ID", original.get("ID"))
    extensions = etree.Element(f"{{{NS['samlp']}}}Extensions")
    root.find("saml:Issuer", NS).addnext(extensions)
    root.replace(original, evil)
    extensions.append(original)


def xsw_evil_carries_the_original_signature(root):
    """XSW with one assertion only: the evil assertion takes the original's ID and its (valid) Signature."""
    original = assertion_of(root)
    evil = _evil_assertion(root)
    evil.set("ID", original.get("ID"))
    evil.find("saml:Issuer", NS).addnext(copy.deepcopy(original.find("ds:Signature", NS)))
    root.replace(original, evil)


XSW_REASONS = {
    "xsw_second_assertion_before": "wrong_number_of_assertions",
    "xsw_original_inside_evil": "wrong_number_of_assertions",
    "xsw_original_in_extensions": "wrong_number_of_assertions",
    "xsw_evil_carries_the_original_signature": "invalid_signature",
}


@pytest.mark.parametrize("wrap", [xsw_second_assertion_before, xsw_original_inside_evil, xsw_original_in_extensions,
                                  xsw_evil_carries_the_original_signature], ids=lambda f: f.__name__)
def test_saml_refuses_signature_wrapping(world, wrap):  # noqa: F811
    """The assertion stays signed by the IdP (signed first, then wrapped); the evil one claims ceo@example.com."""
    form = world.idp_response()
    root = decode(form)
    strip_signatures(root)
    sign(assertion_of(root), world.peer.keys)
    wrap(root)
    response = world.post(encode(form, root))
    assert response.status_code == 403
    assert signed_in_email(world.client) is None
    assert db.session.scalar(select(func.count(User.id))) == 0
    assert refusal_reasons(world.org)[-1] == XSW_REASONS[wrap.__name__]


def test_saml_comment_in_the_name_id_does_not_truncate_it(world):  # noqa: F811
    """CVE-2017-11427 style: the IdP signs 'saml.jackson@example.com.evil.test' for an attacker; a comment injected
    after '.com' keeps the signature valid (exclusive c14n drops comments). We must read the whole value, so the
    attacker's address (an unclaimed domain) is refused instead of signing in as saml.jackson@example.com."""
    attacker = "saml.jackson@example.com.evil.test"
    form = world.idp_response(userName=attacker, email=attacker)
    xml = base64.b64decode(form["SAMLResponse"]).decode()
    assert xml.count(attacker) >= 2
    injected = xml.replace(attacker, "saml.jackson@example.com<!-- -->.evil.test")
    response = world.post({**form, "SAMLResponse": base64.b64encode(injected.encode()).decode()})
    assert response.status_code == 403
    assert signed_in_email(world.client) is None
    assert db.session.scalar(select(func.count(User.id))) == 0
    assert refusal_reasons(world.org)[-1] == "domain_not_claimed"


@pytest.mark.parametrize(("doctype", "reference"), [
    ('<!DOCTYPE r [<!ENTITY who "ceo@example.com">]>', "&who;"),
    ('<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
     '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>', "&c;"),
    ('<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;"),
], ids=["internal-entity", "entity-expansion", "external-entity"])
def test_saml_refuses_an_xml_entity_in_the_response(world, doctype, reference):  # noqa: F811
    form = world.idp_response()
    xml = base64.b64decode(form["SAMLResponse"]).decode()
    xml = doctype + xml.replace(">saml.jackson@example.com<", f">{reference}<", 1)
    assert_refused(world, world.post({**form, "SAMLResponse": base64.b64encode(xml.encode()).decode()}), "malformed")
