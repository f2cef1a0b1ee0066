"""OpenTelemetry ``ReadableLogRecord`` to the same OCSF Event Log Activity dict as stdlib records.

What the resource gives (product, device, process, user, cloud, leftover resource attributes)
comes from :mod:`py_mdr_otel.resource`, worked out once per resource and copied into each
event. See https://schema.ocsf.io/1.3.0/classes/event_log
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from py_mdr import __version__
from py_mdr.delivery.sizing import STR_SIZE, estimate_size
from py_mdr.eventlog import (
    FIXED_PART,
    clean_text,
    default_product,
    exception_info,
    fallback_event,
    file_information,
    fit_message,
    host_name,
    metadata_event,
    metadata_fixed,
    next_sequence,
    program_name,
)
from py_mdr.internal import INTERNAL_ATTRIBUTE
from py_mdr.logmap import CAPTURED, EVENT_TIME
from py_mdr.plain import clean, dumps, json_safe
from py_mdr.processing.contexts import CONTEXT_ATTRIBUTE
from py_mdr.severity import UNKNOWN, from_otel_severity, from_otel_text
from py_mdr.time_units import MILLISECONDS
from py_mdr_otel.resource import MAX_INT32, ResourceParts, plain, resource_parts, scope_info

__all__ = [
    "RECORD_SIZE",
    "encode_record",
    "envelope_fields",
    "is_internal",
    "otel_to_event",
    "queued_size",
]

# Record attributes with an OCSF home: key -> (group, field). Newer and older semconv names.
_SPECIAL = {
    "code.file.path": ("code", "path"),
    "code.filepath": ("code", "old_path"),
    "code.function.name": ("code", "function"),
    "code.function": ("code", "old_function"),
    "code.line.number": ("code", "line"),
    "code.lineno": ("code", "old_line"),
    "exception.type": ("exception", "type"),
    "exception.message": ("exception", "message"),
    "exception.stacktrace": ("exception", "stacktrace"),
    "thread.id": ("thread", "id"),
    CAPTURED: ("skip", ""),  # MDRHandler's capture state, copied by OTel's logging handler
    CONTEXT_ATTRIBUTE: ("skip", ""),  # the number of the logging call's kept context
    EVENT_TIME: ("skip", ""),  # the record's own timestamp stands for it (the same moment)
}

# Per (resource, scope): the constant part of every event, as dicts and as encoded JSON ----------


@dataclass(frozen=True)
class _Template:
    """Constant members of an event object, and which of them hold a dict or list."""

    members: dict[str, Any]
    nested: tuple[str, ...]

    @classmethod
    def of(cls, members: dict[str, Any]) -> _Template:
        return cls(members, tuple(k for k, v in members.items() if type(v) in (dict, list)))

    def fresh(self) -> dict[str, Any]:
        """A copy sharing no dict or list with the template (the scalars are immutable)."""
        result = dict(self.members)
        for key in self.nested:
            item = result[key]
            result[key] = _copy_tree(item) if type(item) is dict else _copy_list(item)
        return result


@dataclass(frozen=True)
class _Shape:
    """What every record of one resource and scope shares, worked out once.

    The dicts are templates (copied before an event is handed out); the ``*_json`` bytes are the
    same members already encoded, without braces, for the exporter's splice.
    """

    parts: ResourceParts
    source: str  # the HEC envelope source: scope name, else service name, else program name
    top: _Template  # device, src_endpoint, cloud, log_name (the fixed part goes first, alone)
    meta: _Template  # metadata shared by every event: version, product, provider, profiles
    unmapped: _Template  # unmapped.scope and unmapped.resource
    fixed_json: bytes  # b'{"class_uid":1008,...' (the fixed part, its closing brace left off)
    top_json: bytes
    actor_json: bytes  # the whole ``actor`` object of a record without a thread id
    meta_json: bytes
    unmapped_json: bytes
    thread_actors: dict[int, bytes] = field(default_factory=dict)  # ``actor`` by thread id

    def actor_of(self, tid: int) -> bytes:
        """The encoded ``actor`` of a record from thread ``tid`` (threads are few: cached)."""
        encoded = self.thread_actors.get(tid)
        if encoded is None:
            encoded = dumps(_actor(self.parts, tid))
            if len(self.thread_actors) >= 1024:
                self.thread_actors.clear()
            self.thread_actors[tid] = encoded
        return encoded


_shapes: dict[tuple[int, int, str | None, str], tuple[object, object, _Shape]] = {}


def _forget_shapes_after_fork() -> None:
    _shapes.clear()  # a shape holds this process's pid when the resource has none


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_shapes_after_fork)


def _shape(data: Any, vendor_name: str | None, log_version: str) -> _Shape:
    resource = getattr(data, "resource", None)
    scope = getattr(data, "instrumentation_scope", None)
    key = (id(resource), id(scope), vendor_name, log_version)
    cached = _shapes.get(key)
    if cached is not None and cached[0] is resource and cached[1] is scope:
        return cached[2]
    shape = _build_shape(resource, scope, vendor_name, log_version)
    if len(_shapes) >= 512:  # resources and loggers are few; a program making them without end
        _shapes.clear()  # is not, and must not grow this without bound
    _shapes[key] = (resource, scope, shape)
    return shape


def _build_shape(resource: Any, scope: Any, vendor_name: str | None, log_version: str) -> _Shape:
    parts = resource_parts(resource, vendor_name)
    log_name, scope_unmapped = scope_info(scope)
    top: dict[str, Any] = {"device": parts.device, "src_endpoint": parts.endpoint}
    meta = metadata_fixed(parts.product, log_version)
    if parts.cloud:
        meta["profiles"] = ["cloud"]
        top["cloud"] = parts.cloud
    if log_name:
        top["log_name"] = log_name
    unmapped: dict[str, Any] = {}
    if scope_unmapped:
        unmapped["scope"] = scope_unmapped
    if parts.unmapped:
        unmapped["resource"] = parts.unmapped
    return _Shape(
        parts,
        log_name or parts.service or program_name(),
        _Template.of(top),
        _Template.of(meta),
        _Template.of(unmapped),
        dumps(FIXED_PART)[:-1],
        _members_json(top),
        dumps(_actor(parts, None)),
        _members_json(meta),
        _members_json(unmapped),
    )


def _members_json(members: dict[str, Any]) -> bytes:
    return dumps(members)[1:-1]  # ``{}`` gives b""


def _actor(parts: ResourceParts, tid: int | None) -> dict[str, Any]:
    """A new OCSF ``actor``: the resource's process (plus the record's thread id) and user."""
    process = dict(parts.process)
    if tid is not None:
        process["tid"] = tid
    actor: dict[str, Any] = {"process": process}
    if parts.user:
        actor["user"] = dict(parts.user)
    return actor


# Per record -----------------------------------------------------------------------------------

# What one record adds to its shape: its own members (severity, time, message, then ``metadata``
# holding only the per-event metadata, and ``unmapped`` last, when present, holding only the
# record's own entries), the thread id and the code location. None of its keys meet the shape's
# at the same level, so the two join without overwriting anything.
_Site = tuple[Any, Any, Any]  # code path, function, line, as the record's attributes gave them
_Own = tuple[dict[str, Any], int | None, _Site | None]


def otel_to_event(
    data: Any, *, vendor_name: str | None = None, log_version: str = __version__
) -> dict[str, Any]:
    """The OCSF Event Log Activity for an OTel ``ReadableLogRecord``, as a new JSON-ready dict.

    ``vendor_name`` is the configured vendor, used when the resource has no
    ``service.namespace``. Never raises: a record that defeats the mapping still gives a valid
    event naming the problem under ``unmapped.mapping_error``.
    """
    try:
        record = _record(data)
        shape = _shape(data, vendor_name, log_version)
        return _event(shape, _own(data, record, _attributes_of(record), shape))
    except Exception as error:
        return _fallback(data, vendor_name, log_version, error)


def encode_record(
    data: Any,
    vendor_name: str | None = None,
    redact: Callable[[dict[str, Any]], object] | None = None,
) -> tuple[bytes, float, str, str] | None:
    """The exporter's one pass over a record: ``(event JSON, envelope time, host, source)``.

    ``None`` for a record py-mdr itself caused (marked ``py_mdr_internal``) or one of
    OpenTelemetry's own (see :func:`is_internal`). The JSON has the
    content of ``dumps(otel_to_event(data, vendor_name=vendor_name))``, but the members every
    record of a resource and scope shares are spliced in already encoded, not copied and
    encoded again. ``redact``, when given, edits the record's own members (its message,
    ``unmapped`` and ``metadata``) in place first. Never raises for a record the SDK made; a
    hostile one gets the fallback event.
    """
    try:
        record = _record(data)
        attributes = _attributes_of(record)
        if _of_the_pipeline(data, attributes):
            return None
        shape = _shape(data, vendor_name, __version__)
        own = _own(data, record, attributes, shape)
        if redact is not None:
            redact(own[0])
        return _event_json(shape, own), own[0]["time"] / 1000, shape.parts.host, shape.source
    except Exception as error:
        if is_internal(data):
            return None
        event = _fallback(data, vendor_name, __version__, error)
        if redact is not None:
            redact(event)
        seconds, host, source = envelope_fields(data, vendor_name)
        return dumps(event), seconds, host, source


#: Estimated memory of a queued record beyond its body and attributes (the SDK's objects, its
#: times and ids); the resource and scope are shared by every record.
RECORD_SIZE = 512


def queued_size(data: Any) -> int | None:
    """The bytes a record holds while it waits for the worker (its body and attributes walked,
    bounded); None for a record of the telemetry pipeline itself (see :func:`is_internal`),
    which is not queued. Raises for an object that is not a log record."""
    record = _record(data)
    attributes = _attributes_of(record)
    if _of_the_pipeline(data, attributes):
        return None
    body = record.body
    size = RECORD_SIZE + (STR_SIZE + len(body) if type(body) is str else estimate_size(body))
    return size + estimate_size(attributes) if attributes else size


def _event(shape: _Shape, own: _Own) -> dict[str, Any]:
    """Shape and record joined into a new event that shares nothing with the templates.

    In the order :func:`_event_json` writes: the fixed part, then what varies per record
    (severity, time, message) before what a shape repeats, metadata and unmapped last. Events
    that vary in one stretch compress better side by side (0.7 byte per event in a gzip
    batch); MDRHandler's events begin the same way.
    """
    members, tid, site = own
    event: dict[str, Any] = dict(FIXED_PART)
    for key, value in members.items():
        if key != "metadata" and key != "unmapped":
            event[key] = value
    event.update(shape.top.fresh())
    event["actor"] = _actor(shape.parts, tid)
    if site is not None:
        enrichment = file_information(*site)
        if enrichment:
            event["enrichments"] = [enrichment]
    metadata = shape.meta.fresh()
    metadata.update(members["metadata"])
    event["metadata"] = metadata
    unmapped = members.get("unmapped")
    if unmapped is not None:
        event["unmapped"] = {**shape.unmapped.fresh(), **unmapped}
    return event


_METADATA = b',"metadata":{'


def _event_json(shape: _Shape, own: _Own) -> bytes:
    """The same event as :func:`_event`, encoded: the record's own members are encoded in one
    call, and the shape's pre-encoded members spliced into the event, its metadata and unmapped.
    """
    members, tid, site = own
    # b'{"severity_id":..,"time":..[,"message":".."],"metadata":{"uid":..}[,"unmapped":{..}]}':
    # the first ``,"metadata":{`` is the member's (a quote inside a string is escaped)
    text = dumps(members)
    split = text.index(_METADATA)
    actor = shape.actor_json if tid is None else shape.actor_of(tid)
    enrichments = _enrichments_json(*site) if site is not None else b""
    head = (shape.fixed_json, b",", text[1:split], b",", shape.top_json, b',"actor":', actor)
    start = split + len(_METADATA)
    unmapped = members.get("unmapped")
    if unmapped is None or not shape.unmapped_json:
        tail: tuple[bytes, ...] = (text[start:],)
    else:  # unmapped is the last member: add the shape's entries before its closing brace
        tail = (text[start:-2], b"," if unmapped else b"", shape.unmapped_json, b"}}")
    return b"".join((*head, enrichments, _METADATA, shape.meta_json, b",", *tail))


def _of_the_pipeline(data: Any, attributes: dict[Any, Any] | None) -> bool:
    """A record py-mdr caused (marked ``py_mdr_internal``, in ``attributes``: the record's
    attributes as a plain dict) or OpenTelemetry's own code logged: see :func:`is_internal`."""
    return bool(attributes and attributes.get(INTERNAL_ATTRIBUTE)) or _from_opentelemetry(data)


