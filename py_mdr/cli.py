"""The ``py-mdr`` command: send, validate and inspect OCSF events from any language or shell.

Exit codes: 0 all good, 1 something was not sent / not valid / not reachable, 2 a usage or
configuration error (nothing was attempted). Heavy modules load inside the subcommand that
needs them, so ``py-mdr --help`` stays quick.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from py_mdr import OCSF_VERSION, __version__

if TYPE_CHECKING:
    from py_mdr.delivery.spool import Spool
    from py_mdr.hec.config import HECConfig
    from py_mdr.hec.transport import HECTransport

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: Log level words --severity takes besides OCSF names; py_mdr.severity maps them.
_LEVEL_WORDS = ("trace", "debug", "info", "notice", "warn", "warning", "error")
_DESCRIPTION = f"Send OCSF {OCSF_VERSION} events to MDR over HEC, and check them first."
_EPILOG = """environment: MDR_HOST, MDR_TOKEN, MDR_INDEX, MDR_SSL_VERIFY, MDR_CA_BUNDLE,
MDR_TIMEOUT, MDR_VENDOR_NAME (an option given on the command line wins over its variable).
exit codes: 0 all good, 1 something was not sent / not valid / not reachable, 2 usage or
configuration error."""


class UsageError(Exception):
    """A configuration or usage problem: exit code 2, one line on stderr."""


# --- argument types ------------------------------------------------------------------------


def severity(value: str) -> tuple[int, str]:
    """``--severity``: an OCSF severity name or id, or a log level word (the library's table)."""
    from py_mdr.ocsf_models.enums import SeverityId
    from py_mdr.severity import UNKNOWN, from_otel_text

    captions: dict[int, str] = SeverityId.__captions__
    text = value.strip().lower()
    for severity_id, caption in captions.items():
        if text == caption.lower() or (text.isdigit() and int(text) == severity_id):
            return severity_id, caption
    found = from_otel_text(text)
    if found != UNKNOWN:
        return found
    names = ", ".join(caption.lower() for caption in captions.values())
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a severity: use an OCSF name ({names}), a level word "
        f"({', '.join(_LEVEL_WORDS)}) or an OCSF severity_id ({', '.join(map(str, captions))})"
    )


