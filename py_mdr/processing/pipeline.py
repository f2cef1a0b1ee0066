"""The processing step every door runs on its worker: the user's processors, then redaction.

A processor is a plain callable taking the event dict (after mapping, before serialization) and
returning it, a changed one, or ``None`` to drop the event (counted as dropped ``processor``).
One that raises is counted, its traceback shown once on stderr, and the event goes on as it was.
Processors run inside the ``contextvars`` context of the logging call when the door captured
one, so they can read what the application set for the request that logged. Redaction runs
last, so nothing a processor adds escapes it.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from py_mdr.config import ConfigError
from py_mdr.processing.redact import Redaction, Redactor

__all__ = ["Pipeline", "Processor", "check_processors"]

#: ``processor(event) -> event | None``
Processor = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def check_processors(processors: object) -> tuple[Processor, ...]:
    """The argument ``processors=`` as a tuple of callables, or ConfigError naming the bad one."""
    if processors is None:
        return ()
    if callable(processors) or isinstance(processors, (str, bytes)):
        raise ConfigError(
            "processors must be a list of callables (each takes the event dict and returns it, "
            f"a changed one, or None), got {processors!r}"
        )
    try:
        items: tuple[Any, ...] = tuple(processors)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"processors must be a list of callables, got {processors!r}") from None
    for index, item in enumerate(items):
        if not callable(item):
            raise ConfigError(
                f"processors[{index}] is not callable ({item!r}); give functions that take the "
                "event dict and return it, a changed one, or None"
            )
    return items


class Pipeline:
    """Runs the processors and the redactor on one event; counts what they did."""

    def __init__(
        self,
        processors: Iterable[Processor] = (),
        redaction: Redaction | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        """``processors`` run in order on each event, then ``redaction`` (default rules when None);
        ``secrets`` (the token) are always replaced wherever they appear."""
        self.processors = tuple(processors)
        self.redactor = Redactor(redaction or Redaction(), secrets)
        self.active = bool(self.processors) or self.redactor.enabled
        self.errors = 0
        self.dropped = 0
        self._shown = False
        self._lock = threading.Lock()

    def __call__(
        self, event: dict[str, Any], context: contextvars.Context | None = None
    ) -> dict[str, Any] | None:
        for processor in self.processors:
            try:
                result = processor(event) if context is None else context.run(processor, event)
            except Exception:
                self._failed(processor)
                continue
            if result is None:
                with self._lock:
                    self.dropped += 1
                return None
            if type(result) is not dict:
                self._failed(processor, f"returned {type(result).__name__}, not a dict")
                continue
            event = result
        return self.redactor.event(event)

    def _failed(self, processor: Processor, why: str | None = None) -> None:
        with self._lock:
            self.errors += 1
            if self._shown:
                return
            self._shown = True
        name = getattr(processor, "__qualname__", None) or repr(processor)
        detail = why or traceback.format_exc().rstrip()
        stream = sys.stderr
        if stream is None:
            return
        try:
            stream.write(
                f"py-mdr: the processor {name} failed (shown once; the event was sent as it "
                f"was, further failures are only counted):\n{detail}\n"
            )
            stream.flush()
        except Exception:
            pass