def _from_opentelemetry(data: Any) -> bool:
    """True when the record's scope (the stdlib logger's name) is OpenTelemetry's own code."""
    name = getattr(getattr(data, "instrumentation_scope", None), "name", None)
    return type(name) is str and (name == "opentelemetry" or name.startswith("opentelemetry."))


def _record(data: Any) -> Any:
    # A ReadableLogRecord (or the older LogData) wraps the record; accept a bare record too.
    record = getattr(data, "log_record", None)
    return data if record is None else record


def _attributes_of(record: Any) -> dict[Any, Any] | None:
    attributes = record.attributes
    return plain(attributes) if attributes else None


def _own(data: Any, record: Any, attributes: dict[Any, Any] | None, shape: _Shape) -> _Own:
    """What one record adds to its shape (see ``_Own``)."""
    observed = _ms(record.observed_timestamp)
    event_time = _ms(record.timestamp) or observed or int(time.time() * 1000)
    number = record.severity_number
    severity_text = record.severity_text
    severity = from_otel_severity(number) if number is not None else UNKNOWN
    if severity is UNKNOWN and severity_text:
        severity = from_otel_text(severity_text)

    meta = metadata_event(next_sequence(), observed, severity_text)
    trace_id = record.trace_id or 0
    span_id = record.span_id or 0
    if type(trace_id) is int and trace_id:
        meta["correlation_uid"] = f"{trace_id:032x}"
    members: dict[str, Any] = {
        "severity_id": severity[0],
        "severity": severity[1],
        "time": event_time,
    }
    unmapped: dict[str, Any] = {}
    _body(members, unmapped, record.body)
    members["metadata"] = meta  # after the message, see _event_json
    tid, site = _attributes(attributes, unmapped) if attributes else _NO_ATTRIBUTES
    if trace_id or span_id:
        trace = _trace(trace_id, span_id, record.trace_flags)
        if trace:
            unmapped["trace"] = trace
    event_name = clean_text(getattr(record, "event_name", None))
    if event_name:
        unmapped["event_name"] = event_name
    dropped = _dropped(data)
    if dropped:
        unmapped["dropped_attributes"] = dropped
    if unmapped or shape.unmapped.members:
        members["unmapped"] = unmapped  # last, see _event_json
    return members, tid, site


