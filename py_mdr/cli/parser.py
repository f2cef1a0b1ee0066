"""The ``py-mdr`` argument parser: every subcommand's options and help, nothing that runs.

Each subcommand is the module of the same name in this package, imported only once its
arguments are parsed, so ``py-mdr --help`` stays quick.
"""

from __future__ import annotations

import argparse

from py_mdr import OCSF_VERSION, __version__
from py_mdr.cli.options import seconds, severity, source_name

_DESCRIPTION = f"Send OCSF {OCSF_VERSION} events to MDR over HEC, and check them first."
_EPILOG = """environment: MDR_HOST, MDR_TOKEN, MDR_INDEX, MDR_SSL_VERIFY, MDR_CA_BUNDLE,
MDR_CLIENT_CERT, MDR_CLIENT_KEY, MDR_TIMEOUT, MDR_VENDOR_NAME, MDR_SPOOL_DIR (an option given
on the command line wins over its variable).
exit codes: 0 all good, 1 something was not sent / not valid / not reachable, 2 usage or
configuration error."""


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    """The options of every subcommand that talks to MDR.

    Added to each subparser rather than shared through ``parents=``: argparse drops the
    argument group of a mutually exclusive group copied from a parent, so ``--help`` would
    list ``--no-verify`` and ``--ca-bundle`` outside the connection options.
    """
    group = parser.add_argument_group("connection (the environment variable in brackets)")
    group.add_argument(
        "--host", help="HEC endpoint as host[:port] or URL; no scheme means https:// [MDR_HOST]"
    )
    token = group.add_mutually_exclusive_group()
    token.add_argument(
        "--token-file",
        metavar="FILE",
        help="read the HEC token from FILE [MDR_TOKEN holds the token itself]",
    )
    token.add_argument(
        "--token",
        help="the HEC token (visible to other users in the process "
        "list: prefer MDR_TOKEN or --token-file)",
    )
    group.add_argument("--index", help="index to write to [MDR_INDEX]")
    verify = group.add_mutually_exclusive_group()
    verify.add_argument(
        "--no-verify",
        action="store_true",
        help="do not verify the server's TLS certificate (testing only) [MDR_SSL_VERIFY=false]",
    )
    verify.add_argument(
        "--ca-bundle",
        metavar="FILE",
        help="CA certificates to verify the server with [MDR_CA_BUNDLE]",
    )
    group.add_argument(
        "--client-cert",
        metavar="FILE",
        help="client certificate (PEM) for a server that demands one (mutual TLS); the file "
        "may hold the key too [MDR_CLIENT_CERT]",
    )
    group.add_argument(
        "--client-key",
        metavar="FILE",
        help="private key (PEM) of --client-cert, when it is a file of its own [MDR_CLIENT_KEY]",
    )
    group.add_argument(
        "--timeout",
        type=seconds,
        metavar="SECONDS",
        help="longest one send may take, retries included; for check, the whole check "
        "[MDR_TIMEOUT; 60 for send, 10 for check]",
    )
    group.add_argument(
        "--name",
        type=source_name,
        default="cli",
        help="HEC source; the sourcetype is pymdr::NAME (default: cli)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; ``args.command`` names the module that runs it."""
    parser = argparse.ArgumentParser(
        prog="py-mdr",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"py-mdr {__version__} (OCSF {OCSF_VERSION})"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what the HEC transport does (to stderr)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    send = commands.add_parser(
        "send",
        help="send events (JSON) or log lines (--text)",
        description="Send OCSF events from JSON Lines, JSON arrays or JSON objects (files or "
        "standard input), or plain text lines with --text. Sending starts before the input "
        "ends; a one-line summary goes to stderr. Exit 0 when everything was sent.",
    )
    _add_connection_options(send)
    send.add_argument(
        "files", nargs="*", metavar="FILE", help="input files; - or none means standard input"
    )
    send.add_argument(
        "--strict",
        action="store_true",
        help="refuse events that the OCSF "
        "schema rejects (see `py-mdr validate`) instead of sending them",
    )
    send.add_argument(
        "--text",
        action="store_true",
        help="each input line is a log message: sent as an OCSF Event Log Activity",
    )
    send.add_argument(
        "--severity",
        type=severity,
        default=(1, "Informational"),
        help="severity of --text lines: an OCSF name (informational, low, "
        "medium, high, critical, fatal), a level word (debug, info, warning, "
        "error) or an OCSF severity_id (default: informational)",
    )
    send.add_argument(
        "--vendor",
        help="vendor name of the product in --text events "
        "[MDR_VENDOR_NAME; default: unknown]; the product name is --name",
    )
    send.add_argument(
        "--spool",
        metavar="DIR",
        help="write events to this directory before sending them; what MDR does not take "
        "stays there, and the next `py-mdr send --spool DIR` sends it first [MDR_SPOOL_DIR]",
    )
    send.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: write each envelope that would be sent to standard output and "
        "report every problem (what `validate` finds included); exit 1 when there is any",
    )
    send.add_argument(
        "-q", "--quiet", action="store_true", help="no summary line when everything was sent"
    )

    validate = commands.add_parser(
        "validate",
        help="report every OCSF schema problem, by line and attribute",
        description="Check OCSF events (JSON Lines, JSON arrays or objects) against the OCSF "
        f"{OCSF_VERSION} schema as `py-mdr send` would send them (derived values filled). "
        "Exit 1 when any event has a problem.",
    )
    validate.add_argument(
        "files", nargs="*", metavar="FILE", help="input files; - or none means standard input"
    )
    validate.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: one JSON object per problem (JSON Lines)",
    )

    check = commands.add_parser(
        "check",
        help="test the connection and say what is wrong",
        description="Reach the HEC endpoint step by step (DNS, connection, TLS and health, "
        "token) and say in plain words what is wrong. The token is tested with an empty "
        "request, which stores nothing.",
    )
    _add_connection_options(check)
    check.add_argument(
        "--send-test", action="store_true", help="also send one test event (an Event Log Activity)"
    )

    commands.add_parser(  # listed here; main() hands its arguments to py_mdr.sink's parser
        "sink",
        add_help=False,
        help="run a local HEC receiver that prints what it gets "
        "(`py-mdr sink --help` for its options)",
    )

    schema = commands.add_parser(
        "schema",
        help=f"list the OCSF {OCSF_VERSION} classes or objects, or one's attributes",
        description="Without CLASS: every OCSF event class (with --objects: every object). "
        "With CLASS (a name such as event_log, a class_uid such as 1008, or an object name "
        "such as product): its attributes, requirement, type, enum values and profile.",
    )
    schema.add_argument("name", nargs="?", metavar="CLASS", help="class name or uid, or object")
    schema.add_argument(
        "--objects", action="store_true", help="list the objects (the types of nested attributes)"
    )
    schema.add_argument("--format", choices=("text", "json"), default="text")

    return parser
