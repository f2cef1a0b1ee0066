"""stdlib ``logging.LogRecord`` to an OCSF Event Log Activity dict, in two steps.

On the logging thread, inside ``Handler.emit``, only what cannot wait is frozen (the formatted
message, the exception text, the OS thread id, the intake time, the sequence number): by
:func:`intake` for a plain record (the usual case, and the cheapest), by :func:`compact` for
any other, by :func:`capture` on the record itself when a subclass maps it. On the worker,
:func:`complete` turns intake's tuple into the same :class:`LogItem` compact gives, and
:func:`item_to_event` builds the event as a plain dict already in serialized form.
See https://schema.ocsf.io/1.3.0/classes/event_log
"""

from __future__ import annotations

import itertools
import logging
import operator
import os
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any, NamedTuple

from py_mdr import __version__
from py_mdr.delivery.sizing import NUMBER_SIZE as _NUMBER_SIZE
from py_mdr.delivery.sizing import STR_SIZE as _STR_SIZE
from py_mdr.delivery.sizing import estimate_size
from py_mdr.eventlog import (
    FIXED_PART,
    LOG_PROVIDER,
    MAX_STRING,
    OCSF_VERSION,
    clean_text,
    default_product,
    device,
    endpoint,
    envelope_time,
    event_uid,
    exception_info,
    fallback_event,
    file_information,
    fit_message,
    local_host,
    metadata,
    ms_from_seconds,
    next_sequence,
    os_user,
    sequence_counter,
)
from py_mdr.plain import plain_fields, safe_repr, safe_str
from py_mdr.processing.contexts import CONTEXT_ATTRIBUTE
from py_mdr.severity import from_python_level

__all__ = [
    "EVENT_TIME",
    "LogItem",
    "capture",
    "compact",
    "complete",
    "default_product",
    "envelope_time",
    "intake",
    "item_to_event",
    "record_to_event",
]

#: The one attribute :func:`capture` adds: ``(sequence, native thread id, intake time, exception)``.
CAPTURED = "_py_mdr"

# Attributes every LogRecord has (plus what formatters and capture() add); anything else on a
# record came from `extra=`, a LoggerAdapter or a record factory, and goes to `unmapped.extra`.
_FRESH = vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))
STANDARD_ATTRIBUTES = frozenset(_FRESH).union(
    {"message", "asctime", "taskName", CAPTURED, CONTEXT_ATTRIBUTE}
)
#: An ``extra=`` key whose value (POSIX seconds) is the event's ``time`` in place of the record's
#: creation; it is not sent as a key-value pair. ``py_mdr.structlog`` passes structlog's
#: timestamp this way (a record's ``created`` cannot be set through ``extra=``).
EVENT_TIME = "_py_mdr_time"


_get_native_id = threading.get_native_id
_sequence = sequence_counter()
_now = time.time


def capture(record: logging.LogRecord) -> None:
    """Freeze on the caller's thread what the worker cannot recover later; cheap and never raises.

    The exception is formatted now and ``exc_info`` cleared (``exc_text`` keeps the text for
    other handlers' formatters), so a queued record does not keep tracebacks and their frames
    alive. Calling it twice on one record is harmless.
    """
    data = record.__dict__
    if CAPTURED in data:
        return
    try:
        message = record.getMessage()
    except Exception:
        message = _unformatted(record)
    data["message"] = message
    exc_info = data.get("exc_info")
    try:
        exception = _freeze_exception(record, exc_info) if exc_info is not None else None
    except Exception:  # exc_info or exc_text set to something hostile by hand
        exception = None
    data[CAPTURED] = (next_sequence(), _get_native_id(), _now(), exception)


def _unformatted(record: logging.LogRecord) -> str:
    # A format that fails (wrong argument count, a broken __str__) still yields readable text.
    text = safe_str(getattr(record, "msg", ""))
    args = getattr(record, "args", None)
    if args is None or (type(args) is tuple and not args):
        return text
    if isinstance(args, tuple):
        shown = ", ".join([safe_repr(arg) for arg in args])
    else:  # a mapping, or something odd; its truth value is not asked (it may raise)
        shown = safe_repr(args)
    return f"{text} | args: {shown}"


def _freeze_exception(record: logging.LogRecord, exc_info: Any) -> dict[str, Any] | None:
    exception, text = _exception_of(record, exc_info)
    if exception is not None or text is not None:
        record.exc_text = text or None
        record.exc_info = None
    return exception