def seconds(value: str) -> float:
    """``--timeout``: a positive number; argparse turns the error into a usage message."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number < 1e6:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return number


def source_name(value: str) -> str:
    """``--name``: it becomes the HEC source and part of the sourcetype, so keep it plain."""
    if not _NAME.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r}: use 1 to 100 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit"
        )
    return value


# --- the parser ----------------------------------------------------------------------------


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
        "-q", "--quiet", action="store_true", help="no summary line when everything was sent"
    )
    send.set_defaults(run=cmd_send)

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
    validate.set_defaults(run=cmd_validate)

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
    check.set_defaults(run=cmd_check)

    commands.add_parser(  # listed here; main() hands its arguments to py_mdr.sink's parser
        "sink",
        add_help=False,
        help="run a local HEC receiver that prints what it gets "
        "(`py-mdr sink --help` for its options)",
    )

    schema = commands.add_parser(
        "schema",
        help=f"list the OCSF {OCSF_VERSION} classes, or one class's attributes",
        description="Without CLASS: every OCSF event class. With CLASS (a name such as "
        "event_log, a class_uid such as 1008, or an object name such as product): its "
        "attributes, requirement, type, enum values and profile.",
    )
    schema.add_argument("name", nargs="?", metavar="CLASS", help="class name or uid, or object")
    schema.add_argument("--format", choices=("text", "json"), default="text")
    schema.set_defaults(run=cmd_schema)
    return parser


# --- configuration -------------------------------------------------------------------------


def _token(args: argparse.Namespace) -> str:
    from py_mdr.config import env_str

    if args.token:
        _warn(
            "the token given with --token is visible to other users in the process list; "
            "prefer MDR_TOKEN or --token-file"
        )
        return str(args.token)
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as handle:
                token = handle.read(64 * 1024).strip()
        except OSError as exc:
            raise UsageError(
                f"cannot read the token file {args.token_file!r}: {exc.strerror or exc}"
            ) from None
        if not token:
            raise UsageError(f"the token file {args.token_file!r} is empty")
        return token
    from_env = env_str("MDR_TOKEN")
    if not from_env:
        raise UsageError(
            "no HEC token: set the environment variable MDR_TOKEN, or pass --token-file FILE"
        )
    return from_env


def _config(args: argparse.Namespace, default_timeout: float | None = None) -> HECConfig:
    from py_mdr.config import ConfigError, env_str, hec_config

    if not (args.host and args.host.strip()) and not env_str("MDR_HOST"):
        raise UsageError(
            "no HEC endpoint: pass --host HOST[:PORT] or set the environment variable MDR_HOST"
        )
    token = _token(args)
    timeout = args.timeout
    if timeout is None and default_timeout is not None and not env_str("MDR_TIMEOUT"):
        timeout = default_timeout
    try:
        return hec_config(
            args.host,
            token,
            False if args.no_verify else None,
            index=args.index,
            ca_bundle=args.ca_bundle,
            timeout=timeout,
        )
    except (ConfigError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _hint_terminal(command: str, files: Sequence[str]) -> None:
    """Someone typing `py-mdr send` alone would otherwise see it simply wait."""
    reads_stdin = not files or "-" in files
    if reads_stdin and sys.stdin is not None and sys.stdin.isatty():
        print(f"py-mdr {command}: reading from the terminal; end with Ctrl-D", file=sys.stderr)


def _warn(text: str) -> None:
    print(f"py-mdr: warning: {text}", file=sys.stderr)


# --- subcommands ---------------------------------------------------------------------------


def cmd_send(args: argparse.Namespace) -> int:
    from py_mdr.cli_input import read_items
    from py_mdr.cli_send import SendSettings, send_items
    from py_mdr.eventlog import default_product, host_name
    from py_mdr.hec.transport import HECTransport

    config = _config(args)
    settings = SendSettings(
        name=args.name,
        host=host_name(),
        index=config.index,
        max_event_bytes=config.max_event_bytes,
        strict=args.strict,
        text=args.text,
        severity=args.severity,
        product=default_product({"name": args.name, "vendor_name": args.vendor}),
    )
    spool = _spool(args.spool)
    _hint_terminal("send", args.files)
    transport = HECTransport(config)
    try:
        tally = send_items(
            read_items(args.files, text=args.text),
            transport,
            settings,
            stream=sys.stderr,
            progress=sys.stderr.isatty() and not args.quiet,
            spool=spool,
        )
    finally:
        transport.close()
        if spool is not None:
            spool.close()
    if tally.stopped:
        print(
            f"py-mdr send: stopped before the end of the input: {tally.stopped} "
            "(`py-mdr check` tells what is wrong with the connection)",
            file=sys.stderr,
        )
    if tally.interrupted:
        print("py-mdr send: interrupted", file=sys.stderr)
    if not (args.quiet and tally.all_sent):
        print(f"py-mdr send: {tally.summary()}", file=sys.stderr)
    return 0 if tally.all_sent else 130 if tally.interrupted else 1


def _spool(directory: str | None) -> Spool | None:
    """The disk spool of `send --spool` / MDR_SPOOL_DIR, if any; a bad one is a usage error."""
    from py_mdr.config import ConfigError, resolve_spool
    from py_mdr.delivery.spool import DEFAULT_MAX_SPOOL_BYTES, Spool

    try:
        path, bound = resolve_spool(directory, None)
        return Spool(path, max_bytes=bound or DEFAULT_MAX_SPOOL_BYTES) if path else None
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def cmd_validate(args: argparse.Namespace) -> int:
    from py_mdr.cli_validate import run_validate

    _hint_terminal("validate", args.files)
    return run_validate(args.files, as_json=args.format == "json", out=sys.stdout, err=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    from py_mdr.cli_check import CheckFailed, explain_send_error, run_check
    from py_mdr.cli_input import STDIN, Item
    from py_mdr.cli_send import SendSettings, prepare
    from py_mdr.eventlog import default_product, host_name

    config = _config(args, default_timeout=10.0)
    timeout = config.retry.deadline

    def send_test(transport: HECTransport, deadline: float) -> None:
        settings = SendSettings(
            name=args.name,
            host=host_name(),
            index=config.index,
            max_event_bytes=config.max_event_bytes,
            text=True,
            product=default_product({"name": args.name}),
        )
        envelope = prepare(Item(STDIN, 1, "py-mdr check: test event"), settings)
        assert isinstance(envelope, bytes)
        report = transport.send([envelope], deadline=deadline)
        if not report.ok:
            raise CheckFailed("test event", explain_send_error(report.error, config))

    return run_check(
        config, out=sys.stdout, timeout=timeout, send_test=send_test if args.send_test else None
    )


def cmd_schema(args: argparse.Namespace) -> int:
    from py_mdr.cli_schema import UnknownName, describe, find, list_classes

    as_json = args.format == "json"
    if args.name is None:
        list_classes(sys.stdout, as_json)
        return 0
    try:
        spec = find(args.name)
    except UnknownName as exc:
        raise UsageError(str(exc)) from None
    describe(spec, sys.stdout, as_json)
    return 0


def cmd_sink(argv: Sequence[str]) -> int:
    from py_mdr.sink import main as sink_main

    return sink_main(argv)


# --- entry point ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``py-mdr``; returns the exit code (the console script exits with it)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbose = 0
    while verbose < len(arguments) and arguments[verbose] in ("-v", "--verbose"):
        verbose += 1
    if arguments[verbose : verbose + 1] == ["sink"]:
        if verbose:  # otherwise the receiver's own --log-requests decides
            _logging(True)
        return _guarded(lambda: cmd_sink(arguments[verbose + 1 :]))
    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _logging(args.verbose)
    return _guarded(lambda: int(args.run(args)))


def _logging(verbose: bool) -> None:
    library = logging.getLogger("py_mdr")
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("py-mdr: %(levelname)s %(name)s: %(message)s"))
        library.addHandler(handler)
        library.setLevel(logging.DEBUG)
    else:  # the command prints its own messages; keep the library's out of the way
        library.addHandler(logging.NullHandler())
        library.propagate = False


def _guarded(run: Callable[[], int]) -> int:
    try:
        return int(run())
    except UsageError as exc:
        print(f"py-mdr: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("py-mdr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
