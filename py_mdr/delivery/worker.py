"""The bounded memory queue and the threads behind it.

The logging thread only appends to a ``deque`` under a short lock. One worker thread takes
batches (when ``batch_size`` items or ``batch_bytes`` are waiting, ``linger`` seconds after the
first one arrived, or when someone flushes) and turns them into HEC envelopes with ``encode``.

- Without a spool, the worker sends each batch itself (``send``, retries and deadline included).
- With a spool, the worker appends the envelopes to disk right away and a second thread, the
  sender, sends from the spool and removes what MDR accepted. An outage then costs disk, not
  memory, and a killed process loses only what had not reached the spool yet. Should the disk
  refuse, the worker sends from memory instead (told once on stderr) and tries the disk again
  a minute later.

Memory is bounded in items and estimated bytes; what does not fit is dropped and counted by
reason. Nothing here raises into the caller: failures are counted and told on stderr
(:mod:`py_mdr.delivery.report`).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Generic, TypeVar

from py_mdr.checks import count, seconds
from py_mdr.delivery import lifecycle, sigterm
from py_mdr.delivery.report import Reporter
from py_mdr.delivery.spool import Spool, SpoolBatch
from py_mdr.hec.codes import resendable
from py_mdr.hec.reports import SendReport
from py_mdr.internal import is_sending, sending
from py_mdr.stats import Snapshot
from py_mdr.threads import daemon_thread

__all__ = [
    "DEFAULT_BATCH_BYTES",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LINGER",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_RECORDS",
    "Delivery",
    "DeliveryStats",
    "Encode",
    "Send",
]

T = TypeVar("T")

#: ``encode(items)``: the HEC envelopes of the items that could be encoded, and the count of
#: those that could not, by reason (e.g. ``{"mapping_error": 1}``).
Encode = Callable[[list[T]], tuple[list[bytes], dict[str, int]]]
#: ``send(envelopes, deadline)``: deliver; ``deadline`` is a ``time.monotonic()`` instant while
#: closing, else None (the sender's own deadline applies).
Send = Callable[[list[bytes], "float | None"], SendReport]

DEFAULT_MAX_RECORDS = 100_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
#: About 1 MiB of typical events (1.1-1.3 KB as JSON) in one request body: fewer requests, and
#: gzip finds more of each event in the ones before it (15 bytes per event where 500 sent 15.6).
DEFAULT_BATCH_SIZE = 800
DEFAULT_BATCH_BYTES = 1024 * 1024
DEFAULT_LINGER = 0.5
#: With a spool, records wait at most this long in memory before they are on disk.
SPOOL_LINGER = 0.05
#: The lock-free lane in front of the queue holds at most this many items (see ``put``).
_LANE_ITEMS = 1024
_IDLE_WAIT = 1.0  # an idle thread re-checks this often (losses to tell, the owner's tick)
_DISK_RETRY = 60.0  # seconds before a spool the disk refused is tried again
_monotonic = time.monotonic
_get_ident = threading.get_ident
_size_of = itemgetter(1)  # of a queued (item, size)


@dataclass(frozen=True)
class DeliveryStats(Snapshot):
    """A snapshot of the counters (since start, or since fork in a child).

    They add up: ``queued + spool_adopted == sent + (dropped after queueing) + queue_depth +
    in_flight + spool_records`` once nothing is moving. Records refused before they were queued
    (``queue_full``, ``oversize``, ``closed``, ``emit_error``) are in ``dropped`` only.
    """

    queued: int = 0  # items accepted into the memory queue
    sent: int = 0  # records MDR accepted (own and adopted)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> records lost
    retried: int = 0  # retry attempts the sender made
    queue_depth: int = 0  # items waiting in memory now
    queue_bytes: int = 0  # their estimated size
    queue_peak: int = 0  # the most items ever waiting at once
    queue_bytes_peak: int = 0  # the largest estimated size ever waiting at once
    in_flight: int = 0  # items taken from the queue whose outcome is not known yet
    spooled: int = 0  # records written to the spool
    spool_records: int = 0  # records on disk not yet accepted (own and adopted)
    spool_bytes: int = 0  # their size on disk
    spool_adopted: int = 0  # records found in the spool files of processes that were gone
    spool_damaged: int = 0  # damaged regions skipped in spool files

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class Delivery(Generic[T]):
    """A queue bounded in items and bytes, drained in batches by a worker (and a sender).

    ``put`` never blocks unless ``block`` is set (then at most ``block_timeout`` seconds);
    ``flush`` and ``close`` are bounded by their timeouts. ``finish(deadline)``, when given, runs
    on the worker once the queue is drained at close (e.g. to await acknowledgements);
    with a spool, ``confirm(deadline)`` is asked after each accepted batch instead, and a batch
    leaves the disk only once it returns True.
    """

    def __init__(
        self,
        send: Send,
        *,
        encode: Encode[T],
        label: str = "py-mdr",
        reporter: Reporter | None = None,
        spool: Spool | None = None,
        max_records: int = DEFAULT_MAX_RECORDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        linger: float = DEFAULT_LINGER,
        block: bool = False,
        block_timeout: float = 60.0,
        name: str = "py-mdr-delivery",
        finish: Callable[[float], object] | None = None,
        confirm: Callable[[float], bool] | None = None,
        unconfirmed: Callable[[], int] | None = None,
        interrupt: Callable[[], object] | None = None,
        hurry: Callable[[float], object] | None = None,
        retry_wait: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        """A bounded queue and its worker (started on first use), sending through ``send``.

        ``encode`` turns queued items into envelopes on the worker; ``spool`` keeps them on disk
        first; the ``max_*`` and batch settings are checked like the doors' arguments (a
        :class:`~py_mdr.errors.ConfigError` names the bad one)."""
        self._max_records = count("max_records", max_records)
        self._max_bytes = count("max_bytes", max_bytes)
        self._batch_size = count("batch_size", batch_size)
        self._batch_bytes = count("batch_bytes", batch_bytes)
        self._linger = seconds("linger", linger, zero_ok=True)
        self._block_timeout = seconds("block_timeout", block_timeout, zero_ok=True)
        self._retry_wait = (seconds("retry_wait", retry_wait[0], zero_ok=True), retry_wait[1])
        self._send_envelopes = send
        self._encode = encode
        self._spool = spool
        self._block = bool(block)
        # The lane holds at most a sixteenth of the queue's bounds, in items and in bytes.
        self._lane_items = min(_LANE_ITEMS, self._max_records // 16)
        self._lane_item_bytes = self._max_bytes // 16 // max(1, self._lane_items)
        # The lane wakes a busy worker only every this many items: each wake makes it take
        # the interpreter lock, holding up a logging call, so rarely enough to stay off p99.
        self._lane_wake = max(1, min(self._batch_size, self._lane_items // 2))
        self._name = name
        self._finish = finish
        self._confirm = confirm
        self._unconfirmed = unconfirmed
        self._interrupt = interrupt
        self._hurry = hurry
        self.reporter = reporter or Reporter(label, spooled=spool is not None)
        #: Called at interpreter exit instead of ``close`` (the owner's close also reports).
        self.exit_hook: Callable[[], object] | None = None
        #: Called in a forked child after the queue was reset (e.g. to renew connections).
        self.fork_hook: Callable[[], object] | None = None
        #: Called on the worker now and then (at least every few seconds while it lives).
        self.tick: Callable[[], object] | None = None
        self._closed = False
        self._reset()
        lifecycle.register(self)

    def _reset(self) -> None:
        """Fresh locks, queue and counters (construction, and a forked child)."""
        # Reentrant, and a holder mark: a signal handler that logs while this thread is inside
        # put() must neither deadlock nor change the queue halfway through (see put).
        self._lock = threading.RLock()
        self._holder = 0
        self._done = threading.Condition(self._lock)  # notified when items finish
        self._room = threading.Condition(self._lock)  # notified when items leave (block mode)
        self._wake = threading.Event()  # the worker's
        self._ring_guard = threading.Lock()  # append()'s wake-ups, one at a time
        self._sender_wake = threading.Event()
        self._stop = threading.Event()  # ends the sender's retry waits at close
        self._queue: deque[tuple[T, int]] = deque()
        self._side: deque[tuple[T, int] | tuple[None, str]] = deque()  # puts from signal handlers
        self._lane: deque[tuple[T, int]] = deque()  # append()'s lock-free way in
        self._lane_open = False  # True while a worker runs, until close (never in block mode)
        self._bytes = 0
        self._oldest = 0.0  # monotonic time the queue last went from empty to non-empty
        self._thread: threading.Thread | None = None
        self._sender: threading.Thread | None = None
        self._closing = False
        self._stopping = False
        self._send_deadline: float | None = None
        self._flush_target = 0
        self._enqueued = 0
        self._finished = 0  # items done with outside the spool (sent, dropped, encode failed)
        self._in_flight = 0
        self._sent = 0
        self._retried = 0
        self._dropped: dict[str, int] = {}
        self._peak = 0
        self._bytes_peak = 0
        self._spooled = 0
        self._disk_refused_at: float | None = None
        self._adopt_requested = True
        self._writer_done = False  # set by the worker as it ends at close
        self._send_lock = threading.Lock()  # the worker (disk refused) and the sender share it
        self._last_error: str | None = None
        self._crash_reported = False
        self._late_reported = False
        self._late_told = 0
        self._closed_at_close = 0
        self._final_spool: tuple[int, int] | None = None  # (records, bytes) left at close

    # ------------------------------------------------------------------ caller side
    def append(self, item: T, size: int) -> None:
        """Queue ``item`` like :meth:`put`, without taking the lock, for a caller that needs
        no answer (a log record: a drop is counted either way).

        The item goes into the lane, a short deque (its appends are thread-safe), which the
        worker (or the next put) moves into the queue; the queue's bounds apply there, and
        what does not fit is counted like any drop. The lane holds at most 1/16 of the queue's
        bounds, so memory stays within them plus that. In block mode, for a large item, or
        when the lane is full, this is :meth:`put`.
        """
        if self._lane_open and size <= self._lane_item_bytes:
            lane = self._lane
            if len(lane) < self._lane_items:
                lane.append((item, size))
                count = len(lane)
                if (count == 1 and not self._queue) or not count % self._lane_wake:
                    # The worker waits for work, or its batch may be full: wake it. Else it
                    # takes the lane in when it next looks (at the latest as its linger ends).
                    self._ring()
                return
        self.put(item, size)

    def _ring(self) -> None:
        """Wake the worker (the one way to, from any thread), unless a wake-up is under way:
        perhaps on this very thread, which a signal handler that logs has interrupted inside
        ``Event.set`` (its lock is not reentrant); the wake-up under way serves both."""
        guard = self._ring_guard
        if guard.acquire(False):
            try:
                self._wake.set()
            finally:
                guard.release()

    def put(self, item: T, size: int) -> bool:
        """Queue ``item`` (``size``: its estimated bytes); False when it was dropped (counted)."""
        if self._thread is None and not self._closed:
            self._start()
        ident = _get_ident()
        if self._holder == ident:
            # A signal handler interrupted this thread inside put(): leave the queue alone and
            # let the worker admit the item (``deque.append`` is atomic). No wake-up either:
            # the interrupted put may hold the event's own lock, which is not reentrant.
            self._side.append((item, size))
            return True
        lock = self._lock
        lock.acquire()  # explicit acquire/release: cheaper than a `with` block here
        self._holder = ident
        try:
            if self._lane:
                self._merge_lane()  # what came in by the lane came first
            return self._admit(item, size)
        finally:
            self._holder = 0
            lock.release()

    def put_many(self, entries: list[tuple[T, int]]) -> int:
        """Queue each ``(item, size)`` as :meth:`put` would, under one lock; how many were dropped
        (counted). For a caller with a batch in hand, such as an OpenTelemetry exporter."""
        if not entries:
            return 0
        if self._thread is None and not self._closed:
            self._start()
        ident = _get_ident()
        if self._holder == ident:  # a signal handler inside put(): see put()
            self._side.extend(entries)
            return 0
        lock = self._lock
        lock.acquire()
        self._holder = ident
        try:
            if self._lane:
                self._merge_lane()
            return self._admit_all(entries)
        finally:
            self._holder = 0
            lock.release()

    def _admit(self, item: T, size: int) -> bool:
        """With the lock held: queue the item or count why not."""
        queue = self._queue
        depth = len(queue)
        if depth >= self._max_records or self._bytes + size > self._max_bytes or self._closed:
            if not self._make_room(size):
                return False
            depth = len(queue)
        queue.append((item, size))
        self._added(depth, 1, self._bytes, self._bytes + size)
        return True

    def _added(self, depth: int, count: int, before: int, after: int) -> None:
        """With the lock held, after ``count`` items went in behind ``depth`` waiting ones and
        the queued bytes went from ``before`` to ``after``: the counters, the peaks, and a wake
        for the worker when the queue was empty or a batch just filled."""
        self._bytes = after
        self._enqueued += count
        if depth + count > self._peak:
            self._peak = depth + count
        if after > self._bytes_peak:
            self._bytes_peak = after
        if not depth:
            self._oldest = _monotonic()
            self._ring()
        elif depth < self._batch_size <= depth + count or before < self._batch_bytes <= after:
            self._ring()

    def _make_room(self, size: int) -> bool:
        """Called with the lock held when the item does not fit: wait (block mode) or count it."""
        reason = "queue_full"
        if self._closed:
            reason = "closed"
        elif size > self._max_bytes:
            reason = "oversize"  # could never fit, however long we waited
        elif self._block and not is_sending():
            deadline = _monotonic() + self._block_timeout
            self._holder = 0  # the wait releases the lock
            try:
                while True:
                    remaining = deadline - _monotonic()
                    if remaining <= 0 or self._closed:
                        break
                    self._room.wait(remaining)
                    if self._fits(size):
                        return True
            finally:
                self._holder = _get_ident()
        self._dropped[reason] = self._dropped.get(reason, 0) + 1
        if reason == "closed":
            self._told_late()
        else:
            self._ring()  # the worker tells the user that losses started
        return False

    def _fits(self, size: int) -> bool:
        return len(self._queue) < self._max_records and self._bytes + size <= self._max_bytes

    def count(self, reason: str, n: int = 1) -> None:
        """Count ``n`` items lost before they reached the queue (e.g. an error in ``emit``)."""
        if self._holder == _get_ident():
            for _ in range(n):
                self._side.append((None, reason))
            return
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + n
        self._ring()

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued before this call was sent (or given up); False on timeout.

        With a spool it also looks for files of processes that are gone, and sends them too.
        From the worker thread itself (a sender's own code) it returns at once.
        """
        if self._spool is not None and self._thread is None and not self._closed:
            self._start()  # the sender adopts what processes that are gone left behind
        with self._lock:
            self._merge_lane()
            self._merge_side()
            target = self._enqueued
            if self._spool is not None:
                self._adopt_requested = True
                self._sender_wake.set()
            if self._finished_items() >= target and not self._spool_backlog():
                done = True
            elif is_sending() or self._thread is None or self._closed:
                return False  # nobody to wait for (close already waited its time)
            else:
                done = False
            if target > self._flush_target:
                self._flush_target = target
        deadline = _monotonic() + max(0.0, timeout)
        if done:
            return self._closed or is_sending() or self._confirmed(deadline)
        self._ring()
        with self._done:
            if not self._done.wait_for(
                lambda: self._finished_items() >= target and not self._spool_backlog(),
                max(0.0, timeout),
            ):
                return False
        return self._confirmed(deadline)

    def _confirmed(self, deadline: float) -> bool:
        """With acknowledgements on (and no spool): wait for them too, until ``deadline``."""
        finish = self._finish
        if finish is None or self._spool is not None:
            return True
        if not self._send_lock.acquire(timeout=max(0.0, deadline - _monotonic())):
            return False
        try:
            with sending():
                return finish(deadline) is not False
        finally:
            self._send_lock.release()

    def _spool_backlog(self) -> bool:
        """True while records adopted from processes that are gone wait to be sent."""
        spool = self._spool
        return spool is not None and (self._adopt_requested or spool.pending()[1] > 0)

    def _finished_items(self) -> int:
        spool = self._spool
        return self._finished + (spool.own_resolved if spool is not None else 0)

    def close(self, timeout: float, interrupt: Callable[[], object] | None = None) -> DeliveryStats:
        """Drain within ``timeout`` seconds, stop the threads, count what is left; idempotent.

        ``hurry`` (given at construction) is called first, with the instant sends must end by:
        a send waiting out a long backoff should try again at once. ``interrupt`` (default: the
        one given at construction) is called once the drain time is up, before the final wait
        for the threads, and once more at the end: it should make a pending send return and
        release the connections (closing the transport does both).
        Items still in memory then are dropped as ``shutdown``; a send that has not returned by
        the deadline is left to finish on its own (the threads are daemons) and shows as
        ``in_flight``. With a spool, what is on disk stays there for the next process.
        """
        timeout = max(0.0, float(timeout))
        interrupt = interrupt or self._interrupt
        deadline = _monotonic() + timeout
        grace = min(0.25, timeout / 5)  # time kept for the send to return after the interrupt
        with self._lock:
            if self._closed:
                return self._snapshot()
            self._lane_open = False
            self._merge_lane()  # logged before close: drained like the rest
            self._closed = True
            self._closing = True
            self._send_deadline = deadline - grace
            self._room.notify_all()
            threads = [t for t in (self._thread, self._sender) if t is not None]
        if self._hurry is not None:  # a send waiting out a long backoff tries again now
            try:
                self._hurry(deadline - grace)
            except Exception:  # closing must never fail the caller
                self.report_crash("hurrying the sender failed")
        current = threading.current_thread()
        self._ring()
        self._sender_wake.set()
        for thread in threads:
            if thread is not current:
                # The worker ends by itself once the queue is empty and ``finish`` ran; the
                # sender once the spool is empty too.
                thread.join(max(0.0, deadline - grace - _monotonic()))
        with self._lock:
            self._stopping = True
        self._stop.set()
        self._ring()
        self._sender_wake.set()
        if interrupt is not None:
            try:
                interrupt()
            except Exception:  # closing must never fail the caller
                self.report_crash("interrupting the sender failed")
        for thread in threads:
            if thread is not current:
                thread.join(max(0.0, deadline - _monotonic()))
        with self._lock:
            self._merge_lane()  # a put that raced with close: counted as logged after it
            self._merge_side()
            left = len(self._queue)
            if left:
                self._dropped["shutdown"] = self._dropped.get("shutdown", 0) + left
                self._queue.clear()
                self._bytes = 0
                self._finished += left
                self._done.notify_all()
        spool = self._spool
        if spool is not None:
            stats = spool.stats()
            self._final_spool = (stats.records, stats.bytes)
            spool.close()
        if interrupt is not None:
            try:
                interrupt()
            except Exception:
                self.report_crash("closing the sender failed")
        final = self.stats()
        self._report_final(final)
        return final

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> DeliveryStats:
        with self._lock:
            if self._holder != _get_ident():  # not from a signal handler inside put()
                self._merge_lane()
            return self._snapshot()

    def _snapshot(self) -> DeliveryStats:
        dropped = dict(self._dropped)
        spool_records = spool_bytes = adopted = damaged = 0
        spool = self._spool
        if spool is not None:
            stats = spool.stats()  # its counters outlive close(); what was left is kept apart
            spool_records, spool_bytes = self._final_spool or (stats.records, stats.bytes)
            adopted, damaged = stats.adopted, stats.damaged
            for reason, count in stats.dropped.items():
                dropped[reason] = dropped.get(reason, 0) + count
        return DeliveryStats(
            queued=self._enqueued,
            sent=self._sent,
            dropped=dropped,
            retried=self._retried,
            queue_depth=len(self._queue),
            queue_bytes=self._bytes,
            queue_peak=self._peak,
            queue_bytes_peak=self._bytes_peak,
            in_flight=self._in_flight,
            spooled=self._spooled,
            spool_records=spool_records,
            spool_bytes=spool_bytes,
            spool_adopted=adopted,
            spool_damaged=damaged,
        )

    # ------------------------------------------------------------------ worker side
    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            lifecycle.worker_started()
            sigterm.unpark()
            thread = daemon_thread(self._run, self._name)
            # Claimed before start(), which waits for the thread: a signal handler logging on
            # this thread meanwhile re-enters put() and must not start a second worker.
            self._thread = thread
            try:
                thread.start()
            except RuntimeError:  # no more threads (or interpreter shutdown): items stay queued
                self._thread = None
                self.report_crash("the delivery thread could not be started")
                return
            self._lane_open = not self._block
            if self._spool is not None and self._sender is None:
                sender = daemon_thread(self._run_sender, f"{self._name}-sender")
                self._sender = sender
                try:
                    sender.start()
                except RuntimeError:
                    self._sender = None
                    self.report_crash("the spool's sender thread could not be started")

    def _run(self) -> None:
        with sending():  # everything this thread logs (and its HTTP stack) stays out of MDR
            try:
                while True:
                    batch = self._take()
                    if batch is None:
                        break
                    self._handle(batch)
                    self._tell_losses()
                if self._finish is not None and not self._stopping and self._spool is None:
                    self._finish(self._send_deadline or _monotonic())
            except Exception:
                self.report_crash("the delivery thread failed")
            finally:
                with self._lock:
                    if not self._closed and self._thread is threading.current_thread():
                        self._thread = None  # the next put starts a new worker
                        self._lane_open = False  # and takes the lock, so the lane moves on
                    self._writer_done = self._closed  # nothing more reaches the spool
                    self._done.notify_all()
                self._sender_wake.set()  # the sender may be waiting for the worker to finish

    def _linger_time(self) -> float:
        if self._spool is not None and self._disk_refused_at is None:
            return min(self._linger, SPOOL_LINGER)
        return self._linger

    def _take(self) -> list[tuple[T, int]] | None:
        """The next batch, once it is full, its linger time is up, or someone is waiting."""
        wake = self._wake
        queue = self._queue
        while True:
            wake.clear()  # before looking, so a put after the look wakes the wait below
            if self._side or self._lane:
                with self._lock:
                    self._merge_lane()
                    self._merge_side()
            if self._stopping:
                return None
            count = len(queue)
            if not count:
                if self._closing:
                    return None
                self._tell_losses()
                wake.wait(_IDLE_WAIT)
                continue
            if not (
                count >= self._batch_size
                or self._bytes >= self._batch_bytes
                or self._closing
                or self._flush_target > self._finished_items()
            ):
                remaining = self._oldest + self._linger_time() - _monotonic()
                if remaining > 0:
                    wake.wait(remaining)
                    continue
            with self._lock:
                # up to batch_size items and batch_bytes (at least one item, however large)
                entry = queue.popleft()
                batch = [entry]
                taken = entry[1]
                room = self._batch_size - 1
                limit = self._batch_bytes
                while room and queue and taken + queue[0][1] <= limit:
                    entry = queue.popleft()
                    batch.append(entry)
                    taken += entry[1]
                    room -= 1
                self._bytes -= taken
                self._in_flight = len(batch)
                # What is left came after this batch's oldest item, so it goes at the latest
                # when that item's linger ends (``_oldest`` stays): a full batch sooner, or the
                # rest then, rather than a small body of leftovers at once
                if self._block:
                    self._room.notify_all()
            return batch

    def _merge_lane(self) -> None:
        """With the lock held: move what came in by the lane into the queue, in order."""
        lane = self._lane
        while lane:
            popleft = lane.popleft  # appends racing with this land after what it takes
            self._admit_all([popleft() for _ in range(len(lane))])

    def _admit_all(self, entries: list[tuple[T, int]]) -> int:
        """With the lock held: :meth:`_admit` each ``(item, size)``, in order; how many were
        dropped. When all fit (the usual case) they go in at once, the counters set once."""
        queue = self._queue
        count = len(entries)
        depth = len(queue)
        before = self._bytes
        after = before + sum(map(_size_of, entries))
        if self._closed or depth + count > self._max_records or after > self._max_bytes:
            admit = self._admit
            return sum(not admit(item, size) for item, size in entries)
        queue.extend(entries)
        self._added(depth, count, before, after)
        return 0

    def _merge_side(self) -> None:
        """With the lock held: admit what signal handlers logged meanwhile."""
        side = self._side
        while side:
            item, size = side.popleft()
            if item is None and isinstance(size, str):
                self._dropped[size] = self._dropped.get(size, 0) + 1
            else:
                self._admit(item, size)  # type: ignore[arg-type]

    def _handle(self, batch: list[tuple[T, int]]) -> None:
        items = [item for item, _ in batch]
        try:
            envelopes, failed = self._encode(items)
        except Exception:
            self.report_crash("encoding a batch failed")
            envelopes, failed = [], {"error": len(items)}
        if self._spool_usable() and self._to_spool(envelopes, failed, len(items)):
            return
        report = self._send(envelopes)
        with self._lock:
            self._count_report(report)
            self._add_dropped(failed)
            self._finished += len(items)
            self._in_flight = 0
            self._done.notify_all()

    def _spool_usable(self) -> bool:
        if self._spool is None:
            return False
        refused = self._disk_refused_at
        return refused is None or _monotonic() - refused >= _DISK_RETRY

    def _to_spool(self, envelopes: list[bytes], failed: dict[str, int], count: int) -> bool:
        """Append to the spool; False when the disk refused (the caller sends from memory)."""
        spool = self._spool
        assert spool is not None
        try:
            spool.append(envelopes)
        except OSError as error:
            if self._disk_refused_at is None:
                self.reporter.say(
                    f"the spool {spool.directory} cannot be written ({error.strerror or error}); "
                    f"records are kept in memory and sent from there until it can"
                )
            self._disk_refused_at = _monotonic()
            return False
        if self._disk_refused_at is not None:
            self._disk_refused_at = None
            self.reporter.say(f"the spool {spool.directory} is writable again")
        with self._lock:
            self._spooled += len(envelopes)
            self._add_dropped(failed)
            self._finished += count - len(envelopes)
            self._in_flight = 0
            self._done.notify_all()
        self._sender_wake.set()
        return True

    def _send(self, envelopes: list[bytes]) -> SendReport:
        """One send through the shared transport; never raises."""
        if not envelopes:
            return SendReport()
        try:
            with self._send_lock:
                report = self._send_envelopes(envelopes, self._send_deadline)
        except Exception:
            self.report_crash("sending a batch failed")
            report = SendReport()
            report.drop("error", len(envelopes))
        if report.error is not None:
            self._last_error = str(report.error)
        return report

    def _count_report(self, report: SendReport) -> None:
        self._sent += report.delivered
        self._retried += report.retries
        self._add_dropped(report.dropped)

    def _add_dropped(self, dropped: dict[str, int]) -> None:
        for reason, number in dropped.items():
            if number > 0:
                self._dropped[reason] = self._dropped.get(reason, 0) + number

    # ------------------------------------------------------------------ the spool's sender
    def _run_sender(self) -> None:
        spool = self._spool
        assert spool is not None
        with sending():
            try:
                self._send_spooled(spool)
            except Exception:
                self.report_crash("the spool's sender thread failed")
            finally:
                with self._lock:
                    if not self._closed and self._sender is threading.current_thread():
                        self._sender = None
                    self._done.notify_all()

    def _send_spooled(self, spool: Spool) -> None:
        """Send the oldest spooled records, again and again until MDR takes them or we close."""
        low, high = self._retry_wait
        wait = low
        while not self._stopping:
            if self._adopt_requested:
                self._adopt_requested = False
                found = spool.adopt()
                if found:
                    self.reporter.say(
                        f"sending {found} record(s) left in the spool {spool.directory} "
                        "by a process that is gone"
                    )
                with self._done:
                    self._done.notify_all()
            self._sender_wake.clear()  # before looking, so a wake-up after the look counts
            batch = spool.next_batch(self._batch_size, self._batch_bytes)
            if batch is None:
                if self._closing and (self._writer_done or self._thread is None):
                    return
                self._sender_wake.wait(_IDLE_WAIT)
                self._tell_losses()
                continue
            if self._deliver_spooled(batch):
                spool.commit(batch)
                with self._done:
                    self._done.notify_all()
                wait = low
                continue
            self._tell_losses()
            if self._closing or self._stop.wait(wait):
                self._set_aside(spool, batch)
                return
            wait = min(wait * 2, high)

    def _deliver_spooled(self, batch: SpoolBatch) -> bool:
        """Send what is left of ``batch``; True when it is settled: everything accepted, or
        refused as bad. Otherwise ``batch.left`` holds what MDR did not take yet."""
        report = self._send(batch.left)
        with self._lock:
            self._retried += report.retries
        keep = report.undelivered
        settled = {
            reason: number for reason, number in report.dropped.items() if not resendable(reason)
        }
        batch.sent += report.delivered
        for reason, number in settled.items():
            batch.refused[reason] = batch.refused.get(reason, 0) + number
        confirm = self._confirm
        deadline = self._send_deadline or _ack_deadline()
        if not keep and confirm is not None and batch.sent and not confirm(deadline):
            batch.reset()  # accepted but not acknowledged: send it all again
            return False
        if keep:
            batch.left = keep
            return False
        with self._lock:
            self._sent += batch.sent
            self._add_dropped(batch.refused)
        return True

    def _set_aside(self, spool: Spool, batch: SpoolBatch) -> None:
        """Closing with ``batch`` not settled: keep on disk only what MDR did not take."""
        with self._lock:
            self._sent += batch.sent
            self._add_dropped(batch.refused)
        # on OSError it was released whole: the next process sends it, part of it perhaps twice
        with contextlib.suppress(OSError):
            spool.requeue(batch, batch.left)

    # ------------------------------------------------------------------ telling the user
    def _tell_losses(self) -> None:
        tick = self.tick
        if tick is not None:
            try:
                tick()
            except Exception:
                self.report_crash("the delivery's periodic task failed")
        if self._dropped or self._spool is not None:
            dropped = self.stats().dropped
            if dropped:
                self.reporter.losses(dropped, self._last_error)

    def _told_late(self) -> None:
        """A record arrived after close: say so once, right away (the worker is gone)."""
        if not self._late_reported:
            self._late_reported = True
            self._late_told += 1
            self.reporter.say(
                "a record was logged after close; records logged after close are not sent "
                "(counted as dropped 'closed')"
            )

    def report_late(self) -> None:
        """Tell how many records were logged after close since the last time it was told.

        Run at exit, and by the owner on every later close (``logging.shutdown`` closes
        handlers last of all, after exit hooks that may still log).
        """
        if not self._closed:
            return
        late = self.stats().dropped.get("closed", 0) - self._closed_at_close - self._late_told
        if late > 0:
            self._late_told += late
            self.reporter.say(f"{late} more record(s) logged after close were not sent")

    def _report_final(self, final: DeliveryStats) -> None:
        self._closed_at_close = final.dropped.get("closed", 0)
        left = final.spool_records
        unconfirmed = 0
        if self._unconfirmed is not None:
            try:
                unconfirmed = self._unconfirmed()
            except Exception:
                unconfirmed = 0
        self.reporter.final(
            sent=final.sent,
            dropped=final.dropped,
            in_flight=final.in_flight,
            left_in_spool=left,
            spool_dir=self._spool.directory if self._spool is not None else None,
            unconfirmed=unconfirmed,
            last_error=self._last_error,
        )

    def report_crash(self, what: str) -> None:
        """One traceback on stderr for a bug in our own code; later ones are only counted."""
        if self._crash_reported:
            return
        self._crash_reported = True
        stream = sys.stderr
        if stream is None:
            return
        try:
            stream.write(f"py-mdr: {what}:\n{traceback.format_exc()}")
            stream.flush()
        except Exception:  # stderr gone (interpreter exit): nothing left to tell
            pass

    # ------------------------------------------------------------------ process events
    def after_fork_in_child(self) -> None:
        closed = self._closed
        if self._spool is not None:
            self._spool.after_fork_in_child()
        self._reset()
        self._closed = closed
        hook = self.fork_hook
        if hook is not None and not closed:
            hook()

    def at_exit(self) -> None:
        if self._closed:
            self.report_late()
            return
        hook = self.exit_hook
        if hook is not None:
            hook()
        else:
            self.close(5.0)


def _ack_deadline() -> float:
    return _monotonic() + 30.0