def _exception_of(record: Any, exc_info: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The exception's OCSF summary and its text, formatted now; the record is not changed."""
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3:
        return None, None
    kind, value, tb = exc_info
    if kind is None and value is None:
        return None, None
    text = record.__dict__.get("exc_text")
    if type(text) is not str or not text:
        try:
            text = "".join(traceback.format_exception(kind, value, tb)).rstrip("\n")
        except Exception:  # a foreign exception object may break formatting in odd ways
            text = ""
    name = getattr(kind, "__name__", None) if kind is not None else type(value).__name__
    if not isinstance(name, str):
        name = safe_str(kind)
    message = safe_str(value) if value is not None else ""
    return exception_info(name, message, text) or None, text


class LogItem(NamedTuple):
    """What the worker needs of a ``LogRecord``, frozen on the logging thread by :func:`compact`.

    A fraction of the record's memory (no ``args``, no traceback, no per-record ``__dict__``),
    so a bounded queue holds a burst of tens of thousands of records. The field names are the
    ``LogRecord``'s, so the mapping reads either.
    """

    name: Any
    levelno: Any
    levelname: Any
    pathname: Any
    lineno: Any
    funcName: Any
    module: Any
    created: Any
    process: Any
    processName: Any
    threadName: Any
    stack_info: Any
    taskName: Any
    message: str
    captured: tuple[Any, ...]
    extra: dict[Any, Any] | None
    exc_text: str | None
    context: Any = None  # the logging call's contextvars.Context, when processors need it
    repeat: tuple[int, float, float] | None = None  # a folded run: (count, first, last) seconds


_new_item = tuple.__new__
# The attributes every LogRecord has, read in one call (in LogItem's order).
_STANDARD_NAMES = LogItem._fields[:12]
_STANDARD = operator.itemgetter(*_STANDARD_NAMES)
_MISSING = (None,) * 12


def compact(record: logging.LogRecord, context: Any = None) -> LogItem:
    """Freeze ``record`` into a :class:`LogItem` on the caller's thread; never raises.

    Unlike :func:`capture`, the record is left as it was (other handlers still see its
    ``exc_info``), so it need not be copied. ``context`` is kept for the processors. The
    handler takes this way for the records :func:`intake` leaves (an exception, a formatter,
    another record class); it asks the kernel for the thread id once per thread.
    """
    data = record.__dict__
    get = data.get
    plain = type(record) is _LogRecord
    try:
        standard = _STANDARD(data)
    except KeyError:  # a record someone took attributes away from
        standard = tuple(get(key) for key in _STANDARD_NAMES) if data else _MISSING
        plain = False
    captured = get(CAPTURED)
    if captured is not None:  # captured before (e.g. by another py-mdr handler): reuse it
        message = get("message")
        if type(message) is not str:
            message = safe_str(message)
        text = get("exc_text")
        if type(text) is not str:
            text = None
    else:
        try:
            message = record.getMessage()
        except Exception:
            message = _unformatted(record)
        exc_info = get("exc_info")
        exception = text = None
        if exc_info is not None:
            try:
                exception, text = _exception_of(record, exc_info)
            except Exception:  # exc_info set to something hostile by hand
                exception = text = None
        try:
            tid = _thread_ids.tid
        except AttributeError:
            tid = _thread_ids.tid = _get_native_id()
        captured = (next(_sequence), tid, _now(), exception)
    extra = None
    if len(data) > _FRESH_SIZE:
        extra = _plain_extras(data) if plain else _extras_of(data)
    return _new_item(
        LogItem,
        (*standard, get("taskName"), message, captured, extra, text, context, None),
    )


#: A plain record as :func:`intake` queues it: the record's attribute dict, its message, the
#: sequence number, the OS thread id, the intake time, the logging call's context and the
#: estimated bytes it keeps alive. :func:`complete` turns it into a :class:`LogItem`. One flat
#: tuple and the record's dict (not the record) stay queued: fewer objects for the garbage
#: collector to visit while they wait.
Pending = tuple[dict[str, Any], str, int, int, float, Any, int]

#: Estimated bytes of a queued plain record without its message and ``extra=`` values: its
#: dict with the standard attributes, the arguments, the numbers and our tuple.
PENDING_SIZE = 1024


def intake(record: logging.LogRecord, context: Any = None) -> Pending | None:
    """The least the logging thread must do for a plain record; None when it needs :func:`compact`.

    Only what can change after the call is frozen here: the message (its arguments may be
    mutable), the thread, the time and the sequence; and the record's size is estimated for
    the queue's bound. The record's other attributes stay in its dict, as no handler changes
    them (formatters only add ``message``, ``asctime`` and ``exc_text``), and :func:`complete`
    reads them on the worker. A record with an exception, one captured before, one of
    another class or one whose message fails goes to :func:`compact`, which handles each.
    Every logging call runs this, so it is written for speed.
    """
    data = record.__dict__
    if type(record) is not _LogRecord or CAPTURED in data or data.get("exc_info") is not None:
        return None
    try:
        message = data["msg"]
        if type(message) is not str:
            message = str(message)
        args = data["args"]
        if args:
            message = message % args
        if type(message) is not str:
            return None
    except Exception:
        return None
    try:
        tid = _thread_ids.tid
    except AttributeError:
        tid = _thread_ids.tid = _get_native_id()
    size = PENDING_SIZE + len(message)
    if len(data) > _FRESH_SIZE:  # extra= values: strings and numbers sized here, the rest walked
        for value in _islice(data.values(), _FRESH_SIZE, None):
            kind = type(value)
            if kind is str:
                size += _STR_SIZE + len(value)
            elif kind is int or kind is float or kind is bool or value is None:
                size += _NUMBER_SIZE
            else:
                size += estimate_size(value)
    return (data, message, next(_sequence), tid, _now(), context, size)


def complete(pending: Pending) -> LogItem:
    """The :class:`LogItem` of a record queued by :func:`intake` (on the worker, usually)."""
    data, message, sequence, tid, logged, context, _ = pending
    try:
        standard = _STANDARD(data)
    except KeyError:  # taken away since: what is left
        standard = tuple(data.get(key) for key in _STANDARD_NAMES)
    extra = _plain_extras(data) if len(data) > _FRESH_SIZE else None
    captured = (sequence, tid, logged, None)
    return _new_item(
        LogItem, (*standard, data.get("taskName"), message, captured, extra, None, context, None)
    )


_LogRecord = logging.LogRecord
_islice = itertools.islice


class _ThreadIds(threading.local):
    """The OS thread id of the logging thread, asked of the kernel once per thread."""

    tid: int


_thread_ids = _ThreadIds()


def _forget_thread_ids() -> None:
    global _thread_ids
    _thread_ids = _ThreadIds()  # a forked child's thread has an id of its own


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_thread_ids)


