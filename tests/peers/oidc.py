"""The real OpenID provider for SSO tests: npm oidc-provider 9.13.3 running tests/peers/oidc/op.mjs (PEERS.md §3).

``running_oidc_provider`` starts it with node on a free 127.0.0.1 port, waits for its discovery document, and stops
it by PID on exit. Its login and consent pages are oidc-provider's development interactions: any login and password
are accepted, the login becomes the subject, and ``accounts`` decides the email, name and groups it releases. As
PEERS.md notes, it puts email, name and groups only in /userinfo, not in the ID token, which is what our OIDC module
must cope with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers import PEERS_DIR, free_port, require_node_peers, start_peer, stop_peer

OP_SCRIPT = PEERS_DIR / "oidc" / "op.mjs"
CLIENT_ID = "interchange-console"
CLIENT_SECRET = "peer-client-secret-7f3a9c"
# The organisation the SSO peer tests sign in to, and the people the provider knows (login -> released claims).
ORG_SLUG = "acme-oidc"
ACCOUNTS = {
    "ada": {"email": "ada@acme.test", "name": "Ada Lovelace", "groups": ["staff", "interchange-editors"]},
    "eve": {"email": "eve@acme.test", "name": "Eve Outsider", "groups": ["staff"]},
}


@dataclass(frozen=True)
class OidcPeer:
    issuer: str
    client_id: str
    client_secret: str
    log: Path


@contextmanager
def running_oidc_provider(
    redirect_uris: Sequence[str], accounts: Mapping[str, Mapping[str, object]], log_dir: Path
) -> Iterator[OidcPeer]:
    """Run oidc-provider for the block. Skips (or fails under INTERCHANGE_REQUIRE_PEERS) without node or the package."""
    node, _ = require_node_peers("oidc-provider")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    log = log_dir / f"oidc-provider-{port}.log"
    process = start_peer(
        [node, str(OP_SCRIPT)],
        f"{issuer}/.well-known/openid-configuration",
        cwd=PEERS_DIR,
        log=log,
        env={
            "OP_PORT": str(port),
            "OP_CLIENT_ID": CLIENT_ID,
            "OP_CLIENT_SECRET": CLIENT_SECRET,
            "OP_REDIRECT_URIS": " ".join(redirect_uris),
            "OP_ACCOUNTS": json.dumps(accounts),
        },
    )
    try:
        yield OidcPeer(issuer=issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, log=log)
    finally:
        stop_peer(process)


@pytest.fixture(scope="module")
def oidc_peer_for_live_server(live_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcPeer]:
    """oidc-provider for the module, its client's redirect URI the live server's callback for ``ORG_SLUG``.

    Test modules bind it under their own name (``oidc_peer = oidc_peer_for_live_server``) so pytest finds it.
    """
    redirect_uri = f"{live_server}/sso/{ORG_SLUG}/oidc/callback"
    with running_oidc_provider([redirect_uri], ACCOUNTS, tmp_path_factory.mktemp("oidc-peer")) as peer:
        yield peer
