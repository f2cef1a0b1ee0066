"""The SIGTERM opt-in: :func:`drain_on_sigterm` sends what is queued, then ends the process.

py-mdr installs no signal handler by itself. With the opt-in, three things keep the handler
working where a plain Python handler would not:

- A forked child (a ``multiprocessing.Pool`` worker) runs with SIGTERM's default action until
  it queues its first record: it has nothing to drain before, and the default action ends it
  even while it waits for its next task (:func:`park_in_child`, :func:`unpark`). SIGTERM is
  blocked in the forking thread across ``fork``, so a SIGTERM sent to a child that is just being
  born waits for that default action instead of tripping the inherited handler and being lost.
- CPython runs a Python handler only when the main thread runs Python code. The kernel may hand
  SIGTERM to another thread, or deliver it just as the main thread starts waiting on a lock;
  a main thread blocked there (a ``Pool`` worker whose task queue ``Pool.terminate()`` keeps
  locked) would never run the handler, and the pool would wait for it forever. A watcher thread
  reads the signal numbers CPython writes to its wakeup fd; when SIGTERM's handler has not run
  shortly after, it sends SIGTERM to the main thread itself, which interrupts the wait.
- py-mdr's own threads block signals (:mod:`py_mdr.threads`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

from py_mdr.delivery import lifecycle
from py_mdr.threads import daemon_thread

__all__ = ["drain_on_sigterm", "park_in_child", "unpark"]

# How long the main thread gets to start the handler before the watcher repeats the signal.
NUDGE_AFTER = (0.25, 0.5, 1.0, 2.0, 4.0)

_parked_handler: Any = None  # the drain handler a forked child takes back with its first record
_handler_ran_at = float("-inf")  # time.monotonic() when the handler last started
_wakeup: tuple[int, int] | None = None  # the watcher's pipe (read end, write end), this process
_forking = threading.local()  # .blocked: SIGTERM was blocked by _before_fork in this thread


def drain_on_sigterm() -> None:
    """Opt in: let SIGTERM end the process through ``SystemExit``, so queued records are sent.

    Without it, SIGTERM's default action kills the process at once and only what already
    reached the spool survives. Call it in the main thread; it is also a ready
    ``multiprocessing.Pool(initializer=...)`` (``Pool.terminate()``, which leaving a
    ``with Pool()`` block calls, ends the workers with SIGTERM). A handler someone else
    installed is kept: py-mdr's queues are flushed (for at most 2 s), then it runs.
    An ignored SIGTERM stays ignored. Idempotent.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("drain_on_sigterm() must be called from the main thread")
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN or getattr(previous, "_py_mdr_drain", False):
        return
    signal.signal(signal.SIGTERM, _make_handler(previous if callable(previous) else None))
    _watch_for_missed_signals()


def _make_handler(chained: Any) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        global _handler_ran_at
        _handler_ran_at = time.monotonic()
        if lifecycle.exiting():
            # Already draining (e.g. a pool worker that got its stop sentinel, then SIGTERM
            # from Pool.terminate()): let it finish.
            return
        if chained is not None:
            lifecycle.flush_all(2.0)
            chained(signum, frame)
            return
        # Drain here, first: the exception below may land anywhere, even in the middle of
        # the exit code that would have drained.
        lifecycle.close_all()
        raise SystemExit(128 + signum)

    handler._py_mdr_drain = True  # type: ignore[attr-defined]
    handler._chained = chained is not None  # type: ignore[attr-defined]
    return handler


# ---------------------------------------------------------------- forked children


def _before_fork() -> None:
    _forking.blocked = False
    if getattr(signal.getsignal(signal.SIGTERM), "_py_mdr_drain", False):
        before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        _forking.blocked = signal.SIGTERM not in before


def _unblock_after_fork() -> None:
    if getattr(_forking, "blocked", False):
        _forking.blocked = False
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def park_in_child() -> None:
    """In a forked child: SIGTERM's default action while nothing is queued (see the module)."""
    try:
        _park()
    finally:
        _unblock_after_fork()  # a SIGTERM sent meanwhile is delivered now


def _park() -> None:
    global _parked_handler, _wakeup
    _parked_handler = None
    inherited, _wakeup = _wakeup, None
    try:
        if inherited is not None:  # the parent's watcher did not come along
            previous = signal.set_wakeup_fd(-1)
            if previous != inherited[1]:
                signal.set_wakeup_fd(previous)  # not ours any more: leave it as it was
            for fd in inherited:
                os.close(fd)
        current = signal.getsignal(signal.SIGTERM)
        if getattr(current, "_py_mdr_drain", False):
            _parked_handler = current
            if not getattr(current, "_chained", False):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError):  # not the main thread, or no signals here
        pass


def unpark() -> None:
    """When a delivery starts: give a forked child its drain handler (and watcher) back."""
    global _parked_handler
    handler = _parked_handler
    if handler is None or threading.current_thread() is not threading.main_thread():
        return
    _parked_handler = None
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, handler)
        if signal.getsignal(signal.SIGTERM) is handler:
            _watch_for_missed_signals()
    except (ValueError, OSError):
        pass


# ---------------------------------------------------------------- the watcher


def _watch_for_missed_signals() -> None:
    """Start the watcher, unless the platform lacks what it needs or the application already
    reads the wakeup fd itself (an asyncio loop with signal handlers)."""
    global _wakeup
    if _wakeup is not None or not hasattr(signal, "pthread_kill"):
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous: int | None = None  # None: this thread may not set it
    with contextlib.suppress(ValueError, OSError):
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    if previous != -1:  # taken already (or not settable): give it back, go without
        if previous is not None:
            signal.set_wakeup_fd(previous)
        os.close(read_end)
        os.close(write_end)
        return
    _wakeup = (read_end, write_end)
    main = threading.main_thread().ident
    daemon_thread(lambda: _watch(read_end, main), "py-mdr-sigterm").start()


def _watch(read_end: int, main_thread: int | None) -> None:
    echoes = 0  # SIGTERMs this thread sent itself, still to be read back
    while True:
        try:
            numbers = os.read(read_end, 256)
        except OSError:
            return
        if not numbers:
            return
        received = numbers.count(signal.SIGTERM)
        echoes, received = max(0, echoes - received), max(0, received - echoes)
        if received and main_thread is not None:
            echoes += _see_that_the_handler_runs(time.monotonic(), main_thread)


def _see_that_the_handler_runs(received: float, main_thread: int) -> int:
    """Repeat SIGTERM to the main thread until its handler starts; how many were sent."""
    # The handler usually runs before this thread even reads the signal's number: a start
    # within the last second counts as this signal's.
    sent = 0
    for delay in NUDGE_AFTER:
        time.sleep(delay)
        if _handler_ran_at > received - 1.0:
            break
        try:
            signal.pthread_kill(main_thread, signal.SIGTERM)
        except (OSError, ValueError):  # the main thread is gone: the process is ending
            break
        sent += 1
    return sent


if hasattr(os, "register_at_fork") and hasattr(signal, "pthread_sigmask"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_unblock_after_fork, after_in_child=park_in_child
    )