_FRESH_SIZE = len(_FRESH)
_LAST_FRESH = list(_FRESH)[-1]


def _plain_extras(data: dict[str, Any]) -> dict[str, Any] | None:
    """The ``extra=`` attributes of a plain ``LogRecord``: ``__init__`` sets its own first, so
    they are the rest of the dict (unless a formatter has added ``message`` and the like)."""
    extra = dict(_islice(data.items(), _FRESH_SIZE, None))
    if STANDARD_ATTRIBUTES.isdisjoint(extra):
        return extra
    return _extras_of(data)


def _extras_of(data: dict[str, Any]) -> dict[str, Any] | None:
    """The attributes ``extra=`` (or an adapter, a factory) added to a record.

    They are inserted after the ones ``LogRecord.__init__`` sets, so when the last of those
    stands where it should, the rest of the dict is all there is to look at.
    """
    tail = itertools.islice(data.items(), _FRESH_SIZE - 1, None)
    last, _ = next(tail)
    if last != _LAST_FRESH:  # an unusual record class: look at every key
        keys = data.keys() - STANDARD_ATTRIBUTES
        return {key: data[key] for key in keys} if keys else None
    extra = dict(tail)
    if not extra:
        return None
    if STANDARD_ATTRIBUTES.isdisjoint(extra):  # the usual case: nothing but extras
        return extra
    extra = {key: value for key, value in extra.items() if key not in STANDARD_ATTRIBUTES}
    return extra or None


# Mapping on the worker thread -----------------------------------------------------------------

_product_cache: tuple[object, dict[str, Any]] = (object(), {})


def _product(product: Any) -> dict[str, Any]:
    # Handlers pass the same product object each time: complete it once, copy it per event.
    global _product_cache
    if product is None:
        return default_product(None)
    key, value = _product_cache
    if key is not product:
        value = default_product(product)
        _product_cache = (product, value)
    return dict(value)


