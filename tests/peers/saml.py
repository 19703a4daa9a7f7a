"""The real npm saml-idp (PEERS.md §2) as a test peer: started on a free 127.0.0.1 port with freshly generated keys,
stopped by PID; plus a requests + lxml.html driver that signs in through its form in about 0.1 s.

Import the ``saml_idp`` fixture into a conftest (``from tests.peers.saml import saml_idp  # noqa: F401``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

import lxml.html
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.peers import free_port, require_node_peers, start_peer, stop_peer

IDP_ISSUER = "urn:interchange:test-idp"
# The IdP's form fields (its config.js "metadata"); every login posts all of them (the IdP keeps edits otherwise).
DEFAULT_USER = {
    "userName": "saml.jackson@example.com",
    "nameIdFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "firstName": "Saml",
    "lastName": "Jackson",
    "displayName": "Saml Jackson",
    "email": "saml.jackson@example.com",
    "mobilePhone": "+1-415-555-5141",
    "groups": "Interchange Editors",
}


@dataclass
class KeyPair:
    key_pem: bytes
    cert_pem: bytes

    @property
    def cert_text(self) -> str:
        return self.cert_pem.decode()


def make_keypair(common_name: str = "Test Identity Provider", days: int = 3650) -> KeyPair:
    """An RSA-2048 key and self-signed certificate, as the IdP (or a forger) would have."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days)).sign(key, hashes.SHA256()))
    return KeyPair(
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
    )


@dataclass
class SamlIdpPeer:
    """One running saml-idp for one SP (audience = our metadata URL, ACS = our ACS URL)."""

    base_url: str
    keys: KeyPair
    process: subprocess.Popen
    workdir: Path
    issuer: str = IDP_ISSUER
    user: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_USER))
    # One browser (cookie jar) at the IdP, so its session survives from sign-in to single logout.
    browser: requests.Session = field(default_factory=requests.Session)

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/metadata"

    @property
    def sso_url(self) -> str:
        return f"{self.base_url}/saml/sso"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/saml/slo"

    def sign_in(self, idp_url: str, **user: str) -> dict[str, str]:
        """Follow an SP redirect to the IdP, submit its sign-in form as ``user``; return the auto-POST form fields
        (``SAMLResponse``, ``RelayState``) and its ``action`` (the ACS) under the key "_action"."""
        session = self.browser
        page = session.get(idp_url, timeout=10)
        page.raise_for_status()
        doc = lxml.html.fromstring(page.content)
        form = next(f for f in doc.forms if (f.action or "").endswith("/signin"))
        fields = {k: v for k, v in form.fields.items() if v is not None}
        fields.update(DEFAULT_USER)
        fields.update(user)
        answer = session.post(urljoin(page.url, form.action or "/signin"), data=fields, timeout=10)
        answer.raise_for_status()
        result = lxml.html.fromstring(answer.content).forms[0]
        data = {k: v for k, v in result.fields.items() if v is not None}
        data["_action"] = result.action
        return data


def start_saml_idp(workdir: Path, *, audience: str, acs_url: str, slo_url: str | None = None,
                   keys: KeyPair | None = None) -> SamlIdpPeer:
    node, modules = require_node_peers("saml-idp")
    keys = keys or make_keypair()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "idp-private-key.pem").write_bytes(keys.key_pem)
    (workdir / "idp-public-cert.pem").write_bytes(keys.cert_pem)
    port = free_port()
    args = [node, str(modules / "saml-idp" / "app.js"), "--host", "127.0.0.1", "--port", str(port),
            "--cert", str(workdir / "idp-public-cert.pem"), "--key", str(workdir / "idp-private-key.pem"),
            "--issuer", IDP_ISSUER, "--acsUrl", acs_url, "--audience", audience]
    if slo_url:
        args += ["--sloUrl", slo_url]
    base = f"http://127.0.0.1:{port}"
    process = start_peer(args, f"{base}/metadata", cwd=modules / "saml-idp", log=workdir / "idp.log")
    return SamlIdpPeer(base_url=base, keys=keys, process=process, workdir=workdir)


@pytest.fixture(scope="session")
def saml_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SamlIdpPeer]]:
    """Start (once per SP base URL and organisation slug) a saml-idp for ``/sso/<slug>/saml/...`` on ``sp_base``."""
    running: dict[tuple[str, str], SamlIdpPeer] = {}

    def start(sp_base: str, slug: str) -> SamlIdpPeer:
        if (sp_base, slug) not in running:
            root = f"{sp_base.rstrip('/')}/sso/{slug}/saml"
            running[(sp_base, slug)] = start_saml_idp(
                tmp_path_factory.mktemp(f"saml-idp-{slug}"), audience=f"{root}/metadata", acs_url=f"{root}/acs",
                slo_url=f"{root}/sls",
            )
        return running[(sp_base, slug)]

    yield start
    for peer in running.values():
        stop_peer(peer.process)
