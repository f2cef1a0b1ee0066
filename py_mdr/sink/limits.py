"""How much request body the receiver holds in memory at once, across all its connections.

Each connection reserves its body's size before reading it and gives it back once the request
is handled, so many large bodies at once wait their turn instead of all sitting in memory: the
receiver's peak stays near the budget (plus one body's working copies), whatever clients send.
A body larger than the whole budget still goes through, alone.
"""

from __future__ import annotations

import threading
import time

__all__ = ["ByteBudget", "Reservation"]


class ByteBudget:
    """A count of bytes in use, capped at ``limit``; thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._closed = False
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        with self._cond:
            return self._used

    def take(self, size: int, timeout: float) -> bool:
        """Reserve ``size`` bytes, waiting up to ``timeout`` s for room; False if none came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._fits(size):
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    return False
                self._cond.wait(left)
            self._used += size
            return True

    def grow(self, size: int, held: int = 0) -> bool:
        """Reserve ``size`` more bytes for a holder of ``held`` if they fit now, or if it is the
        only holder. Never waits: two holders each waiting for the other's share would wait
        for ever."""
        with self._cond:
            alone = self._used == held
            if self._closed or (self._used + size > self.limit and not alone):
                return False
            self._used += size
            return True

    def give(self, size: int) -> None:
        """Return bytes taken with :meth:`take` or :meth:`grow`."""
        if size <= 0:
            return
        with self._cond:
            self._used = max(0, self._used - size)
            self._cond.notify_all()

    def close(self) -> None:
        """Wake every waiter; from now on nothing more is handed out."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _fits(self, size: int) -> bool:
        return self._used == 0 or self._used + size <= self.limit


class Reservation:
    """One request's share of a :class:`ByteBudget`, returned whole by :meth:`release`."""

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self.held = 0

    def take(self, size: int, timeout: float) -> bool:
        if not self._budget.take(size, timeout):
            return False
        self.held += size
        return True

    def grow(self, size: int) -> bool:
        if not self._budget.grow(size, self.held):
            return False
        self.held += size
        return True

    def release(self) -> None:
        self._budget.give(self.held)
        self.held = 0