def record_to_event(
    record: logging.LogRecord, product: Any = None, *, log_version: str = __version__
) -> dict[str, Any]:
    """The OCSF Event Log Activity for a record, as a new JSON-ready dict; never raises.

    ``product`` is an OCSF ``product`` (mapping or model); without one, or without a vendor
    name, the defaults of :func:`default_product` apply. Run :func:`capture` first, in
    ``emit``; a record that skipped it is captured here.
    """
    try:
        if CAPTURED not in record.__dict__:
            capture(record)
        item = compact(record)
    except Exception as error:  # a record with hostile attribute values: keep what is safe
        return _fallback(record, product, log_version, error)
    return item_to_event(item, product, log_version=log_version)


def item_to_event(
    item: LogItem, product: Any = None, *, log_version: str = __version__
) -> dict[str, Any]:
    """The OCSF Event Log Activity for an item made by :func:`compact`; never raises."""
    try:
        event = _map_plain(item, product, log_version)
        if event is None:
            event = _map_careful(item, product, log_version)
    except Exception as error:  # hostile attribute values: keep what is safe
        return _fallback(item, product, log_version, error)
    extra = item.extra
    if extra is not None and EVENT_TIME in extra:
        _event_time(event, extra[EVENT_TIME])
    repeat = item.repeat
    if repeat is not None:  # one event standing for a folded run of repeats
        count, first, last = repeat
        event["count"] = count
        event["start_time"] = int(first * 1000)
        event["end_time"] = event["time"] = int(last * 1000)
    return event


def _event_time(event: dict[str, Any], seconds: Any) -> None:
    """The time an ``EVENT_TIME`` extra gives (when it is a plausible one) becomes ``time``."""
    unmapped = event.get("unmapped")
    if unmapped:
        extra = unmapped.get("extra")
        if extra:
            extra.pop(EVENT_TIME, None)
            if not extra:
                del unmapped["extra"]
    ms = ms_from_seconds(seconds)
    if ms is not None:  # before 1970 too, as for ``record.created``
        event["time"] = ms


def is_plain(item: LogItem) -> bool:
    """Every standard attribute a non-empty value of its usual type, and the message not too
    long: an item both hot paths (this module's and :mod:`py_mdr.logwire`) write as it is."""
    (name, _, levelname, pathname, lineno, function, module, created, pid, process_name) = item[:10]
    thread_name = item.threadName
    message = item.message
    return bool(
        type(name) is str
        and name
        and type(levelname) is str
        and levelname
        and type(pathname) is str
        and pathname
        and type(function) is str
        and function
        and type(module) is str
        and module
        and type(lineno) is int
        and type(process_name) is str
        and process_name
        and type(thread_name) is str
        and thread_name
        and type(pid) is int
        and type(created) is float
        and 0.0 < created < 1e11
        and type(message) is str
        and message
        and len(message) <= MAX_STRING
    )


def _map_plain(record: LogItem, product: Any, log_version: str) -> dict[str, Any] | None:
    """The hot path for the usual record (every standard attribute a non-empty plain value).

    Builds the event as one literal; ``None`` sends anything unusual to :func:`_map_careful`,
    which produces the same shape with every value checked.
    """
    if not (log_version and is_plain(record)):
        return None
    name = record.name
    levelname = record.levelname
    pathname = record.pathname
    function = record.funcName
    module = record.module
    lineno = record.lineno
    process_name = record.processName
    thread_name = record.threadName
    pid = record.process
    created = record.created
    message = record.message
    sequence, tid, logged, exception = record.captured
    severity_id, severity = from_python_level(record.levelno)
    logged_ms = int(logged * 1000)
    host, host_key = local_host()
    event: dict[str, Any] = {
        **FIXED_PART,
        "severity_id": severity_id,
        "severity": severity,
        "time": int(created * 1000),
        "message": message,
        "log_name": name,
        "metadata": {
            "version": OCSF_VERSION,
            "product": _product(product),
            "log_provider": LOG_PROVIDER,
            "uid": event_uid(sequence),
            "sequence": sequence,
            "log_version": log_version,
            "logged_time": logged_ms,
            "log_level": levelname,
        },
        "actor": {"process": {"pid": pid, "tid": tid, "name": process_name}},
        "device": {host_key: host, "type_id": 0, "type": "Unknown"},
        "src_endpoint": {host_key: host},
        "enrichments": [
            {
                "name": "file_information",
                "value": f"{pathname}:{lineno}",
                "data": {
                    "module": module,
                    "function_name": function,
                    "line_number": lineno,
                    "path": pathname,
                },
            }
        ],
    }
    user = os_user()
    if user:
        event["actor"]["user"] = user.copy()
    unmapped: dict[str, Any] = {"thread_name": thread_name}
    if exception:
        unmapped["exception"] = exception.copy()
    stack = record.stack_info
    if stack:
        unmapped["stack"] = stack if type(stack) is str else safe_str(stack)
    task_name = record.taskName
    if task_name:
        unmapped["task_name"] = task_name if type(task_name) is str else safe_str(task_name)
    if record.extra:
        extra = plain_extra(record.extra)
        if extra:
            unmapped["extra"] = extra
    event["unmapped"] = unmapped
    return event


