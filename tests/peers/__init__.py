"""Real third-party peers the tests drive (PEERS.md): LibreOffice, and npm saml-idp and oidc-provider under tests/peers.

``make test`` installs them with ``npm ci --prefix tests/peers`` when node is present. Without node or without
tests/peers/node_modules the tests that need them skip with the reason, unless ``INTERCHANGE_REQUIRE_PEERS`` is set
(CI sets it): then they fail, so CI cannot go green by skipping them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import requests

PEERS_DIR = Path(__file__).resolve().parent
NODE_MODULES = PEERS_DIR / "node_modules"


def peer_unavailable(reason: str) -> None:
    """Skip (locally) or fail (when INTERCHANGE_REQUIRE_PEERS is set) because a peer cannot run."""
    message = f"SSO peer tests need node and tests/peers/node_modules: {reason}"
    if os.environ.get("INTERCHANGE_REQUIRE_PEERS"):
        pytest.fail(f"{message} (INTERCHANGE_REQUIRE_PEERS is set)", pytrace=False)
    pytest.skip(message)


def soffice_binary() -> str:
    """LibreOffice's ``soffice``; skip without it, or fail when INTERCHANGE_REQUIRE_PEERS says it must be there."""
    binary = shutil.which("soffice")
    if binary is None:
        if os.environ.get("INTERCHANGE_REQUIRE_PEERS"):
            pytest.fail("soffice is missing and INTERCHANGE_REQUIRE_PEERS is set: install libreoffice-calc-nogui")
        pytest.skip("LibreOffice (soffice) is not installed: apt-get install -y libreoffice-calc-nogui")
    return binary


def require_node_peers(package: str | None = None) -> tuple[str, Path]:
    """Return (node executable, tests/peers/node_modules); skip or fail with a visible reason if either is absent.

    ``package`` (e.g. "saml-idp", "oidc-provider") additionally checks that this package is installed.
    """
    node = shutil.which("node")
    if node is None:
        peer_unavailable("node is not on PATH (apt-get install -y nodejs npm)")
    if not NODE_MODULES.is_dir():
        peer_unavailable("run `npm ci --prefix tests/peers` (make test does it when node is present)")
    if package is not None and not (NODE_MODULES / package / "package.json").is_file():
        peer_unavailable(f"{package} is not installed: run `npm ci --prefix tests/peers`")
    return node, NODE_MODULES


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_peer(args: Sequence[str], ready_url: str, *, cwd: Path | None = None, log: Path | None = None,
               env: dict[str, str] | None = None, timeout: float = 20.0) -> subprocess.Popen:
    """Start a peer process and wait until ``ready_url`` answers; stop it with ``stop_peer`` (by its PID).

    Output goes to ``log`` (or is discarded) so a chatty peer never blocks on a full pipe; on a failed start the
    log tail is in the failure message.
    """
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(list(args), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            requests.get(ready_url, timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.1)
    stop_peer(process)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    pytest.fail(f"peer {args[0]} did not answer at {ready_url} within {timeout}s:\n{tail}", pytrace=False)


def stop_peer(process: subprocess.Popen) -> None:
    """Stop a peer started by ``start_peer``: SIGTERM by PID, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
