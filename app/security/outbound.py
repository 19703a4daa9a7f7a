"""Outbound HTTP safety (DESIGN §7): no requests to private, loopback, link-local or metadata addresses.

Every call we make to an address an admin typed (IdP metadata, an OpenID provider's endpoints, later
webhooks and connectors) asks here first. The operator setting ``OUTBOUND_ALLOW_PRIVATE`` (and the
development and test environments) lifts the rule for peers that run on the same machine.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from flask import current_app


def host_allowed(host: str) -> bool:
    """False when ``host`` resolves to any private, loopback, link-local, reserved or multicast address."""
    if current_app.config.get("OUTBOUND_ALLOW_PRIVATE") or current_app.config.get("INTERCHANGE_ENV") in {
        "development", "test"
    }:
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return True  # let the HTTP client report the resolution error
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved \
                or address.is_multicast or address.is_unspecified:
            return False
    return True


def url_allowed(url: str) -> bool:
    """An http(s) URL whose host passes :func:`host_allowed`."""
    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and bool(parts.hostname) and host_allowed(parts.hostname or "")
