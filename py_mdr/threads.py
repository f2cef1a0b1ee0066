"""py-mdr's background threads leave the process's signals to the application's main thread.

The kernel hands a signal sent to the process (SIGTERM, SIGINT, ...) to any one of its threads
that does not block it. If that is a py-mdr thread, Python still runs the handler in the main
thread, but only once the main thread runs Python code again: a main thread blocked in a lock
or a read (a ``multiprocessing.Pool`` worker waiting for its next task) is not woken, so the
handler never runs and the process never ends. py-mdr's threads block those signals, so the
kernel hands them to a thread that can act on them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from contextlib import suppress

__all__ = ["block_signals", "daemon_thread"]

# Raised by a thread's own fault (a bad memory access, an abort): never left to another thread.
_FAULTS = frozenset(
    getattr(signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS", "SIGABRT")
    if hasattr(signal, name)
)


def daemon_thread(target: Callable[[], object], name: str) -> threading.Thread:
    """A daemon thread, not started yet, that runs ``target`` with the process's signals
    blocked (see the module's docstring)."""
    return threading.Thread(target=_run_blocked, args=(target,), name=name, daemon=True)


def block_signals() -> None:
    """Block every signal but the faults in the calling thread (where the platform can)."""
    if hasattr(signal, "pthread_sigmask"):
        with suppress(OSError, ValueError):
            signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals() - _FAULTS)


def _run_blocked(target: Callable[[], object]) -> None:
    block_signals()
    target()