_NO_ATTRIBUTES: tuple[None, None] = (None, None)


def _enrichments_json(path: Any, function: Any, line: Any) -> bytes:
    """``,"enrichments":[...]`` for a code location (or b""), encoded once per call site."""
    if type(path) is str and type(function) is str and type(line) is int:
        return _site_json(path, function, line)
    return _encode_enrichments(path, function, line)


def _encode_enrichments(path: Any, function: Any, line: Any) -> bytes:
    enrichment = file_information(path, function, line)
    return b',"enrichments":[' + dumps(enrichment) + b"]" if enrichment else b""


_site_json = functools.lru_cache(maxsize=4096)(_encode_enrichments)


#: The first millisecond that reads as microseconds (about the year 5138, see
#: :mod:`py_mdr.time_units`): a later timestamp is taken for a missing one.
_PLAUSIBLE_MS = MILLISECONDS[1]


def _ms(nanoseconds: Any) -> int | None:
    """Epoch milliseconds, cut as the stdlib door cuts ``record.created``. OpenTelemetry's
    handler stores ``int(created * 1e9)``, a few hundred nanoseconds short of the time
    ``created`` reads (…123 s is …122999808 ns): the microsecond is rounded first."""
    if type(nanoseconds) is not int:
        try:
            nanoseconds = int(nanoseconds)
        except (TypeError, ValueError, OverflowError):
            return None
    if nanoseconds <= 0:
        return None
    ms = (nanoseconds + 500) // 1000 // 1000
    return ms if ms < _PLAUSIBLE_MS else None  # past that it reads as another unit: not a time


