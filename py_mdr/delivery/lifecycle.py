"""Process events every live delivery goes through: interpreter exit, fork, multiprocessing exit.

- Interpreter exit (``atexit``): every live delivery drains within its close timeout.
- ``fork``: the child gets empty queues and its own worker; the parent keeps what it queued.
- ``multiprocessing`` children started by fork or forkserver end through ``os._exit``, so
  ``atexit`` never runs there; multiprocessing runs its own finalizers first, and one of them is
  ours (registered when a worker starts inside such a child).
- SIGTERM: its default action kills the process without running any exit code. py-mdr installs
  no signal handler by itself; :func:`drain_on_sigterm` is the opt-in that turns SIGTERM into an
  orderly exit (``SystemExit``), e.g. for the workers of a ``with Pool()`` block.
"""

from __future__ import annotations

import atexit
import logging  # noqa: F401  # imported first, so that logging.shutdown runs after our exit hook
import os
import signal
import sys
import threading
import weakref
from types import FrameType
from typing import Any, Protocol

__all__ = ["drain_on_sigterm", "register", "worker_started"]


class _Managed(Protocol):
    def at_exit(self) -> None: ...
    def after_fork_in_child(self) -> None: ...
    def flush(self, timeout: float) -> bool: ...
    def report_crash(self, what: str) -> None: ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_finalizer_pid = 0
_exiting = False  # set once this process started draining at exit


def register(delivery: _Managed) -> None:
    """Drain ``delivery`` at exit and reset it in a forked child (weakly held)."""
    _live.add(delivery)


def close_all() -> None:
    """Drain every live delivery (interpreter exit, multiprocessing child exit)."""
    global _exiting
    _exiting = True
    for delivery in list(_live):
        try:
            delivery.at_exit()
        except Exception:  # one broken delivery must not keep the others from draining
            delivery.report_crash("closing at exit failed")


# A forked child inherits drain_on_sigterm's handler; until it has something to drain, it runs
# with SIGTERM's default action instead (see _park_sigterm).
_parked_handler: Any = None


def _reset_all_in_child() -> None:
    global _finalizer_pid, _exiting
    _finalizer_pid = 0
    _exiting = False
    _park_sigterm()
    for delivery in list(_live):
        try:
            delivery.after_fork_in_child()
        except Exception:
            delivery.report_crash("resetting after fork failed")


def _park_sigterm() -> None:
    """In a forked child: put SIGTERM back to its default action while nothing is queued.

    CPython runs a Python signal handler only between bytecodes, and a signal that arrives
    just as the main thread starts waiting on a lock is not seen until the wait ends: an idle
    ``multiprocessing.Pool`` worker that ``Pool.terminate()`` signals at that moment never
    ends, and the pool waits for it. A child with nothing to drain needs no handler; the first
    delivery it starts puts the handler back (:func:`worker_started`).
    """
    global _parked_handler
    _parked_handler = None
    try:
        current = signal.getsignal(signal.SIGTERM)
        if getattr(current, "_py_mdr_drain", False) and not getattr(current, "_chained", False):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _parked_handler = current
    except (ValueError, OSError):  # not the main thread, or no signals here
        pass


def _unpark_sigterm() -> None:
    global _parked_handler
    handler = _parked_handler
    if handler is None or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, handler)
        _parked_handler = None
    except (ValueError, OSError):
        pass


def worker_started() -> None:
    """Called when a worker starts: inside a multiprocessing child, drain at its exit too (and
    on SIGTERM, with :func:`drain_on_sigterm`)."""
    global _finalizer_pid
    _unpark_sigterm()
    pid = os.getpid()
    if _finalizer_pid == pid:
        return
    _finalizer_pid = pid
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:
        return
    try:
        if multiprocessing.parent_process() is None:
            return
        from multiprocessing import util

        # multiprocessing clears its finalizers when a child starts, so this registers late,
        # on the first record, and runs before the child's os._exit.
        util.Finalize(None, close_all, exitpriority=100)
    except Exception:  # an unusual multiprocessing set-up: atexit still covers normal exits
        pass


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Already draining (e.g. a pool worker that got its stop sentinel, then SIGTERM from
    # Pool.terminate()): let it finish. Otherwise drain first, here: the exception below may
    # land anywhere, even in the middle of the exit code that would have drained.
    if _exiting:
        return
    close_all()
    raise SystemExit(128 + signum)


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
    if callable(previous):
        chained = previous

        def handler(signum: int, frame: FrameType | None) -> None:
            if _exiting:
                return
            for delivery in list(_live):
                try:
                    delivery.flush(2.0)
                except Exception:
                    delivery.report_crash("flushing on SIGTERM failed")
            chained(signum, frame)

    else:

        def handler(signum: int, frame: FrameType | None) -> None:
            _exit_on_sigterm(signum, frame)

    handler._py_mdr_drain = True  # type: ignore[attr-defined]
    handler._chained = callable(previous)  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, handler)


atexit.register(close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_in_child)
