"""The logging call's ``contextvars``, carried to the OpenTelemetry exporter's processors.

OpenTelemetry's logging handler turns a record into an OTel record on the logging thread, and
the exporter sees it later on the SDK's export thread, where the application's context
variables (a request id, a tenant) are gone. Once an exporter has processors, a record factory
keeps a copy of each logging call's context under a small integer that travels as the record
attribute ``py_mdr_context``; the exporter takes the context back by that number. At most
``MAX_CONTEXTS`` are kept: records the exporter never sees do not pile up.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import threading
from typing import Any

from py_mdr.internal import is_sending

__all__ = ["CONTEXT_ATTRIBUTE", "MAX_CONTEXTS", "capture_contexts", "take_context"]

#: The record attribute (and OTel attribute) holding the number of a kept context.
CONTEXT_ATTRIBUTE = "py_mdr_context"
MAX_CONTEXTS = 10_000

_contexts: dict[int, contextvars.Context] = {}
_numbers = itertools.count(1)
_lock = threading.Lock()
_installed = False


def capture_contexts() -> None:
    """Keep the context of every logging call from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if not is_sending():
                number = next(_numbers)
                _contexts[number] = contextvars.copy_context()
                if len(_contexts) > MAX_CONTEXTS:
                    # another thread may be evicting at the same moment: one of us wins
                    with contextlib.suppress(RuntimeError, KeyError, StopIteration):
                        del _contexts[next(iter(_contexts))]
                setattr(record, CONTEXT_ATTRIBUTE, number)
            return record

        logging.setLogRecordFactory(factory)


def take_context(number: object) -> contextvars.Context | None:
    """The context kept under ``number`` (forgotten now); None when it is not known."""
    if type(number) is not int:
        return None
    return _contexts.pop(number, None)