def _body(event: dict[str, Any], unmapped: dict[str, Any], body: Any) -> None:
    if body is None:
        return
    if type(body) is str:
        if body:
            fit_message(event, unmapped, body)
        return
    safe = json_safe(body)
    if type(safe) is str:  # bytes, or an object shown by its repr
        if safe:
            fit_message(event, unmapped, safe)
        return
    text = dumps(safe).decode()
    kept = clean(safe)
    if kept is not None:
        unmapped["body"] = kept
    if text:
        fit_message(event, unmapped, text)


def _attributes(
    attributes: dict[Any, Any], unmapped: dict[str, Any]
) -> tuple[int | None, _Site | None]:
    """Record attributes into ``unmapped``; returns the thread id and the code location, if any.

    Attributes with an OCSF home (``code.*``, ``exception.*``, ``thread.id``) go there; every
    other one is a key-value pair of the application (through OpenTelemetry's logging handler,
    a stdlib ``extra=`` field) and lands in ``unmapped.extra``, as it does through MDRHandler.

    The code location becomes the ``file_information`` enrichment where the event is put
    together (a call site repeats, so the exporter reuses its encoded form).
    """
    tid: int | None = None
    code: dict[str, Any] | None = None
    exception: dict[str, Any] | None = None
    others: dict[str, Any] = {}
    special = _SPECIAL
    for key, value in attributes.items():
        slot = special.get(key)
        if slot is None:
            kind = type(value)
            if kind is str:  # the usual values need no clean(): nothing to make safe or prune
                if not value:
                    continue
            elif kind is not int and kind is not bool:
                value = clean(value)
                if value is None:
                    continue
            others[key if type(key) is str else clean_text(key) or "?"] = value
            continue
        group, field = slot
        if group == "code":
            if code is None:
                code = {}
            code[field] = value
        elif group == "exception":
            if exception is None:
                exception = {}
            exception[field] = value
        elif group == "thread":
            if type(value) is int and 0 <= value <= MAX_INT32:
                tid = value
            elif (kept := clean(value)) is not None:
                others[key] = kept
    site: _Site | None = None
    if code is not None:  # the current semconv names win over the older ones
        site = (
            code.get("path", code.get("old_path")),
            code.get("function", code.get("old_function")),
            code.get("line", code.get("old_line")),
        )
    if exception is not None:
        info = exception_info(
            exception.get("type"), exception.get("message"), exception.get("stacktrace")
        )
        if info:
            unmapped["exception"] = info
    if others:
        unmapped["extra"] = others  # where MDRHandler puts `extra=` fields: one rule, both doors
    return tid, site


