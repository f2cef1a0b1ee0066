"""The handler's bounded queue and its one worker thread.

The logging thread only appends to a ``deque`` under a short lock; everything slow (mapping,
serializing, HTTP, retries) happens on the worker, which wakes when the first record arrives,
lingers up to ``linger`` seconds for a batch to fill (or until ``batch_size`` records or
``batch_bytes`` are waiting, or someone flushes), and hands the batch to ``process``. Memory is
bounded in records and in estimated bytes; what does not fit is dropped and counted by reason.

Lifecycle: the worker starts on the first ``put`` (never in a constructor), again after fork in
the child, and ends at ``close``. Live queues are drained at interpreter exit and reset in a
forked child (the parent still owns what it had queued); both registrations are weak.
"""

from __future__ import annotations

import atexit
import logging  # noqa: F401  # first, so that logging.shutdown runs after our exit hook
import os
import sys
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from py_mdr.hec.reports import SendReport
from py_mdr.internal import is_sending, sending

__all__ = ["Delivery", "DeliveryStats", "ProcessBatch"]

T = TypeVar("T")

#: ``process(items, deadline)``: send a batch; ``deadline`` is a ``time.monotonic()`` value while
#: closing (else None: the sender's own deadline applies). Returns what happened to the items.
ProcessBatch = Callable[[list[T], float | None], SendReport]

_IDLE_WAIT = 5.0  # an idle worker re-checks this often even without a wake-up (belt and braces)
_monotonic = time.monotonic


