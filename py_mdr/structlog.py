"""structlog to MDR: a final processor that hands structlog's event dict to stdlib ``logging``.

structlog renders each event in its processor chain; :func:`render_to_mdr`, placed last, turns
the event dict into the arguments of the stdlib logging call, so the record flows through
:class:`~py_mdr.handler.MDRHandler` (or OpenTelemetry's logging handler) like any other:

- the event text becomes the message (positional arguments are formatted by ``logging``);
- the level is the logging method's (``log.warning`` is a WARNING), so the severity follows;
  the ``level`` key that ``add_log_level`` adds is dropped, as is a ``logger`` key naming the
  logger itself;
- every other key-value pair becomes an ``extra=`` field, so it lands in ``unmapped.extra``; a
  key a ``LogRecord`` already has (``name``, ``module``, ``process``, ...) gets a trailing
  underscore (``name_``), since ``logging`` refuses to overwrite those;
- ``exc_info`` (``log.exception``) is the record's exception, with its stack trace;
- the ``timestamp`` key (``TimeStamper``, ISO text or POSIX seconds) becomes the event's
  ``time`` instead of a key-value pair.

It must run last, in place of a renderer (``JSONRenderer`` would make the whole event one
string in the message) and of ``format_exc_info``/``dict_tracebacks`` (which turn the exception
into text before it reaches ``logging``). This module does not import structlog, so it imports
whether or not ``py-mdr[structlog]`` is installed.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from datetime import datetime
from typing import Any

from py_mdr.eventlog import ms_from_seconds
from py_mdr.logmap import EVENT_TIME, STANDARD_ATTRIBUTES

__all__ = ["render_to_mdr"]

#: Keys the stdlib logging call takes as keyword arguments rather than as ``extra=`` fields.
_CALL_KEYWORDS = ("exc_info", "stack_info", "stacklevel")
#: Keys ``logging.Logger.makeRecord`` refuses in ``extra=``: they are renamed ``<key>_``.
_TAKEN = STANDARD_ATTRIBUTES | {"message", "asctime"}


def render_to_mdr(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """structlog's final processor: ``(args, kwargs)`` for the stdlib logger's method.

    Use it with ``structlog.stdlib.LoggerFactory()``. Never raises: an event dict it cannot
    take apart is sent as its text, so a logging call never fails because of it.
    """
    try:
        return _render(logger, event_dict)
    except Exception:
        try:
            text = repr(dict(event_dict))
        except Exception:
            text = "<structlog event that cannot be shown>"
        return (text,), {}


def _render(
    logger: Any, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    event = dict(event_dict)
    message = event.pop("event", "")
    args = event.pop("positional_args", ())
    kwargs: dict[str, Any] = {kw: event.pop(kw) for kw in _CALL_KEYWORDS if kw in event}
    if kwargs.get("exc_info") is False:
        del kwargs["exc_info"]
    event.pop("level", None)
    if "logger" in event and event["logger"] == getattr(logger, "name", None):
        del event["logger"]
    if "timestamp" in event:
        seconds = _seconds(event["timestamp"])
        if seconds is not None and ms_from_seconds(seconds) is not None:  # a time OCSF takes
            del event["timestamp"]
            event[EVENT_TIME] = seconds
    extra = {
        (f"{key}_" if key in _TAKEN else key) if type(key) is str else str(key): value
        for key, value in event.items()
    }
    if extra:
        kwargs["extra"] = extra
    if not isinstance(args, tuple):
        args = (args,)
    return (message, *args), kwargs


def _seconds(value: Any) -> float | None:
    """POSIX seconds from what ``TimeStamper`` writes (ISO 8601 text, a number, a datetime).

    Text without an offset is local time, as ``TimeStamper(utc=False)`` writes it. ``None`` for
    anything else (a custom ``strftime`` format): the key then stays a key-value pair.
    """
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith("Z") else value
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return None
    if isinstance(value, datetime):
        try:
            return value.timestamp()
        except (OverflowError, ValueError, OSError):  # a year the platform cannot convert
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            return None
        return seconds if math.isfinite(seconds) else None
    return None
