"""What a send, a health check and the transport's lifetime produced, as plain data."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from py_mdr.hec.errors import HECError
from py_mdr.stats import Snapshot


@dataclass
class SendReport:
    """The outcome of one ``send``: how many envelopes were accepted, and why others were not.

    Every envelope given to ``send`` ends up exactly once: accepted (counted in ``delivered``),
    in ``undelivered``, or dropped as bad. ``undelivered`` holds the very ``bytes`` objects
    that were not delivered for a reason that may pass with time or a fix of the
    configuration (deadline, closed, unreachable, TLS, token, index, an answer that is not
    HEC's, a 5xx), in their original order, so a spool can keep them and send them again.
    Envelopes refused for what they are (a bad event, oversize, a 4xx for the body) are only
    counted in ``dropped``.
    """

    delivered: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count
    retries: int = 0
    error: HECError | None = None  # the last or permanent error, if any
    undelivered: list[bytes] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """Nothing was dropped."""
        return not self.dropped

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def drop(self, reason: str, count: int, error: HECError | None = None) -> None:
        if count > 0:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
        if error is not None:
            self.error = error


@dataclass(frozen=True)
class HealthReport:
    """The answer of ``/services/collector/health`` (a green answer proves little behind Vector)."""

    ok: bool
    status: int | None
    hec_code: int | None
    text: str
    error: str | None = None


@dataclass
class TransportStats(Snapshot):
    """A snapshot of the transport's counters."""

    events_sent: int = 0
    events_retried: int = 0
    events_dropped: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    bytes_sent: int = 0
    last_error: str | None = None
    acks_pending: int = 0  # ackIds awaiting confirmation
    events_awaiting_ack: int = 0  # the events of the bodies those ackIds stand for
    events_unconfirmed: int = 0  # accepted, but their acknowledgement was given up on


class Counters:
    """Thread-safe counters behind :class:`TransportStats` (read from any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = TransportStats()

    def reset_lock(self) -> None:
        """A fresh lock after fork: the parent's may have been held by another thread."""
        self._lock = threading.Lock()

    def request(self, body_bytes: int) -> None:
        with self._lock:
            self._stats.requests += 1
            self._stats.bytes_sent += body_bytes

    def sent(self, count: int) -> None:
        with self._lock:
            self._stats.events_sent += count

    def retried(self, count: int) -> None:
        with self._lock:
            self._stats.events_retried += count

    def dropped(self, reason: str, count: int) -> None:
        if count <= 0:
            return
        with self._lock:
            dropped = self._stats.events_dropped
            dropped[reason] = dropped.get(reason, 0) + count

    def unconfirmed(self, count: int) -> None:
        with self._lock:
            self._stats.events_unconfirmed += count

    def error(self, message: str) -> None:
        with self._lock:
            self._stats.last_error = message

    def snapshot(self, acks_pending: int = 0, events_awaiting_ack: int = 0) -> TransportStats:
        with self._lock:
            s = self._stats
            return TransportStats(
                events_sent=s.events_sent,
                events_retried=s.events_retried,
                events_dropped=dict(s.events_dropped),
                requests=s.requests,
                bytes_sent=s.bytes_sent,
                last_error=s.last_error,
                acks_pending=acks_pending,
                events_awaiting_ack=events_awaiting_ack,
                events_unconfirmed=s.events_unconfirmed,
            )
