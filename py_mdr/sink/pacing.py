"""Writing an answer one byte at a time: the receiver that keeps every read short and the
request long, which socket timeouts alone cannot bound."""

from __future__ import annotations

import io
import threading
from typing import Any

__all__ = ["TrickleWriter"]


class TrickleWriter(io.BufferedIOBase):
    """Passes writes on to ``out`` one byte every ``interval`` seconds until ``stop`` is set.

    The first byte goes out at once. Once ``stop`` is set a write raises
    ``ConnectionAbortedError``, so the connection is given up as if the client had left.
    """

    def __init__(self, out: io.BufferedIOBase, interval: float, stop: threading.Event) -> None:
        super().__init__()
        self._out = out
        self._interval = interval
        self._stop = stop
        self._started = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        for offset in range(len(chunk)):
            if self._stop.is_set() or (self._started and self._stop.wait(self._interval)):
                raise ConnectionAbortedError("the receiver is stopping")
            self._started = True
            self._out.write(chunk[offset : offset + 1])
            self._out.flush()
        return len(chunk)

    def flush(self) -> None:
        self._out.flush()
