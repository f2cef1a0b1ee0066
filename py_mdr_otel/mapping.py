"""OpenTelemetry ``ReadableLogRecord`` to the same OCSF Event Log Activity dict as stdlib records.

The resource of a LoggerProvider is the same object for every record it emits, so what comes
from it (product, device, process, user, cloud, leftover resource attributes) is worked out once
per resource and copied into each event. See https://schema.ocsf.io/1.3.0/classes/event_log
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from py_mdr import __version__
from py_mdr.eventlog import (
    FIXED_PART,
    clean_mapping,
    clean_text,
    default_product,
    device,
    endpoint,
    exception_info,
    fallback_event,
    file_information,
    fit_message,
    host_name,
    metadata,
    next_sequence,
    os_user,
    program_name,
)
from py_mdr.internal import INTERNAL_ATTRIBUTE
from py_mdr.logmap import CAPTURED
from py_mdr.serialize import clean, dumps, json_safe
from py_mdr.severity import UNKNOWN, from_otel_severity, from_otel_text

__all__ = ["envelope_fields", "is_internal", "otel_to_event"]

# OTel `os.type` values to OCSF os `type_id`; anything else is 99 (Other) with its own name.
_OS_TYPES = {
    "windows": (100, "Windows"),
    "linux": (200, "Linux"),
    "darwin": (300, "macOS"),
    "solaris": (400, "Solaris"),
    "aix": (401, "AIX"),
    "hpux": (402, "HP-UX"),
}

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
}

_MAX_INT32 = 2**31 - 1


# Resource-derived parts, computed once per resource ------------------------------------------


@dataclass(frozen=True)
class _ResourceParts:
    host: str
    service: str
    product: dict[str, Any]
    device: dict[str, Any]
    endpoint: dict[str, Any]
    process: dict[str, Any]
    user: dict[str, Any]
    cloud: dict[str, Any]
    unmapped: dict[str, Any]


_cache: tuple[object, object, _ResourceParts | None] = (object(), None, None)


def _forget_after_fork() -> None:
    # The parts hold this process's pid when the resource has none: a forked child recomputes.
    global _cache
    _cache = (object(), None, None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _resource_parts(resource: Any, vendor_name: str | None) -> _ResourceParts:
    global _cache
    key, vendor, parts = _cache
    if key is resource and vendor == vendor_name and parts is not None:
        return parts
    parts = _build_resource_parts(resource, vendor_name)
    _cache = (resource, vendor_name, parts)
    return parts


def _build_resource_parts(resource: Any, vendor_name: str | None) -> _ResourceParts:
    try:
        attributes = clean_mapping(_plain(getattr(resource, "attributes", None) or {}))
    except Exception:
        attributes = {}
    used: set[str] = set()

    def text(key: str) -> str | None:
        value = attributes.get(key)
        if value is None:
            return None
        used.add(key)
        return value if type(value) is str else clean_text(dumps(value).decode())

    service = text("service.name")
    product = default_product(
        {
            "name": service,
            "version": text("service.version"),
            "uid": text("service.instance.id"),
            "vendor_name": text("service.namespace") or vendor_name,
        }
    )

    host = text("host.name") or host_name()
    dev = device(host)
    host_id = text("host.id")
    if host_id:
        dev["uid"] = host_id
    if "os.type" in attributes:
        os_type = text("os.type") or ""
        type_id, caption = _OS_TYPES.get(os_type.lower(), (99, os_type))
        system: dict[str, Any] = {"name": os_type, "type_id": type_id, "type": caption}
        version = text("os.version")
        if version:
            system["version"] = version
        dev["os"] = system

    pid = attributes.get("process.pid")
    if type(pid) is int and 0 <= pid <= _MAX_INT32:
        used.add("process.pid")
    else:  # the exporter runs inside the process that logged: its pid is ours
        pid = os.getpid()
    process: dict[str, Any] = {"pid": pid}
    for source, target in (
        ("process.executable.name", "name"),
        ("process.command_line", "cmd_line"),
    ):
        value = text(source)
        if value:
            process[target] = value
    owner = text("process.owner")
    user = {"name": owner} if owner else os_user()

    cloud: dict[str, Any] = {}
    provider = text("cloud.provider")
    if provider:  # OCSF requires the provider; without it the other cloud.* stay unmapped
        cloud["provider"] = provider
        region = text("cloud.region")
        if region:
            cloud["region"] = region
        account = text("cloud.account.id")
        if account:
            cloud["account"] = {"uid": account}

    unmapped = {k: v for k, v in attributes.items() if k not in used}
    return _ResourceParts(
        host, service or "", product, dev, endpoint(host), process, user, cloud, unmapped
    )


# Per record -----------------------------------------------------------------------------------


def otel_to_event(
    data: Any, *, vendor_name: str | None = None, log_version: str = __version__
) -> dict[str, Any]:
    """The OCSF Event Log Activity for an OTel ``ReadableLogRecord``, as a new JSON-ready dict.

    ``vendor_name`` is the configured vendor, used when the resource has no
    ``service.namespace``. Never raises: a record that defeats the mapping still gives a valid
    event naming the problem under ``unmapped.mapping_error``.
    """
    try:
        return _map(data, vendor_name, log_version)
    except Exception as error:
        return _fallback(data, vendor_name, log_version, error)


def _record(data: Any) -> Any:
    # A ReadableLogRecord (or the older LogData) wraps the record; accept a bare record too.
    record = getattr(data, "log_record", None)
    return data if record is None else record


def _map(data: Any, vendor_name: str | None, log_version: str) -> dict[str, Any]:
    record = _record(data)
    parts = _resource_parts(getattr(data, "resource", None), vendor_name)
    scope = getattr(data, "instrumentation_scope", None)

    observed = _ms(record.observed_timestamp)
    event_time = _ms(record.timestamp) or observed or int(time.time() * 1000)
    number = record.severity_number
    severity_text = record.severity_text
    severity = from_otel_severity(number) if number is not None else UNKNOWN
    if severity is UNKNOWN and severity_text:
        severity = from_otel_text(severity_text)

    meta = metadata(dict(parts.product), log_version, next_sequence(), observed, severity_text)
    trace_id = record.trace_id or 0
    span_id = record.span_id or 0
    if type(trace_id) is int and trace_id:
        meta["correlation_uid"] = f"{trace_id:032x}"
    process = dict(parts.process)
    actor: dict[str, Any] = {"process": process}
    if parts.user:
        actor["user"] = dict(parts.user)
    event: dict[str, Any] = {
        **FIXED_PART,
        "severity_id": severity[0],
        "severity": severity[1],
        "time": event_time,
        "metadata": meta,
        "actor": actor,
        "device": _copy_device(parts.device),
        "src_endpoint": dict(parts.endpoint),
    }
    if parts.cloud:
        meta["profiles"] = ["cloud"]
        event["cloud"] = _copy_cloud(parts.cloud)
    scope_name, scope_info = _scope(scope) if scope is not None else _NO_SCOPE
    if scope_name:
        event["log_name"] = scope_name

    unmapped: dict[str, Any] = {}
    _body(event, unmapped, record.body)
    _attributes(record, event, unmapped, process)
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
    if scope_info:
        unmapped["scope"] = _copy_tree(scope_info)
    if parts.unmapped:
        unmapped["resource"] = _copy_tree(parts.unmapped)
    if unmapped:
        event["unmapped"] = unmapped
    return event


def _ms(nanoseconds: Any) -> int | None:
    if type(nanoseconds) is int:
        return nanoseconds // 1_000_000 if nanoseconds > 0 else None
    try:
        value = int(nanoseconds)
    except (TypeError, ValueError, OverflowError):
        return None
    return value // 1_000_000 if value > 0 else None


def _copy_device(template: dict[str, Any]) -> dict[str, Any]:
    result = dict(template)
    if "os" in result:
        result["os"] = dict(result["os"])
    return result


def _copy_cloud(template: dict[str, Any]) -> dict[str, Any]:
    result = dict(template)
    if "account" in result:
        result["account"] = dict(result["account"])
    return result


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
    record: Any, event: dict[str, Any], unmapped: dict[str, Any], process: dict[str, Any]
) -> None:
    attributes = record.attributes
    if not attributes:
        return
    code: dict[str, Any] = {}
    exception: dict[str, Any] = {}
    others: dict[str, Any] = {}
    for key, value in _plain(attributes).items():
        slot = _SPECIAL.get(key)
        if slot is None:
            value = clean(value)
            if value is not None:
                others[key if type(key) is str else clean_text(key) or "?"] = value
            continue
        group, field = slot
        if group == "code":
            code[field] = value
        elif group == "exception":
            exception[field] = value
        elif group == "thread":
            if type(value) is int and 0 <= value <= _MAX_INT32:
                process["tid"] = value
            elif (kept := clean(value)) is not None:
                others[key] = kept
    if code:
        enrichment = file_information(  # the current semconv names win over the older ones
            code.get("path", code.get("old_path")),
            code.get("function", code.get("old_function")),
            code.get("line", code.get("old_line")),
        )
        if enrichment:
            event["enrichments"] = [enrichment]
    if exception:
        info = exception_info(
            exception.get("type"), exception.get("message"), exception.get("stacktrace")
        )
        if info:
            unmapped["exception"] = info
    if others:
        unmapped["attributes"] = others


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


_NO_SCOPE: tuple[str | None, dict[str, Any]] = (None, {})
_scopes: dict[int, tuple[Any, tuple[str | None, dict[str, Any]]]] = {}


def _scope(scope: Any) -> tuple[str | None, dict[str, Any]]:
    """``(name, unmapped.scope)`` of an instrumentation scope, worked out once per scope."""
    cached = _scopes.get(id(scope))
    if cached is not None and cached[0] is scope:
        return cached[1]
    info: dict[str, Any] = {}
    for key in ("version", "schema_url"):
        value = clean_text(getattr(scope, key, None))
        if value:
            info[key] = value
    attributes = getattr(scope, "attributes", None)
    if attributes:
        cleaned = clean_mapping(_plain(attributes))
        if cleaned:
            info["attributes"] = cleaned
    result = (clean_text(getattr(scope, "name", None)), info)
    if len(_scopes) >= 512:  # loggers are few; a program making them without end is not
        _scopes.clear()
    _scopes[id(scope)] = (scope, result)
    return result


def _plain(attributes: Any) -> dict[Any, Any]:
    # BoundedAttributes.copy() is a C-level dict copy; iterating the Mapping ABC is 5x slower.
    copy = getattr(attributes, "copy", None)
    if copy is not None:
        try:
            result = copy()
            if type(result) is dict:
                return result
        except Exception:
            pass
    return dict(attributes.items())


def _copy_tree(value: Any) -> Any:
    if type(value) is dict:
        return {k: _copy_tree(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy_tree(v) for v in value]
    return value


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
        parts = _resource_parts(getattr(data, "resource", None), vendor_name)
        scope = getattr(data, "instrumentation_scope", None)
        source = clean_text(getattr(scope, "name", None)) if scope is not None else None
        return millis / 1000, parts.host, source or parts.service or program_name()
    except Exception:
        return time.time(), host_name(), program_name()


def is_internal(data: Any) -> bool:
    """True for a record py-mdr itself caused (marked ``py_mdr_internal``); never raises."""
    try:
        attributes = getattr(_record(data), "attributes", None)
        if not attributes:
            return False
        # a plain dict copy: BoundedAttributes.get goes through a raised KeyError when absent
        return bool(_plain(attributes).get(INTERNAL_ATTRIBUTE))
    except Exception:
        return False
