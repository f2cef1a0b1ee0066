"""Certificates for the local receiver: self-signed for HTTPS, or a small CA for mutual TLS."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple


def make_self_signed_cert(directory: str | os.PathLike[str], days: int = 30) -> tuple[str, str]:
    """Write a self-signed certificate for 127.0.0.1/localhost; returns (certfile, keyfile).

    Clients verify against the certificate file itself (``verify=certfile``).
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make a test certificate")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "hec-sink-cert.pem", folder / "hec-sink-key.pem"
    command = [
        openssl, "req", "-x509", "-nodes", "-days", str(days),
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"openssl could not make a certificate: {detail}")
    key.chmod(0o600)
    return str(cert), str(key)


class MutualTLS(NamedTuple):
    """Files for a receiver that demands client certificates, and for a client it accepts."""

    ca: str  # verifies both sides: the client's --ca-bundle, the receiver's client_ca
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def make_mutual_tls(directory: str | os.PathLike[str], days: int = 30) -> MutualTLS:
    """A throwaway CA with a server certificate for 127.0.0.1/localhost and a client
    certificate, both signed by it: enough to try mutual TLS against the local receiver."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    _openssl(
        "req", "-x509", "-nodes", "-days", str(days), *_EC_KEY, "-keyout", str(ca_key),
        "-out", str(ca), "-subj", "/CN=py-mdr test CA",
    )  # fmt: skip
    paths = [str(ca)]
    for role, extension in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        cert, key, request = (folder / f"{role}{end}" for end in (".pem", "-key.pem", ".csr"))
        _openssl(
            "req", "-new", "-nodes", *_EC_KEY, "-keyout", str(key), "-out", str(request),
            "-subj", f"/CN=py-mdr test {role}",
        )  # fmt: skip
        extensions = folder / f"{role}.ext"
        extensions.write_text(extension + "\n", encoding="ascii")
        _openssl(
            "x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", str(days), "-out", str(cert),
            "-extfile", str(extensions),
        )  # fmt: skip
        key.chmod(0o600)
        paths += [str(cert), str(key)]
    return MutualTLS(*paths)


_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


def _openssl(*arguments: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make a test certificate")
    done = subprocess.run([openssl, *arguments], capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"openssl could not make a certificate: {detail}")
