"""The bounded hand-off between ``py-mdr send``'s reader thread and its sender."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from py_mdr.cli.input import Item
from py_mdr.cli.prepare import Noted, Rejected, SendSettings, prepare


class Handoff:
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


def produce(items: Iterator[Item], settings: SendSettings, handoff: Handoff) -> None:
    """The reader thread: prepare every item and hand it over, until the sender stops."""
    try:
        for item in items:
            if not handoff.put(prepare(item, settings)):
                return
    except Exception as exc:  # reading broke in a way read_items did not foresee: say so
        handoff.put(Rejected("input", f"reading stopped: {type(exc).__name__}: {exc}"))
    finally:
        handoff.close()