def _trace(trace_id: Any, span_id: Any, flags: Any) -> dict[str, Any]:
    trace: dict[str, Any] = {}
    if type(trace_id) is int and trace_id:
        trace["trace_id"] = f"{trace_id:032x}"
    if type(span_id) is int and span_id:
        trace["span_id"] = f"{span_id:016x}"
    if trace and isinstance(flags, int):
        trace["trace_flags"] = f"{int(flags):02x}"
    return trace


def _dropped(data: Any) -> int:
    try:
        dropped = data.dropped_attributes
    except Exception:
        return 0
    return dropped if type(dropped) is int and dropped > 0 else 0


def _copy_tree(value: dict[str, Any]) -> dict[str, Any]:
    """A copy sharing no dict or list with ``value`` (JSON-ready data: scalars are immutable)."""
    result = dict(value)
    for key, item in result.items():
        if type(item) is dict:
            result[key] = _copy_tree(item)
        elif type(item) is list:
            result[key] = _copy_list(item)
    return result


def _copy_list(value: list[Any]) -> list[Any]:
    return [
        _copy_tree(item) if type(item) is dict else _copy_list(item) if type(item) is list else item
        for item in value
    ]


def _fallback(
    data: Any, vendor_name: str | None, log_version: str, error: Exception
) -> dict[str, Any]:
    """A minimal, valid event when a record defeats the normal mapping."""
    try:
        body = clean_text(json_safe(getattr(_record(data), "body", None)))
    except Exception:
        body = None
    return fallback_event(
        error,
        product=default_product({"vendor_name": vendor_name}),
        log_version=log_version,
        sequence=next_sequence(),
        severity=UNKNOWN,
        time_ms=int(time.time() * 1000),
        message=body,
    )


# Exporter helpers -----------------------------------------------------------------------------


def envelope_fields(data: Any, vendor_name: str | None = None) -> tuple[float, str, str]:
    """HEC envelope ``(time in seconds, host, source)`` for a record; never raises.

    ``host`` is the resource's ``host.name``, else the local host name; ``source`` is the
    instrumentation scope name, else the service name, else the program's name.
    """
    try:
        record = _record(data)
        millis = (
            _ms(getattr(record, "timestamp", None))
            or _ms(getattr(record, "observed_timestamp", None))
            or int(time.time() * 1000)
        )
        shape = _shape(data, vendor_name, __version__)
        return millis / 1000, shape.parts.host, shape.source
    except Exception:
        return time.time(), host_name(), program_name()


def is_internal(data: Any) -> bool:
    """True for a record of the telemetry pipeline itself; never raises.

    That is one py-mdr caused (marked ``py_mdr_internal``), or one logged by OpenTelemetry's
    own code (scope ``opentelemetry`` or ``opentelemetry.*``, such as the logging
    instrumentation's start-up warnings): the application's operators want to see those on
    their console, but they are not the application's events. Both are counted, not exported.
    """
    try:
        if _from_opentelemetry(data):
            return True
        attributes = getattr(_record(data), "attributes", None)
        # a plain dict copy: BoundedAttributes.get goes through a raised KeyError when absent
        return _of_the_pipeline(data, plain(attributes) if attributes else None)
    except Exception:
        return False
