"""The receiver run from the shell (``py-mdr sink``, ``python -m py_mdr.sink``)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from py_mdr.config import env_str
from py_mdr.sink.display import format_event
from py_mdr.sink.server import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_INFLIGHT_BYTES, HECSink
from py_mdr.sink.tls import make_self_signed_cert
from py_mdr.sink.wire import HARD_BODY_LIMIT, HEC_TEXT, ReceivedRequest


def run_sink_cli(
    port: int = 8088,
    token: str = "test-token",
    *,
    host: str = "127.0.0.1",
    use_ack: bool = False,
    tls: tuple[str, str] | None = None,
    client_ca: str | None = None,
    validate: bool = True,
    log_requests: bool = False,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
    max_body_bytes: int | None = None,
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> int:
    """Run a receiver in the foreground, printing each event, until Ctrl-C (or ``stop`` is set)."""
    stream = out if out is not None else sys.stdout
    print_lock = threading.Lock()
    stop = stop if stop is not None else threading.Event()

    def show(text: str) -> None:
        with print_lock:
            print(text, file=stream, flush=True)

    def on_event(index: int, envelope: dict[str, Any], problems: list[str]) -> None:
        show(format_event(index, envelope, problems))

    def on_request(request: ReceivedRequest) -> None:
        if request.status != 200:
            said = ""
            if request.hec_code is not None:
                said = f" code {request.hec_code} {HEC_TEXT.get(request.hec_code, '')}".rstrip()
            show(f"! {request.method} {request.path} -> {request.status or 'no answer'}{said}")

    sink = HECSink(
        token=token,
        host=host,
        port=port,
        use_ack=use_ack,
        tls=tls,
        client_ca=client_ca,
        validate=validate,
        max_body_bytes=max_body_bytes,
        max_inflight_bytes=max_inflight_bytes,
        max_connections=max_connections,
        max_events=10_000,  # it prints; it need not remember a long run
        log_requests=log_requests,
        on_event=on_event,
        on_request=on_request,
    )
    try:
        sink.start()
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    show(f"HEC receiver listening on {sink.url} (Ctrl-C to stop)")
    try:
        # timed: a signal the kernel hands to a server thread only runs its Python handler once
        # the main thread wakes up, and an untimed wait would never wake
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()
    show(f"stopped after {sink.event_count} events and {len(sink.problems)} problems")
    return 0


_MB = 1024 * 1024


def _count(value: str) -> int:
    """A positive whole number; argparse turns the error into a usage message."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m py_mdr.sink``: a local HEC receiver that prints what it gets."""
    parser = argparse.ArgumentParser(
        prog="py-mdr sink",
        description="Run a local HEC receiver and print every event it gets, with what OCSF "
        "or HEC would find wrong with it.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8088, help="port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(  # the default is described, never shown: it may be a real token
        "--token",
        default=None,
        help="the HEC token to accept (default: MDR_TOKEN if set, else test-token)",
    )
    parser.add_argument(
        "--ack", action="store_true", help="turn indexer acknowledgement on (default: off)"
    )
    parser.add_argument("--tls-cert", metavar="FILE", help="certificate (PEM) to serve HTTPS")
    parser.add_argument("--tls-key", metavar="FILE", help="private key (PEM) for --tls-cert")
    parser.add_argument(
        "--self-signed", metavar="DIR", help="make a self-signed certificate in DIR and serve HTTPS"
    )
    parser.add_argument(
        "--tls-client-ca",
        metavar="FILE",
        help="demand client certificates signed by these CAs (mutual TLS; needs HTTPS)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=_count,
        metavar="MIB",
        default=HARD_BODY_LIMIT // _MB,
        help="largest body, raw or decompressed, in MiB; larger ones get 413 "
        "(default: %(default)s, as Vector)",
    )
    parser.add_argument(
        "--max-inflight-mb",
        type=_count,
        metavar="MIB",
        default=DEFAULT_MAX_INFLIGHT_BYTES // _MB,
        help="request bodies held in memory at once, all connections together, in MiB; "
        "others wait their turn (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=_count,
        metavar="N",
        default=DEFAULT_MAX_CONNECTIONS,
        help="connections served at once; more get 503 code 9 (default: %(default)s)",
    )
    parser.add_argument(
        "--no-validate", action="store_true", help="skip OCSF validation (default: validate)"
    )
    parser.add_argument("--log-requests", action="store_true", help="log one line per request")
    args = parser.parse_args(argv)
    tls: tuple[str, str] | None = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            parser.error("--tls-cert and --tls-key go together")
        tls = (args.tls_cert, args.tls_key)
    elif args.self_signed:
        tls = make_self_signed_cert(args.self_signed)
        print(f"self-signed certificate (verify against it): {tls[0]}", flush=True)
    if args.tls_client_ca and tls is None:
        parser.error("--tls-client-ca needs HTTPS: add --tls-cert and --tls-key, or --self-signed")
    if args.log_requests:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        # our own handlers: Ctrl-C stops the receiver even where SIGINT was inherited as ignored
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, lambda signum, frame: stop.set())
    try:
        return run_sink_cli(
            args.port,
            args.token or env_str("MDR_TOKEN") or "test-token",
            host=args.host,
            use_ack=args.ack,
            tls=tls,
            client_ca=args.tls_client_ca,
            validate=not args.no_validate,
            max_body_bytes=args.max_body_mb * _MB,
            max_inflight_bytes=args.max_inflight_mb * _MB,
            max_connections=args.max_connections,
            log_requests=args.log_requests,
            stop=stop,
        )
    finally:
        for number, handler in previous.items():
            if handler is not None:
                signal.signal(number, handler)
