"""Where the command's connection settings come from: the option, then the environment, then
the library's default (``py_mdr.config`` resolves the last two), in this one place."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from py_mdr.cli.options import UsageError, warn

if TYPE_CHECKING:
    from py_mdr.delivery.spool import Spool
    from py_mdr.hec.config import HECConfig


def token(args: argparse.Namespace) -> str:
    """The HEC token from --token, --token-file or MDR_TOKEN; a missing one is a usage error."""
    from py_mdr.config import env_str

    if args.token:
        warn(
            "the token given with --token is visible to other users in the process list; "
            "prefer MDR_TOKEN or --token-file"
        )
        return str(args.token)
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as handle:
                found = handle.read(64 * 1024).strip()
        except OSError as exc:
            raise UsageError(
                f"cannot read the token file {args.token_file!r}: {exc.strerror or exc}"
            ) from None
        if not found:
            raise UsageError(f"the token file {args.token_file!r} is empty")
        return found
    from_env = env_str("MDR_TOKEN")
    if not from_env:
        raise UsageError(
            "no HEC token: set the environment variable MDR_TOKEN, or pass --token-file FILE"
        )
    return from_env


def hec_settings(args: argparse.Namespace, default_timeout: float | None = None) -> HECConfig:
    """The transport's configuration from the connection options; bad values are usage errors."""
    from py_mdr.config import ConfigError, env_str, hec_config

    if not (args.host and args.host.strip()) and not env_str("MDR_HOST"):
        raise UsageError(
            "no HEC endpoint: pass --host HOST[:PORT] or set the environment variable MDR_HOST"
        )
    cert, key = client_files(args)
    secret = token(args)
    timeout = args.timeout
    if timeout is None and default_timeout is not None and not env_str("MDR_TIMEOUT"):
        timeout = default_timeout
    try:
        return hec_config(
            args.host,
            secret,
            False if args.no_verify else None,
            index=args.index,
            ca_bundle=args.ca_bundle,
            client_cert=cert,
            client_key=key,
            timeout=timeout,
        )
    except (ConfigError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def client_files(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """--client-cert and --client-key, checked here so that a mistake names the option.

    None leaves the choice to MDR_CLIENT_CERT / MDR_CLIENT_KEY, which the library checks.
    """
    from py_mdr.config import env_str

    cert, key = args.client_cert, args.client_key
    if key is not None and cert is None and env_str("MDR_CLIENT_CERT") is None:
        raise UsageError(
            "--client-key needs its certificate: add --client-cert FILE (or set MDR_CLIENT_CERT)"
        )
    wanted = (
        ("--client-cert", cert, "the certificate's PEM file (it may hold the key too)"),
        ("--client-key", key, "the private key's PEM file"),
    )
    for option, path, what in wanted:
        if path is not None and not (os.path.isfile(path) and os.access(path, os.R_OK)):
            raise UsageError(f"{option} {path!r} is not a readable file: give {what}")
    return cert, key


def spool(directory: str | None) -> Spool | None:
    """The disk spool of `send --spool` / MDR_SPOOL_DIR, if any; a bad one is a usage error."""
    from py_mdr.config import ConfigError, resolve_spool
    from py_mdr.delivery.spool import DEFAULT_MAX_SPOOL_BYTES, Spool

    try:
        path, bound = resolve_spool(directory, None)
        return Spool(path, max_bytes=bound or DEFAULT_MAX_SPOOL_BYTES) if path else None
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
