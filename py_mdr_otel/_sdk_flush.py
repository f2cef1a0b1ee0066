"""Make the SDK's ``force_flush`` wait for py-mdr's delivery, not only for ``export()``.

An exporter's ``export()`` only queues (py-mdr's worker sends), and the SDK's processors flush
by calling ``export()``: their ``force_flush`` (in the SDK releases this package supports)
never calls the exporter's own. So ``provider.force_flush()`` would return while the records
still sit in py-mdr's queue, and a process that flushes and then ends with ``os._exit`` (a
forked worker, a serverless handler) would lose them. The processor that calls ``export()``
first is found on the stack, once, and its ``force_flush`` then flushes the exporter too.
"""

from __future__ import annotations

import contextlib
from types import FrameType
from typing import Any, Protocol

__all__ = ["chain_sdk_flush"]

_FRAMES = 6  # how far up from export() the processor's frame may be
_DEFAULT_MILLIS = 30_000  # when the SDK's force_flush was given no timeout


class _Flushable(Protocol):
    def force_flush(self, timeout_millis: int = ...) -> bool: ...


def chain_sdk_flush(exporter: _Flushable, frame: FrameType | None) -> None:
    """From ``frame`` (``export()`` or its caller) up: chain the ``force_flush`` of the first
    object whose ``_exporter`` is ``exporter``; nothing when there is none."""
    for _ in range(_FRAMES):
        if frame is None:
            return
        owner = frame.f_locals.get("self")
        if owner is not None and getattr(owner, "_exporter", None) is exporter:
            _chain(owner, exporter)
            return
        frame = frame.f_back


def _chain(processor: Any, exporter: _Flushable) -> None:
    original = getattr(processor, "force_flush", None)
    if original is None or getattr(original, "_py_mdr_chained", False):
        return

    def force_flush(*args: Any, **kwargs: Any) -> bool:
        handed_over = original(*args, **kwargs)
        millis = kwargs.get("timeout_millis", args[0] if args else None)
        if not isinstance(millis, (int, float)) or isinstance(millis, bool) or millis < 0:
            millis = _DEFAULT_MILLIS
        return exporter.force_flush(int(millis)) and handed_over is not False

    force_flush._py_mdr_chained = True  # type: ignore[attr-defined]
    with contextlib.suppress(AttributeError, TypeError):  # slots, or a frozen object: as it is
        processor.force_flush = force_flush
