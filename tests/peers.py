"""Peer programs the tests drive for real (PEERS.md), found or skipped in one way."""

from __future__ import annotations

import os
import shutil

import pytest


def soffice_binary() -> str:
    """LibreOffice's ``soffice``; skip without it, or fail when INTERCHANGE_REQUIRE_PEERS says it must be there."""
    binary = shutil.which("soffice")
    if binary is None:
        if os.environ.get("INTERCHANGE_REQUIRE_PEERS"):
            pytest.fail("soffice is missing and INTERCHANGE_REQUIRE_PEERS is set: install libreoffice-calc-nogui")
        pytest.skip("LibreOffice (soffice) is not installed: apt-get install -y libreoffice-calc-nogui")
    return binary
