"""One deadline for blocking socket I/O, however slowly the other side sends its bytes.

A socket timeout bounds each ``recv``, not a whole answer: a server that sends a byte now and
then keeps every ``recv`` short and the request endless. Here one daemon thread keeps a heap of
deadlines; when one passes, it shuts down the sockets attached to it, which makes a blocked
``recv`` or ``send`` return at once. The thread starts on first use, and again in a forked child.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from types import TracebackType

from py_mdr.threads import daemon_thread

__all__ = ["Deadline", "current_deadline"]

_local = threading.local()
_LONGEST_WAIT = 3600.0  # the thread looks again at least this often (threading's waits cap)


class Deadline:
    """A scope, ``with Deadline(at):``, whose attached sockets are shut down at ``at``.

    ``at`` is a ``time.monotonic()`` instant. Connections attach their socket through
    :func:`current_deadline`. Each socket is held as a duplicate descriptor, so that shutting it
    down can never reach a descriptor that was closed and reused meanwhile. ``fired`` says
    afterwards whether the deadline cut the I/O short.
    """

    __slots__ = ("_done", "_lock", "_outer", "_sockets", "at", "fired")

    def __init__(self, at: float) -> None:
        self.at = at
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._outer: Deadline | None = None

    def __repr__(self) -> str:
        return f"Deadline(in {self.at - time.monotonic():.3f} s, fired={self.fired})"

    def __enter__(self) -> Deadline:
        self._outer = getattr(_local, "deadline", None)
        _local.deadline = self
        _watchdog.watch(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _local.deadline = self._outer
        self._outer = None
        with self._lock:
            self._done = True
            sockets, self._sockets = self._sockets, []
        for twin in sockets:
            twin.close()
        _watchdog.forget()

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - time.monotonic()

    def attach(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline, or now if it already fired."""
        try:
            twin = socket.socket(fileno=socket.dup(sock.fileno()))
        except OSError:  # already closed: nothing left to cut
            return
        with self._lock:
            if not (self._done or self.fired):
                self._sockets.append(twin)
                return
            if self.fired:
                _shut(twin)
        twin.close()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for twin in self._sockets:
                _shut(twin)


def current_deadline() -> Deadline | None:
    """The innermost :class:`Deadline` this thread is in, if any."""
    deadline: Deadline | None = getattr(_local, "deadline", None)
    return deadline


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """The heap of pending deadlines and the thread that fires them."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        """Fresh state: in a forked child the parent's thread is gone and its lock may be held."""
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._ended = 0  # scopes that ended but are still in the heap
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def watch(self, deadline: Deadline) -> None:
        if self._pid != os.getpid():
            self.renew()
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None:
                self._start()
            elif self._heap[0][2] is deadline:
                self._cond.notify()

    def forget(self) -> None:
        """A scope ended: drop ended scopes once they make up most of the heap."""
        with self._cond:
            self._ended += 1
            if self._ended > 64 and 2 * self._ended > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2]._done]
                heapq.heapify(self._heap)
                self._ended = 0

    def _start(self) -> None:
        thread = daemon_thread(self._run, "py-mdr-deadlines")
        try:
            thread.start()
        except RuntimeError:  # at interpreter shutdown: socket timeouts still bound each wait
            return
        self._thread = thread

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                due = self._next_due()
            due._fire()

    def _next_due(self) -> Deadline:
        """Wait (holding the condition) until the earliest live deadline passes; pop it."""
        while True:
            heap = self._heap  # forget() may have rebuilt it while we waited
            if not heap:
                self._cond.wait()
                continue
            at, _, due = heap[0]
            if due._done:
                heapq.heappop(heap)
                self._ended = max(0, self._ended - 1)
                continue
            wait = at - time.monotonic()
            if wait <= 0:
                heapq.heappop(heap)
                return due
            self._cond.wait(min(wait, _LONGEST_WAIT))  # a wait too long to take would kill us


_watchdog = _Watchdog()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_watchdog.renew)