@dataclass(frozen=True)
class DeliveryStats:
    """A snapshot of the queue's counters (since start, or since fork in a child)."""

    queued: int = 0  # items accepted into the queue
    sent: int = 0  # items the receiver accepted
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> items lost
    retried: int = 0  # retry attempts the sender made
    queue_depth: int = 0  # items waiting now
    queue_bytes: int = 0  # their estimated size
    queue_peak: int = 0  # the most items ever waiting at once
    queue_bytes_peak: int = 0  # the largest estimated size ever waiting at once
    in_flight: int = 0  # items handed to the sender whose outcome is not known yet

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class Delivery(Generic[T]):
    """A queue bounded in items and bytes, drained in batches by one daemon thread.

    ``put`` never blocks unless ``block`` is set (then at most ``block_timeout`` seconds);
    ``flush`` and ``close`` are bounded by their timeouts. ``finish(deadline)``, when given, runs
    on the worker once the queue is drained at close (e.g. to await acknowledgements).
    """

    def __init__(
        self,
        process: ProcessBatch[T],
        *,
        max_records: int = 10_000,
        max_bytes: int = 16 * 1024 * 1024,
        batch_size: int = 500,
        batch_bytes: int = 1024 * 1024,
        linger: float = 0.5,
        block: bool = False,
        block_timeout: float = 60.0,
        name: str = "py-mdr-delivery",
        finish: Callable[[float], object] | None = None,
    ) -> None:
        for label, number in (
            ("max_records", max_records),
            ("max_bytes", max_bytes),
            ("batch_size", batch_size),
            ("batch_bytes", batch_bytes),
        ):
            if not (type(number) is int and number >= 1):
                raise ValueError(f"{label} must be an integer >= 1, got {number!r}")
        for label, seconds in (("linger", linger), ("block_timeout", block_timeout)):
            if not (isinstance(seconds, (int, float)) and 0 <= seconds < float("inf")):
                raise ValueError(f"{label} must be a number of seconds >= 0, got {seconds!r}")
        self._process = process
        self._finish = finish
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._batch_size = batch_size
        self._batch_bytes = batch_bytes
        self._linger = float(linger)
        self._block = bool(block)
        self._block_timeout = float(block_timeout)
        self._name = name
        #: Called at interpreter exit instead of ``close`` (the owner's close reports losses).
        self.exit_hook: Callable[[], object] | None = None
        #: Called in a forked child after the queue was reset (e.g. to renew connections).
        self.fork_hook: Callable[[], object] | None = None
        self._closed = False
        self._reset()
        _live.add(self)

    def _reset(self) -> None:
        """Fresh locks, queue and counters (construction, and a forked child)."""
        # Reentrant: a signal handler that logs while this thread is inside put() must not
        # deadlock on its own lock.
        self._lock = threading.RLock()
        self._done = threading.Condition(self._lock)  # notified when items finish
        self._room = threading.Condition(self._lock)  # notified when items leave (block mode)
        self._wake = threading.Event()
        self._queue: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._oldest = 0.0  # monotonic time the queue last went from empty to non-empty
        self._thread: threading.Thread | None = None
        self._closing = False
        self._stopping = False
        self._send_deadline: float | None = None
        self._flush_target = 0
        self._enqueued = 0
        self._finished = 0  # items taken out and done with, in queue order
        self._in_flight = 0
        self._sent = 0
        self._retried = 0
        self._dropped: dict[str, int] = {}
        self._peak = 0
        self._bytes_peak = 0
        self._crash_reported = False

    # ------------------------------------------------------------------ caller side
    def put(self, item: T, size: int) -> bool:
        """Queue ``item`` (``size``: its estimated bytes); False when it was dropped (counted)."""
        if self._thread is None and not self._closed:
            self._start()
        lock = self._lock
        lock.acquire()  # explicit acquire/release: a third of the cost of a `with` block here
        try:
            queue = self._queue
            count = len(queue)
            if count >= self._max_records or self._bytes + size > self._max_bytes or self._closed:
                if not self._make_room(size):
                    return False
                count = len(queue)
            queue.append((item, size))
            before = self._bytes
            self._bytes = after = before + size
            self._enqueued += 1
            count += 1
            if count > self._peak:
                self._peak = count
            if after > self._bytes_peak:
                self._bytes_peak = after
            if count == 1:
                self._oldest = _monotonic()
                self._wake.set()
            elif count == self._batch_size or before < self._batch_bytes <= after:
                self._wake.set()
            return True
        finally:
            lock.release()

    def _make_room(self, size: int) -> bool:
        """Called with the lock held when the item does not fit: wait (block mode) or count it."""
        reason = "queue_full"
        if self._closed:
            reason = "closed"
        elif size > self._max_bytes:
            reason = "oversize"  # could never fit, however long we waited
        elif self._block and not is_sending():
            deadline = _monotonic() + self._block_timeout
            while True:
                remaining = deadline - _monotonic()
                if remaining <= 0 or self._closed:
                    break
                self._room.wait(remaining)
                if len(self._queue) < self._max_records and self._bytes + size <= self._max_bytes:
                    return True
        self._dropped[reason] = self._dropped.get(reason, 0) + 1
        return False

    def count(self, reason: str, n: int = 1) -> None:
        """Count ``n`` items lost before they reached the queue (e.g. an error in ``emit``)."""
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + n

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued before this call was processed; False on timeout.

        From the worker thread itself (a sender's own code) it returns at once.
        """
        with self._lock:
            target = self._enqueued
            if self._finished >= target:
                return True
            if is_sending() or self._thread is None or self._closed:
                return False  # nobody to wait for (close already waited its time)
            if target > self._flush_target:
                self._flush_target = target
        self._wake.set()
        with self._done:
            return self._done.wait_for(lambda: self._finished >= target, max(0.0, timeout))

    def close(self, timeout: float, interrupt: Callable[[], object] | None = None) -> DeliveryStats:
        """Drain within ``timeout`` seconds, stop the worker, count what is left; idempotent.

        ``interrupt`` is called once the drain time is up, before the final wait for the worker:
        it should make a pending send return (closing the transport ends a retry backoff).
        Items still queued then are dropped as "shutdown"; a send that has not returned by the
        deadline is left to finish on its own (the worker is a daemon) and shows as in_flight.
        """
        timeout = max(0.0, float(timeout))
        deadline = _monotonic() + timeout
        grace = min(0.25, timeout / 5)  # time kept for the send to return after the interrupt
        with self._lock:
            if self._closed:
                return self._snapshot()
            self._closed = True
            self._closing = True
            self._send_deadline = deadline - grace
            self._room.notify_all()
            thread = self._thread
        own = thread is threading.current_thread()
        if thread is not None and not own:
            # The worker ends by itself once the queue is empty and ``finish`` ran: waiting for
            # the queue alone would stop it before ``finish`` (acknowledgements) had its turn.
            self._wake.set()
            thread.join(max(0.0, deadline - grace - _monotonic()))
        with self._lock:
            self._stopping = True
        self._wake.set()
        if interrupt is not None:
            try:
                interrupt()
            except Exception:  # closing must never fail the caller
                self._report_crash("interrupting the sender failed")
        if thread is not None and not own:
            thread.join(max(0.0, deadline - _monotonic()))
        with self._lock:
            left = len(self._queue)
            if left:
                self._dropped["shutdown"] = self._dropped.get("shutdown", 0) + left
                self._queue.clear()
                self._bytes = 0
                self._finished += left
                self._done.notify_all()
            return self._snapshot()

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> DeliveryStats:
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> DeliveryStats:
        return DeliveryStats(
            queued=self._enqueued,
            sent=self._sent,
            dropped=dict(self._dropped),
            retried=self._retried,
            queue_depth=len(self._queue),
            queue_bytes=self._bytes,
            queue_peak=self._peak,
            queue_bytes_peak=self._bytes_peak,
            in_flight=self._in_flight,
        )

    # ------------------------------------------------------------------ worker side
    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            # Claimed before start(), which waits for the thread: a signal handler logging on
            # this thread meanwhile re-enters put() and must not start a second worker.
            self._thread = thread
            try:
                thread.start()
            except RuntimeError:  # no more threads (or interpreter shutdown): items stay queued
                self._thread = None
                self._report_crash("the delivery thread could not be started")

    def _run(self) -> None:
        with sending():  # everything this thread logs (and its HTTP stack) stays out of MDR
            try:
                while True:
                    batch = self._take()
                    if batch is None:
                        break
                    self._send(batch)
                if self._finish is not None and not self._stopping:
                    self._finish(self._send_deadline or _monotonic())
            except Exception:
                self._report_crash("the delivery thread failed")
            finally:
                with self._lock:
                    if not self._closed and self._thread is threading.current_thread():
                        self._thread = None  # the next put starts a new worker
                    self._done.notify_all()

    def _take(self) -> list[tuple[T, int]] | None:
        """The next batch, once it is full, its linger time is up, or someone is waiting."""
        wake = self._wake
        queue = self._queue
        while True:
            wake.clear()  # before looking, so a put after the look wakes the wait below
            if self._stopping:
                return None
            count = len(queue)
            if not count:
                if self._closing:
                    return None
                wake.wait(_IDLE_WAIT)
                continue
            if not (
                count >= self._batch_size
                or self._bytes >= self._batch_bytes
                or self._closing
                or self._flush_target > self._finished
            ):
                remaining = self._oldest + self._linger - _monotonic()
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
                if queue:
                    self._oldest = _monotonic() - self._linger  # it waited already: no linger
                if self._block:
                    self._room.notify_all()
            return batch

    def _send(self, batch: list[tuple[T, int]]) -> None:
        items = [item for item, _ in batch]
        try:
            report = self._process(items, self._send_deadline)
        except Exception:
            self._report_crash("sending a batch failed")
            report = SendReport()
            report.drop("error", len(items))
        with self._lock:
            self._sent += report.delivered
            self._retried += report.retries
            dropped = self._dropped
            for reason, number in report.dropped.items():
                dropped[reason] = dropped.get(reason, 0) + number
            self._finished += len(items)
            self._in_flight = 0
            self._done.notify_all()

    def _report_crash(self, what: str) -> None:
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
    def _after_fork_in_child(self) -> None:
        closed = self._closed
        self._reset()
        self._closed = closed
        hook = self.fork_hook
        if hook is not None and not closed:
            hook()

    def _at_exit(self) -> None:
        hook = self.exit_hook
        if hook is not None:
            hook()
        else:
            self.close(5.0)


_live: weakref.WeakSet[Delivery[Any]] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for delivery in list(_live):
        try:
            delivery._at_exit()
        except Exception:  # one broken queue must not keep the others from draining
            delivery._report_crash("closing at exit failed")


def _reset_all_in_child() -> None:
    for delivery in list(_live):
        try:
            delivery._after_fork_in_child()
        except Exception:
            delivery._report_crash("resetting after fork failed")


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_in_child)
