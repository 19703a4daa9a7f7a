"""Regression tests of the SSO security review (M2): a LogoutRequest/LogoutResponse over the HTTP-Redirect binding
(GET /sso/<org>/saml/sls) counts only with a valid IdP signature in its Signature/SigAlg query parameters."""

from __future__ import annotations

import base64
import uuid
import zlib
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote_plus, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from flask import g

from app.services.sso import state
from tests.integration.sso.saml_support import (
    SLUG,
    continued_to,
    refusal_reasons,
    saml_idp,  # noqa: F401 - fixture
    signed_in_email,
    world,  # noqa: F401 - fixture
)
from tests.peers.saml import KeyPair, make_keypair

EMAIL = "saml.jackson@example.com"
SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SLS = f"http://localhost/sso/{SLUG}/saml/sls"


def _deflated(xml: str) -> str:
    return base64.b64encode(zlib.compress(xml.encode())[2:-4]).decode()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def logout_request(issuer: str, name_id: str = EMAIL) -> str:
    return (f'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_{uuid.uuid4().hex}" Version="2.0" '
            f'IssueInstant="{_now()}" Destination="{SLS}"><saml:Issuer>{issuer}</saml:Issuer>'
            f'<saml:NameID>{name_id}</saml:NameID></samlp:LogoutRequest>')


def logout_response(issuer: str, in_response_to: str) -> str:
    return (f'<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_{uuid.uuid4().hex}" Version="2.0" '
            f'IssueInstant="{_now()}" Destination="{SLS}" InResponseTo="{in_response_to}">'
            f'<saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode '
            f'Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>')


def redirect_query(kind: str, xml: str, keys: KeyPair | None) -> str:
    """The query string of a Redirect-binding message, signed with ``keys`` as the binding specifies (or not)."""
    query = f"{kind}={quote_plus(_deflated(xml))}"
    if keys is None:
        return query
    query += f"&SigAlg={quote_plus(SHA256)}"
    key = serialization.load_pem_private_key(keys.key_pem, password=None)
    signature = key.sign(query.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{query}&Signature={quote_plus(base64.b64encode(signature).decode())}"


def sls(world, query: str):  # noqa: F811
    g.pop("_login_user", None)
    return world.client.get(f"/sso/{SLUG}/saml/sls?{query}")


def test_an_unsigned_or_wrongly_signed_logout_request_changes_nothing(world):  # noqa: F811
    assert world.login().status_code == 302
    for keys in (None, make_keypair("Forger")):
        response = sls(world, redirect_query("SAMLRequest", logout_request(world.peer.issuer), keys))
        assert response.status_code == 403
        assert signed_in_email(world.client) == EMAIL
        assert refusal_reasons(world.org)[-1] == "logout_invalid"
    # A signature over other bytes (the message swapped after signing) is refused too.
    signed = redirect_query("SAMLRequest", logout_request(world.peer.issuer), world.peer.keys)
    swapped = "SAMLRequest=" + quote_plus(_deflated(logout_request(world.peer.issuer, "other@example.com")))
    response = sls(world, swapped + signed[signed.index("&SigAlg="):])
    assert response.status_code == 403 and signed_in_email(world.client) == EMAIL


def test_a_logout_request_signed_by_the_idp_signs_out_and_answers_signed(world):  # noqa: F811
    assert world.login().status_code == 302
    response = sls(world, redirect_query("SAMLRequest", logout_request(world.peer.issuer), world.peer.keys))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(world.peer.slo_url + "?SAMLResponse=")
    assert {"SigAlg", "Signature"} <= set(parse_qs(urlsplit(response.headers["Location"]).query))
    assert signed_in_email(world.client) is None


def test_a_signed_logout_request_for_someone_else_leaves_this_session_signed_in(world):  # noqa: F811
    assert world.login().status_code == 302
    xml = logout_request(world.peer.issuer, "someone.else@example.com")
    response = sls(world, redirect_query("SAMLRequest", xml, world.peer.keys))
    assert response.status_code == 302  # the IdP still gets its (signed) answer
    assert response.headers["Location"].startswith(world.peer.slo_url + "?SAMLResponse=")
    assert signed_in_email(world.client) == EMAIL


def test_an_unsigned_logout_response_does_not_consume_our_pending_logout(world):  # noqa: F811
    assert world.login().status_code == 302
    g.pop("_login_user", None)
    location = continued_to(world.client.post("/logout"))
    request_xml = zlib.decompress(base64.b64decode(parse_qs(urlsplit(location).query)["SAMLRequest"][0]), -15)
    request_id = request_xml.decode().split(' ID="', 1)[1].split('"', 1)[0]
    forged = sls(world, redirect_query("SAMLResponse", logout_response(world.peer.issuer, request_id), None))
    assert forged.status_code == 403
    assert refusal_reasons(world.org)[-1] == "logout_invalid"
    genuine = sls(world, redirect_query("SAMLResponse", logout_response(world.peer.issuer, request_id),
                                        world.peer.keys))
    assert genuine.status_code == 302 and genuine.headers["Location"] == "/login"
    assert state.take_request(world.org.id, request_id) is None  # answered once, now consumed
