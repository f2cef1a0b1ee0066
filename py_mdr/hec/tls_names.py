"""The names a server's certificate is issued for, so a host-name mismatch can name both sides.

A failed handshake does not hand the certificate over. After a mismatch (and only then) one
more handshake is made with the same trust anchors and the name check off: the certificate is
still verified, so the names it reports are the ones the server really presents.
"""

from __future__ import annotations

import socket
import ssl
from typing import cast
from urllib.parse import urlsplit

__all__ = ["certificate_names"]


def _trust(verify: bool | str) -> ssl.SSLContext:
    if isinstance(verify, str):
        context = ssl.create_default_context(cafile=verify)
    else:
        import certifi  # what requests verifies with when given ssl_verify=True

        context = ssl.create_default_context(cafile=certifi.where())
    context.check_hostname = False
    return context


def certificate_names(url: str, verify: bool | str, timeout: float) -> list[str] | None:
    """DNS names and IP addresses of the certificate at ``url``; None when it cannot be read.

    Bounded by ``timeout`` (connect and handshake); never raises.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if not host or timeout <= 0:
        return None
    try:
        port = parts.port or 443
        context = _trust(verify)
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            cert = tls.getpeercert()
    except (OSError, ValueError):
        return None
    if not isinstance(cert, dict):
        return None
    alt_names = cast("tuple[tuple[str, str], ...]", cert.get("subjectAltName", ()))
    names = [value for kind, value in alt_names if kind in ("DNS", "IP Address")]
    if not names:  # an old certificate with only a common name
        subject = cast("tuple[tuple[tuple[str, str], ...], ...]", cert.get("subject", ()))
        names = [value for entry in subject for key, value in entry if key == "commonName"]
    return names
