"""``py-mdr send``: input items become OCSF events, then HEC envelopes, sent in bounded batches.

A reader thread parses and prepares while the main thread sends, through a bounded hand-off,
so sending starts before the input ends and memory stays flat whatever the input size. A batch
goes out when it is full (events or bytes), or when a second passed without filling one, which
keeps ``tail -f app.log | py-mdr send --text`` timely.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TextIO

from py_mdr.cli.connection import hec_settings
from py_mdr.cli.connection import spool as open_spool
from py_mdr.cli.handoff import Handoff, produce
from py_mdr.cli.input import Item, read_items
from py_mdr.cli.options import UsageError, hint_terminal
from py_mdr.cli.prepare import Noted, Rejected, SendSettings
from py_mdr.cli.summary import PROGRESS_EVERY, Console, Tally
from py_mdr.delivery.spool import Spool
from py_mdr.hec.codes import resendable
from py_mdr.hec.reports import SendReport
from py_mdr.hec.transport import HECTransport
from py_mdr.serialize import safe_str

#: Drop reasons after which sending more is pointless: the endpoint refuses us or is gone.
STOP_REASONS = frozenset({"auth", "index", "deadline", "tls", "closed", "request_error"})
_SHOWN_PLACES = 10  # places listed in the summary line


def send_items(
    items: Iterator[Item],
    transport: HECTransport,
    settings: SendSettings,
    *,
    stream: TextIO,
    progress: bool = False,
    spool: Spool | None = None,
) -> Tally:
    """Prepare and send every item; what happened comes back as a :class:`Tally`.

    With a ``spool``, each batch is written there first and removed once MDR took it; when
    MDR cannot be reached (or refuses us), the rest of the input still goes to the spool, and
    the next run with it sends it first.
    """
    tally = Tally()
    console = Console(stream, progress)
    flush: Flush = _flush
    if spool is not None:
        flush = _spooled_flush(spool, settings)
        tally.spool_dir = spool.directory
        found = spool.adopt()
        if found:
            console.say(f"sending {found} event(s) left in the spool {spool.directory} first")
            flush([], transport, tally, console)
    handoff = Handoff(settings.batch_events, settings.batch_bytes)
    reader = threading.Thread(
        target=produce, args=(items, settings, handoff), name="py-mdr-read", daemon=True
    )
    reader.start()
    wait = min(settings.flush_interval, PROGRESS_EVERY) if progress else settings.flush_interval
    batch: list[bytes] = []
    in_flight: list[bytes] = []  # handed to flush, its outcome not counted yet
    size = 0
    try:
        done = False
        while not done and tally.stopped is None:
            things, done = handoff.take(wait)
            for thing in things:
                if isinstance(thing, Rejected):
                    tally.rejected += 1
                    if len(tally.places) < _SHOWN_PLACES:
                        tally.places.append(thing.where)
                    console.reject(thing)
                    continue
                if isinstance(thing, Noted):
                    tally.coerced += thing.coerced
                    tally.odd_times += bool(thing.warnings)
                    console.note(thing)
                    thing = thing.envelope
                batch.append(thing)
                size += len(thing)
                if len(batch) >= settings.batch_events or size >= settings.batch_bytes:
                    in_flight, batch, size = batch, [], 0
                    flush(in_flight, transport, tally, console)
                    in_flight = []
                    if tally.stopped is not None:
                        break
            # a short take means the input is slow (or over): send what there is now
            if batch and tally.stopped is None and (done or len(things) < settings.batch_events):
                in_flight, batch, size = batch, [], 0
                flush(in_flight, transport, tally, console)
                in_flight = []
            console.tick(tally)
    except KeyboardInterrupt:
        tally.interrupted = True
        if batch:  # read, never sent
            tally.dropped["interrupted"] = tally.dropped.get("interrupted", 0) + len(batch)
        if spool is None:  # (with a spool, the batch is on disk before it is sent: kept)
            tally.unconfirmed = len(in_flight)
    finally:
        handoff.stop()
        console.finish()
    # a reader still blocked on open input (a stopped or interrupted run) is a daemon thread:
    # it ends with the process
    reader.join(0.2)
    if spool is not None:
        tally.kept = sum(spool.pending())
        if tally.paused and tally.stopped is None:
            tally.stopped = tally.paused
    return tally


Flush = Callable[[list[bytes], HECTransport, Tally, "Console"], None]


def _spooled_flush(spool: Spool, settings: SendSettings) -> Flush:
    """Write ``batch`` to the spool, then send from the spool, oldest first."""

    def flush(batch: list[bytes], transport: HECTransport, tally: Tally, console: Console) -> None:
        try:
            spool.append(batch)
        except OSError as refused:
            console.say(f"the spool {spool.directory} cannot be written ({refused}); sending as is")
            _flush(batch, transport, tally, console)
            return
        while tally.paused is None:
            taken = spool.next_batch(settings.batch_events, settings.batch_bytes)
            if taken is None:
                return
            report = transport.send(taken.envelopes)
            tally.sent += report.delivered
            for reason, count in report.dropped.items():
                if not resendable(reason):
                    tally.dropped[reason] = tally.dropped.get(reason, 0) + count
            if not report.undelivered:
                spool.commit(taken)
                continue
            # on OSError it was released whole: sent again (part perhaps twice) next time
            with contextlib.suppress(OSError):
                spool.requeue(taken, report.undelivered)
            why = safe_str(report.error) if report.error is not None else "no detail"
            console.say(
                f"MDR did not take {len(report.undelivered)} event(s): {why}; they stay in "
                f"the spool {spool.directory}, and so does the rest of the input"
            )
            tally.paused = why

    return flush


def _flush(batch: list[bytes], transport: HECTransport, tally: Tally, console: Console) -> None:
    report: SendReport = transport.send(batch)
    tally.sent += report.delivered
    for reason, count in report.dropped.items():
        tally.dropped[reason] = tally.dropped.get(reason, 0) + count
    if report.dropped:
        error = safe_str(report.error) if report.error is not None else "no detail"
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(report.dropped.items()))
        console.say(f"MDR did not take {report.dropped_total} event(s) ({reasons}): {error}")
        if STOP_REASONS.intersection(report.dropped):
            tally.stopped = error


def run(args: argparse.Namespace) -> int:
    """``py-mdr send``: 0 when everything was sent, 130 when interrupted, else 1."""
    if args.dry_run:
        return _dry_run(args)
    config = hec_settings(args)
    settings = _settings(args, config.index, config.max_event_bytes)
    spool = open_spool(args.spool)
    hint_terminal("send", args.files)
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


def _settings(args: argparse.Namespace, index: str | None, max_event_bytes: int) -> SendSettings:
    from py_mdr.eventlog import default_product, host_name

    return SendSettings(
        name=args.name,
        host=host_name(),
        index=index,
        max_event_bytes=max_event_bytes,
        strict=args.strict,
        text=args.text,
        severity=args.severity,
        product=default_product({"name": args.name, "vendor_name": args.vendor}),
    )


def _dry_run(args: argparse.Namespace) -> int:
    """No endpoint or token is needed: nothing leaves the machine."""
    from py_mdr.cli.dry_run import dry_run
    from py_mdr.config import ConfigError, resolve_index
    from py_mdr.hec.config import HECConfig

    try:
        index = resolve_index(args.index)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    settings = _settings(args, index, HECConfig.max_event_bytes)
    hint_terminal("send", args.files)
    items = read_items(args.files, text=args.text)
    return dry_run(items, settings, out=sys.stdout, err=sys.stderr)
