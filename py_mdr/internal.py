"""Marking the library's own activity, so its log lines (and its HTTP stack's) never loop back.

While a thread is inside :func:`sending`, log records it creates carry
``record.py_mdr_internal = True`` (once :func:`install_record_marker` ran); py-mdr's handler and
exporter drop such records instead of sending them. The OpenTelemetry logging handlers copy
extra record attributes into the OTel record's attributes, so the mark survives that door too.

Inside :func:`sending`, OpenTelemetry instrumentation is also suppressed (when OpenTelemetry is
loaded at all), as the SDK does around its own exporters: py-mdr's HTTP requests never become
spans, so the span exporter never exports its own sending.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

#: The record attribute (and OTel attribute) that marks py-mdr's own records.
INTERNAL_ATTRIBUTE = "py_mdr_internal"


class _State(threading.local):
    """Per-thread flag; a class attribute default keeps ``is_sending`` a plain lookup (~0.1 us)."""

    active = False


_state = _State()
#: The per-thread flag itself (``thread_state.active``), for a caller that cannot spare a call.
thread_state = _state
_install_lock = threading.Lock()


@contextmanager
def sending() -> Iterator[None]:
    """Mark the current thread as doing py-mdr's own I/O for the duration of the block."""
    previous = _state.active
    _state.active = True
    quiet = _suppress_instrumentation()
    try:
        yield
    finally:
        if quiet is not None:
            _restore_instrumentation(quiet)
        _state.active = previous


def _suppress_instrumentation() -> tuple[Any, object] | None:
    """Turn OpenTelemetry instrumentation off in the current context; what undoes it, or None.

    Only when OpenTelemetry is loaded already (``import py_mdr`` never loads it) and not
    suppressed yet. The key is the API's, the one the SDK's own export paths set and every
    instrumentation checks.
    """
    context = sys.modules.get("opentelemetry.context")
    if context is None:
        return None
    try:
        key = context._SUPPRESS_INSTRUMENTATION_KEY
        if context.get_value(key):
            return None
        return context, context.attach(context.set_value(key, True))
    except Exception:  # a half-imported or foreign module: sending must go on regardless
        return None


def _restore_instrumentation(quiet: tuple[Any, object]) -> None:
    context, token = quiet
    with suppress(Exception):
        context.detach(token)


def is_sending() -> bool:
    """True inside :func:`sending` on this thread."""
    return _state.active


def is_internal_record(record: logging.LogRecord) -> bool:
    """True for a record created inside :func:`sending` (or by this thread while sending now)."""
    return bool(getattr(record, INTERNAL_ATTRIBUTE, False)) or is_sending()


def install_record_marker() -> None:
    """Wrap the logging record factory to tag records created inside :func:`sending`.

    Idempotent: a probe record made through the current factory shows whether a marker is
    already in the chain (possibly under factories other libraries stacked on top since), so
    repeated calls never stack a second wrapper. The previous factory is always called first.
    """
    with _install_lock:
        if _marker_active():
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if _state.active:
                record.py_mdr_internal = True
            return record

        logging.setLogRecordFactory(factory)


def _marker_active() -> bool:
    previous = _state.active
    _state.active = True
    try:
        probe = logging.getLogRecordFactory()(
            "py_mdr.probe", logging.DEBUG, __file__, 0, "probe", (), None
        )
    except Exception:  # a foreign factory that cannot make a plain record: wrap it anyway
        return False
    finally:
        _state.active = previous
    return getattr(probe, INTERNAL_ATTRIBUTE, False) is True
