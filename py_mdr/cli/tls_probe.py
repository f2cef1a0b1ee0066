"""What ``py-mdr check`` learns from its own TLS handshakes when the transport's failed: why a
certificate is not trusted, and whether the server wants (or refused) a client certificate.

The transport reports only that a handshake failed; these probes repeat it with the same
settings and read what the TLS library and the server's alert say.
"""

from __future__ import annotations

import socket
import ssl
import time

import requests.utils

from py_mdr.hec.config import HECConfig

#: Alerts a server sends when it wants a client certificate it did not get (TLS 1.3 names it;
#: before 1.3 a server could only say "handshake failure").
_CERT_WANTED = ("CERTIFICATE_REQUIRED",)
_CERT_REFUSED = ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_EXPIRED", "CERTIFICATE_REVOKED",
                 "UNSUPPORTED_CERTIFICATE", "ACCESS_DENIED")  # fmt: skip
_ALERT_WAIT = 2.0  # seconds to wait for the alert after the client's side of the handshake
_CERT_FIX = (
    "give it with --client-cert FILE (and --client-key FILE) or MDR_CLIENT_CERT / MDR_CLIENT_KEY"
)


def client_cert_problem(alert: str, config: HECConfig) -> str:
    """Plain words for a TLS alert about the client certificate, or "" for any other alert."""
    upper = alert.upper()
    if any(word in upper for word in _CERT_WANTED) or (
        config.cert is None and "HANDSHAKE_FAILURE" in upper
    ):
        if config.cert is None:
            return (
                f"the server demands a client certificate (mutual TLS; it answered {alert}): "
                f"{_CERT_FIX}"
            )
        return (
            f"the server still asks for a client certificate ({alert}) although one was "
            "given: check that --client-cert / MDR_CLIENT_CERT holds the certificate and its key"
        )
    if config.cert is not None and any(word in upper for word in _CERT_REFUSED):
        return (
            f"the server refused the client certificate ({alert}): check that --client-cert / "
            "MDR_CLIENT_CERT is the one issued for this endpoint, signed by a CA it trusts, "
            "and not expired"
        )
    return ""


def tls_alert(host: str, port: int, config: HECConfig, timeout: float) -> str:
    """The TLS alert the server ends a connection with (e.g. "TLSV13_ALERT_CERTIFICATE_REQUIRED"),
    or "": a handshake made as the transport makes it, then a read, since under TLS 1.3 the
    server says what it misses only after the client's side of the handshake is done."""
    try:
        if config.verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            cafile = config.verify if isinstance(config.verify, str) else None
            context = ssl.create_default_context(cafile=cafile)
        if config.cert is not None:
            cert, key = config.cert if isinstance(config.cert, tuple) else (config.cert, None)
            context.load_cert_chain(cert, key)
        deadline = time.monotonic() + timeout
        with socket.create_connection((host, port), timeout=timeout) as raw:
            raw.settimeout(max(0.1, deadline - time.monotonic()))
            with context.wrap_socket(raw, server_hostname=host) as tls:
                # nothing is sent: data arriving after the server gave up would make it answer
                # with a reset, which can overtake the alert; a server content with the client
                # says nothing, so the wait is short
                tls.settimeout(max(0.1, min(_ALERT_WAIT, deadline - time.monotonic())))
                tls.recv(1)
    except ssl.SSLCertVerificationError:
        return ""
    except ssl.SSLError as exc:
        return str(exc.reason or "")
    except (OSError, ValueError):
        return ""
    return ""


def tls_verify_detail(host: str, port: int, verify: bool | str, timeout: float) -> str:
    """Why certificate verification fails (e.g. "self-signed certificate"), or ""."""
    if verify is False:
        return ""
    # what requests verifies against unless given a bundle
    cafile = verify if isinstance(verify, str) else requests.utils.DEFAULT_CA_BUNDLE_PATH
    try:
        context = ssl.create_default_context(cafile=cafile)
        deadline = time.monotonic() + timeout
        with socket.create_connection((host, port), timeout=timeout) as raw:
            raw.settimeout(max(0.1, deadline - time.monotonic()))
            with context.wrap_socket(raw, server_hostname=host):
                return ""
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message or exc.reason or "")
    except (OSError, ssl.SSLError, ValueError):
        return ""