def _map_careful(record: LogItem, product: Any, log_version: str) -> dict[str, Any]:
    """The same mapping as :func:`_map_plain`, checking and cleaning every value on the way."""
    sequence, tid, logged, exception = record.captured
    severity_id, severity = from_python_level(record.levelno)
    logged_ms = int(logged * 1000)
    host, _ = local_host()

    process: dict[str, Any] = {
        "pid": record.process if type(record.process) is int else os.getpid(),
        "tid": tid,
    }
    process_name = clean_text(record.processName)
    if process_name:
        process["name"] = process_name
    actor: dict[str, Any] = {"process": process}
    user = os_user()
    if user:
        actor["user"] = user.copy()

    event: dict[str, Any] = {
        **FIXED_PART,
        "severity_id": severity_id,
        "severity": severity,
        "time": _or(ms_from_seconds(record.created), logged_ms),
        "metadata": metadata(_product(product), log_version, sequence, logged_ms, record.levelname),
        "actor": actor,
        "device": device(host),
        "src_endpoint": endpoint(host),
    }
    name = clean_text(record.name)
    if name:
        event["log_name"] = name
    unmapped: dict[str, Any] = {}
    message = clean_text(record.message)
    if message:
        fit_message(event, unmapped, message)
    enrichment = file_information(record.pathname, record.funcName, record.lineno, record.module)
    if enrichment:
        event["enrichments"] = [enrichment]

    if exception:
        unmapped["exception"] = exception.copy()
    for key, value in (
        ("stack", record.stack_info),
        ("thread_name", record.threadName),
        ("task_name", record.taskName),
    ):
        text = clean_text(value)
        if text:
            unmapped[key] = text
    if record.extra:
        extra = plain_extra(record.extra)
        if extra:
            unmapped["extra"] = extra
    if unmapped:
        event["unmapped"] = unmapped
    return event


def plain_extra(data: Mapping[Any, Any]) -> dict[str, Any]:
    """``extra=`` fields as ``unmapped.extra`` holds them: JSON-safe, empty values left out."""
    return plain_fields(data.items())


def _fallback(
    record: logging.LogRecord | LogItem, product: Any, log_version: str, error: Exception
) -> dict[str, Any]:
    """A minimal, valid event when a record's attributes defeat the normal mapping."""
    try:
        return _minimal(record, product, log_version, error)
    except Exception as second:  # even the safe accessors failed: keep only what is ours
        return _minimal(None, None, log_version, second)


def _minimal(record: Any, product: Any, log_version: str, error: Exception) -> dict[str, Any]:
    captured: Any = record.captured if isinstance(record, LogItem) else None
    if captured is None:
        captured = getattr(record, CAPTURED, None)
    if not (isinstance(captured, tuple) and len(captured) == 4):
        captured = (next_sequence(), _get_native_id(), _now(), None)
    sequence, tid, logged, _ = captured
    logged_ms = ms_from_seconds(logged) or int(_now() * 1000)
    message = clean_text(getattr(record, "message", None))
    return fallback_event(
        error,
        product=default_product(product),
        log_version=log_version,
        sequence=sequence,
        severity=from_python_level(getattr(record, "levelno", 0)),
        time_ms=_or(ms_from_seconds(getattr(record, "created", None)), logged_ms),
        logged_time=logged_ms,
        log_level=clean_text(getattr(record, "levelname", None)),
        process={"pid": os.getpid(), "tid": tid},
        log_name=getattr(record, "name", None),
        message=message if message is not None else getattr(record, "msg", None),
    )


def _or(ms: int | None, fallback: int) -> int:
    """``ms`` unless there is none: the epoch itself (0) is a time, not a missing one."""
    return fallback if ms is None else ms
