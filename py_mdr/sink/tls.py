"""A self-signed certificate, so tests and the command line can serve HTTPS."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


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
