"""Process events every live delivery goes through: interpreter exit, fork, multiprocessing exit.

- Interpreter exit (``atexit``): every live delivery drains within its close timeout.
- ``fork``: the child gets empty queues and its own worker; the parent keeps what it queued.
- ``multiprocessing`` children started by fork or forkserver end through ``os._exit``, so
  ``atexit`` never runs there; multiprocessing runs its own finalizers first, and one of them is
  ours (registered when a worker starts inside such a child).
- SIGTERM: its default action kills the process without running any exit code; the opt-in
  that drains first is in :mod:`~py_mdr.delivery.sigterm`.
"""

from __future__ import annotations

import atexit
import logging  # noqa: F401  # imported first, so that logging.shutdown runs after our exit hook
import os
import sys
import weakref
from typing import Any, Protocol

__all__ = ["close_all", "exiting", "flush_all", "register", "worker_started"]


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


def exiting() -> bool:
    """Whether this process started draining at exit."""
    return _exiting


def flush_all(timeout: float) -> None:
    """Send what every live delivery holds, waiting up to ``timeout`` for each."""
    for delivery in list(_live):
        try:
            delivery.flush(timeout)
        except Exception:
            delivery.report_crash("flushing failed")


def close_all() -> None:
    """Drain every live delivery (interpreter exit, multiprocessing child exit)."""
    global _exiting
    _exiting = True
    for delivery in list(_live):
        try:
            delivery.at_exit()
        except Exception:  # one broken delivery must not keep the others from draining
            delivery.report_crash("closing at exit failed")


def _reset_all_in_child() -> None:
    global _finalizer_pid, _exiting
    _finalizer_pid = 0
    _exiting = False
    for delivery in list(_live):
        try:
            delivery.after_fork_in_child()
        except Exception:
            delivery.report_crash("resetting after fork failed")


def worker_started() -> None:
    """Called when a worker starts: inside a multiprocessing child, drain at its exit too."""
    global _finalizer_pid
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


atexit.register(close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_in_child)
