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
from py_mdr.sink.server import HECSink
from py_mdr.sink.tls import make_self_signed_cert
from py_mdr.sink.wire import HEC_TEXT, ReceivedRequest


def run_sink_cli(
    port: int = 8088,
    token: str = "test-token",
    *,
    host: str = "127.0.0.1",
    use_ack: bool = False,
    tls: tuple[str, str] | None = None,
    validate: bool = True,
    log_requests: bool = False,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
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
        validate=validate,
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m py_mdr.sink``: a local HEC receiver that prints what it gets."""
    parser = argparse.ArgumentParser(
        prog="py-mdr sink", description="Run a local HEC receiver and print every event it gets."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8088, help="0 picks a free port")
    parser.add_argument(
        "--token",
        default=env_str("MDR_TOKEN") or "test-token",
        help="the HEC token to accept (default: $MDR_TOKEN, else test-token)",
    )
    parser.add_argument("--ack", action="store_true", help="turn indexer acknowledgement on")
    parser.add_argument("--tls-cert", help="certificate file (PEM) to serve HTTPS")
    parser.add_argument("--tls-key", help="private key file (PEM) for --tls-cert")
    parser.add_argument(
        "--self-signed", metavar="DIR", help="make a self-signed certificate in DIR and serve HTTPS"
    )
    parser.add_argument("--no-validate", action="store_true", help="skip OCSF validation")
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
            args.token,
            host=args.host,
            use_ack=args.ack,
            tls=tls,
            validate=not args.no_validate,
            log_requests=args.log_requests,
            stop=stop,
        )
    finally:
        for number, handler in previous.items():
            if handler is not None:
                signal.signal(number, handler)
