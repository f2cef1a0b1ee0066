"""``py-mdr send``: input items become OCSF events, then HEC envelopes, sent in bounded batches.

A reader thread parses and prepares while the main thread sends, through a bounded hand-off,
so sending starts before the input ends and memory stays flat whatever the input size. A batch
goes out when it is full (events or bytes), or when a second passed without filling one, which
keeps ``tail -f app.log | py-mdr send --text`` timely.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TextIO

from py_mdr import __version__
from py_mdr.cli_input import STDIN, Item
from py_mdr.delivery.spool import Spool
from py_mdr.eventlog import FIXED_PART, device, metadata, next_sequence
from py_mdr.hec.codes import resendable
from py_mdr.hec.envelope import encode_envelope
from py_mdr.hec.reports import SendReport
from py_mdr.hec.transport import HECTransport
from py_mdr.ocsf_models._registry import CLASSES
from py_mdr.serialize import Notes, complete, complete_noted, dumps, safe_str
from py_mdr.time_units import advice
from py_mdr.validate import validate

#: Drop reasons after which sending more is pointless: the endpoint refuses us or is gone.
STOP_REASONS = frozenset({"auth", "index", "deadline", "tls", "closed", "request_error"})
_SHOWN_REJECTIONS = 20  # messages printed; the rest are only counted
_SHOWN_PLACES = 10  # places listed in the summary line
_SHOWN_PROBLEMS = 5  # schema problems quoted per rejected event
_PROGRESS_EVERY = 0.5  # seconds between progress updates on a terminal


@dataclass(frozen=True)
class SendSettings:
    """What turns input into envelopes, and how batches are cut."""

    name: str
    host: str
    index: str | None
    max_event_bytes: int
    strict: bool = False
    text: bool = False
    severity: tuple[int, str] = (1, "Informational")
    product: Mapping[str, Any] = field(default_factory=dict)
    batch_events: int = 2000
    batch_bytes: int = 1024 * 1024
    flush_interval: float = 1.0

    @property
    def sourcetype(self) -> str:
        return f"pymdr::{self.name}"


@dataclass(frozen=True)
class Rejected:
    """An input item that will not be sent, and why (in words a user can act on)."""

    where: str
    reason: str


class Noted(NamedTuple):
    """A prepared envelope with something to tell: values changed to fit their OCSF type, or
    times that look like another unit than milliseconds (sent as written, never changed)."""

    envelope: bytes
    where: str
    coerced: int
    warnings: tuple[str, ...]


@dataclass
class Tally:
    """What happened, for the summary line and the exit code."""

    sent: int = 0
    rejected: int = 0
    coerced: int = 0  # values changed to fit their OCSF type
    odd_times: int = 0  # events with a time that looks like another unit than milliseconds
    places: list[str] = field(default_factory=list)  # the first few rejected places
    dropped: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None  # why sending ended before the input did
    interrupted: bool = False
    kept: int = 0  # left in the spool for the next run
    spool_dir: str | None = None
    paused: str | None = None  # with a spool: why sending stopped while the input is kept

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def all_sent(self) -> bool:
        return not (self.rejected or self.dropped or self.stopped or self.interrupted or self.kept)

    def summary(self) -> str:
        text = f"{self.sent} sent, {self.rejected} rejected"
        if self.places:
            more = self.rejected - len(self.places)
            listed = ", ".join(self.places) + (f" and {more} more" if more > 0 else "")
            text += f" ({listed})"
        text += f", {self.dropped_total} dropped"
        if self.dropped:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(self.dropped.items())) + ")"
        if self.kept:
            text += f", {self.kept} kept in the spool {self.spool_dir} for the next run"
        if self.coerced:
            text += (
                f"; {self.coerced} value(s) changed to fit their OCSF type "
                "(`py-mdr validate` names them, --strict refuses them)"
            )
        if self.odd_times:
            text += f"; {self.odd_times} event(s) with a time that is not in milliseconds"
        return text


# --- preparing one item ----------------------------------------------------------------------


def prepare(item: Item, settings: SendSettings) -> bytes | Noted | Rejected:
    """The envelope for one input item (with what to tell about it), or why it is rejected;
    never raises."""
    if item.error is not None:
        return Rejected(item.where, item.error)
    notes = None
    try:
        if settings.text:
            event = text_event(item, settings)
        else:
            checked = json_event(item.value, settings.strict)
            if isinstance(checked, str):
                return Rejected(item.where, checked)
            event, notes = checked
        envelope = encode_envelope(
            dumps(event),
            time=_envelope_time(event),
            host=settings.host,
            source=settings.name,
            sourcetype=settings.sourcetype,
            index=settings.index,
        )
    except Exception as exc:  # a value the serializer could not handle: reject, go on
        return Rejected(item.where, f"could not be prepared: {type(exc).__name__}: {exc}")
    if len(envelope) > settings.max_event_bytes:
        return Rejected(
            item.where,
            f"event is {len(envelope)} bytes as sent, over the {settings.max_event_bytes}-byte "
            "limit for one event",
        )
    if notes is not None and (notes.coerced or notes.units):
        warnings = tuple(f"{where}: {advice(value, unit)}" for where, value, unit in notes.units)
        return Noted(envelope, item.where, notes.coerced, warnings)
    return envelope


def json_event(value: Any, strict: bool) -> tuple[dict[str, Any], Notes | None] | str:
    """The completed OCSF event for a decoded JSON value (with what serializing it noticed), or
    the reason it cannot be sent. ``strict`` refuses what ``py-mdr validate`` reports, wrong
    types included; otherwise wrong-typed values are changed to fit where possible."""
    if not isinstance(value, dict):
        kind = {list: "a list", str: "a string", bool: "a boolean"}.get(type(value))
        kind = kind or ("null" if value is None else "a number")
        return f"not a JSON object (got {kind}): each event must be an object with a class_uid"
    if not value:
        return "an empty object is not an event"
    class_uid = value.get("class_uid")
    type_uid = value.get("type_uid")
    if class_uid is None and type(type_uid) is int and type_uid // 100 in CLASSES:
        class_uid = type_uid // 100  # type_uid is class_uid * 100 + activity_id
    if class_uid is None:
        return (
            "no class_uid, so not an OCSF event: add one (`py-mdr schema` lists them), "
            "or send plain lines with --text"
        )
    if type(class_uid) is not int:  # "1008", 1008.0 or true: say so rather than "unknown"
        return (
            f"class_uid must be a whole number, got {json.dumps(class_uid)[:40]}: "
            "`py-mdr schema` lists the OCSF 1.3.0 classes"
        )
    if class_uid not in CLASSES:
        return f"unknown class_uid {class_uid}: `py-mdr schema` lists the OCSF 1.3.0 classes"
    if strict:
        event = complete(value, coerce=False)
        problems = validate(event)
        if problems:
            return "refused by --strict: " + quote_problems(problems)
        return event, None
    return complete_noted(value)


def quote_problems(problems: list[Any]) -> str:
    shown = "; ".join(str(problem) for problem in problems[:_SHOWN_PROBLEMS])
    more = len(problems) - _SHOWN_PROBLEMS
    return shown + (f"; and {more} more" if more > 0 else "")


def text_event(item: Item, settings: SendSettings) -> dict[str, Any]:
    """An Event Log Activity whose message is the input line."""
    severity_id, severity = settings.severity
    event: dict[str, Any] = {
        **FIXED_PART,
        "severity_id": severity_id,
        "severity": severity,
        "time": int(time.time() * 1000),
        "message": item.value,
        "log_name": settings.name,
        "metadata": metadata(dict(settings.product), __version__, next_sequence(), None, None),
        "device": device(settings.host),
    }
    if item.source != STDIN:  # where the line came from, for tracing it back
        event["unmapped"] = {"input": {"file": _full_path(item.source), "line": item.line}}
    return event


#: Looked up once per input file, not once per line.
_full_path = functools.cache(os.path.abspath)


def _envelope_time(event: Mapping[str, Any]) -> float:
    stamp = event.get("time")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) and math.isfinite(stamp):
        return stamp / 1000
    return time.time()


# --- the pump --------------------------------------------------------------------------------


class _Handoff:
    """Prepared items from the reader thread to the sender, bounded in count and bytes.

    A plain queue would wake the sender for every item; this one wakes it once a batch is
    ready (or when its wait times out, so that slow input is still sent promptly), which
    keeps the thread switching off the per-event cost.
    """

    def __init__(self, batch_events: int, batch_bytes: int) -> None:
        self._cond = threading.Condition()
        self._items: list[bytes | Noted | Rejected] = []
        self._bytes = 0
        self._wake_at = batch_events
        self._wake_bytes = batch_bytes
        self._max_items = 2 * batch_events
        self._max_bytes = 2 * batch_bytes
        self._done = False
        self._stopped = False

    def put(self, thing: bytes | Noted | Rejected) -> bool:
        """Add one item, waiting while full; False once the sender stopped."""
        size = _size(thing)
        with self._cond:
            while (
                self._items
                and not self._stopped
                and (len(self._items) >= self._max_items or self._bytes + size > self._max_bytes)
            ):
                self._cond.wait()
            if self._stopped:
                return False
            self._items.append(thing)
            self._bytes += size
            if self._ready():
                self._cond.notify_all()
        return True

    def _ready(self) -> bool:
        """A batch's worth is waiting (by count or by bytes)."""
        return len(self._items) >= self._wake_at or self._bytes >= self._wake_bytes

    def close(self) -> None:
        """No more items will come."""
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def stop(self) -> None:
        """The sender gives up: a waiting or later ``put`` returns False at once."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def take(self, timeout: float) -> tuple[list[bytes | Noted | Rejected], bool]:
        """Everything waiting (after up to ``timeout`` s for a batch), and whether input ended."""
        with self._cond:
            if not (self._ready() or self._done):
                self._cond.wait(timeout)
            items, self._items, self._bytes = self._items, [], 0
            self._cond.notify_all()
            return items, self._done


def _size(thing: bytes | Noted | Rejected) -> int:
    if isinstance(thing, bytes):
        return len(thing)
    return len(thing.envelope) if isinstance(thing, Noted) else 0


def _produce(items: Iterator[Item], settings: SendSettings, handoff: _Handoff) -> None:
    try:
        for item in items:
            if not handoff.put(prepare(item, settings)):
                return
    except Exception as exc:  # reading broke in a way read_items did not foresee: say so
        handoff.put(Rejected("input", f"reading stopped: {type(exc).__name__}: {exc}"))
    finally:
        handoff.close()


class _Console:
    """Messages and, on a terminal, a throttled progress line on stderr."""

    def __init__(self, stream: TextIO, progress: bool) -> None:
        self.stream = stream
        self.progress = progress
        self.shown = 0
        self.noted = 0
        self._line = False
        self._next = time.monotonic() + _PROGRESS_EVERY
        self._started = time.monotonic()

    def say(self, text: str) -> None:
        self._clear()
        print(f"py-mdr send: {text}", file=self.stream, flush=True)

    def reject(self, rejected: Rejected) -> None:
        if self.shown < _SHOWN_REJECTIONS:
            self.shown += 1
            self.say(f"{rejected.where}: {rejected.reason}")
        elif self.shown == _SHOWN_REJECTIONS:
            self.shown += 1
            self.say("further rejections are counted but not shown")

    def note(self, noted: Noted) -> None:
        """Say what was odd about an event that is sent anyway (the first few only)."""
        for warning in noted.warnings:
            if self.noted < _SHOWN_REJECTIONS:
                self.say(f"{noted.where}: {warning} (sent as written)")
            self.noted += 1

    def tick(self, tally: Tally) -> None:
        if not self.progress:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + _PROGRESS_EVERY
        rate = tally.sent / max(now - self._started, 1e-9)
        text = (
            f"{tally.sent} sent, {tally.rejected} rejected, {tally.dropped_total} dropped "
            f"({rate:.0f}/s)"
        )
        self.stream.write(f"\r{text}\x1b[K")
        self.stream.flush()
        self._line = True

    def finish(self) -> None:
        self._clear()

    def _clear(self) -> None:
        if self._line:
            self.stream.write("\r\x1b[K")
            self._line = False


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
    console = _Console(stream, progress)
    flush: Flush = _flush
    if spool is not None:
        flush = _spooled_flush(spool, settings)
        tally.spool_dir = spool.directory
        found = spool.adopt()
        if found:
            console.say(f"sending {found} event(s) left in the spool {spool.directory} first")
            flush([], transport, tally, console)
    handoff = _Handoff(settings.batch_events, settings.batch_bytes)
    reader = threading.Thread(
        target=_produce, args=(items, settings, handoff), name="py-mdr-read", daemon=True
    )
    reader.start()
    wait = min(settings.flush_interval, _PROGRESS_EVERY) if progress else settings.flush_interval
    batch: list[bytes] = []
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
                    flush(batch, transport, tally, console)
                    batch, size = [], 0
                    if tally.stopped is not None:
                        break
            # a short take means the input is slow (or over): send what there is now
            if batch and tally.stopped is None and (done or len(things) < settings.batch_events):
                flush(batch, transport, tally, console)
                batch, size = [], 0
            console.tick(tally)
    except KeyboardInterrupt:
        tally.interrupted = True
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


Flush = Callable[[list[bytes], HECTransport, Tally, "_Console"], None]


def _spooled_flush(spool: Spool, settings: SendSettings) -> Flush:
    """Write ``batch`` to the spool, then send from the spool, oldest first."""

    def flush(batch: list[bytes], transport: HECTransport, tally: Tally, console: _Console) -> None:
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


def _flush(batch: list[bytes], transport: HECTransport, tally: Tally, console: _Console) -> None:
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
