"""The members every event made from a span has, whatever its class.

Ids, times, severity and status, the endpoints, the actor's user and the span's own ``unmapped``
entries; each helper reads the span or the values a :class:`~py_mdr_otel.span_plan.Plan` points
at, and builds OCSF-ready dicts.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from py_mdr.eventlog import endpoint, exception_info, new_uid, next_sequence
from py_mdr.plain import clean, plain_fields
from py_mdr.processing.redact import Redactor
from py_mdr_otel.resource import plain
from py_mdr_otel.span_network import address_endpoint, port, split_host, text
from py_mdr_otel.span_plan import Plan
from py_mdr_otel.span_shape import Shape

__all__ = [
    "Ids",
    "common_members",
    "ids_of",
    "place_endpoints",
    "redact_own",
    "server_address",
    "unmapped_of",
    "user_of",
]

#: The URL parts a redactor sees.
_REQUEST_TEXT = ("path", "query_string", "url_string")

_STATUS = {0: "Unknown", 1: "Success", 2: "Failure"}
_SEVERITY = {1: "Informational", 3: "Medium", 4: "High"}
#: Trace, span and parent span ids, in hex (None when unset).
Ids = tuple["str | None", "str | None", "str | None"]


def ids_of(span: Any) -> Ids:
    """Trace, span and parent span ids as hex (None when unset); raises for a foreign span whose
    ids are no integers."""
    context = span.context
    trace_id = context.trace_id if context is not None else 0
    span_id = context.span_id if context is not None else 0
    parent = span.parent
    parent_id = parent.span_id if parent is not None else 0
    return (
        f"{trace_id:032x}" if trace_id else None,
        f"{span_id:016x}" if span_id else None,
        f"{parent_id:016x}" if parent_id else None,
    )


def common_members(
    span: Any, ids: Ids, severity: int, status_id: int, code: int | None, message: str
) -> dict[str, Any]:
    """The members every sent span has, ``metadata`` first.

    The event's ``uid`` is the span's own (trace and span id), so a span exported twice is one
    event downstream; a span without ids gets a random one.
    """
    trace_id, span_id = ids[0], ids[1]
    uid = f"{trace_id}-{span_id}" if trace_id and span_id else new_uid()
    meta: dict[str, Any] = {"uid": uid, "sequence": next_sequence()}
    if trace_id:
        meta["correlation_uid"] = trace_id
    start, end = span.start_time, span.end_time
    if type(start) is int and type(end) is int and 0 < start <= end:  # an ended span
        start_ms, end_ms = start // 1_000_000, end // 1_000_000
        members: dict[str, Any] = {
            "metadata": meta,
            "time": start_ms,
            "start_time": start_ms,
            "end_time": end_ms,
            "duration": end_ms - start_ms,  # as the two times read, not 1 ms apart from them
            "severity_id": severity,
            "severity": _SEVERITY[severity],
            "status_id": status_id,
            "status": _STATUS[status_id],
        }
    else:
        members = {"metadata": meta, "time": _ms(start) or _ms(end) or int(time.time() * 1000)}
        members.update(severity_id=severity, severity=_SEVERITY[severity])
        members.update(status_id=status_id, status=_STATUS[status_id])
    if code is not None:
        members["status_code"] = str(code)
    description = span.status.description
    if description:
        detail = text(description)
        if detail:
            members["status_detail"] = detail
    members["message"] = text(message) or "?"
    return members


def _ms(nanoseconds: Any) -> int | None:
    return nanoseconds // 1_000_000 if type(nanoseconds) is int and nanoseconds > 0 else None


def server_address(
    values: dict[Any, Any], plan: Plan, url_host: str | None, url_port: int | None
) -> tuple[str | None, int | None]:
    """The server's host and port: the service's own (SERVER), the one called (CLIENT)."""
    host = text(values[plan.host]) if plan.host else None
    host_port = port(values[plan.host_port]) if plan.host_port else None
    if host is None:
        host = url_host
    else:
        host, embedded = split_host(host)
        if host_port is None:
            host_port = embedded
    return host, url_port if host_port is None else host_port


def place_endpoints(
    members: dict[str, Any],
    serving: bool,
    values: dict[Any, Any],
    plan: Plan,
    shape: Shape,
    host: str | None,
    host_port: int | None,
) -> None:
    """``src_endpoint`` (when known) and ``dst_endpoint`` of a SERVER or CLIENT span."""
    peer = text(values[plan.peer]) if plan.peer else None
    if serving:
        client = _client(values, plan, peer)
        if client:
            members["src_endpoint"] = client
        parts = shape.parts
        members["dst_endpoint"] = _own_endpoint(host, host_port, parts.service, parts.host)
        return
    server = address_endpoint(host, host_port)
    members["src_endpoint"] = shape.service  # shared, like _own_endpoint's
    if peer and "ip" not in server:
        ip = address_endpoint(peer, None).get("ip")
        if ip:
            server["ip"] = ip
    remote_service = text(values[plan.peer_service]) if plan.peer_service else None
    if remote_service:
        server["svc_name"] = remote_service
    members["dst_endpoint"] = server or {"name": "unknown"}


@functools.lru_cache(maxsize=256)
def _own_endpoint(
    host: str | None, host_port: int | None, service: str, own_host: str
) -> dict[str, Any]:
    """A SERVER span's ``dst_endpoint``: the address it was asked at (else the service's host),
    and the service. The same few for every request, so shared between events, which are
    encoded and never changed."""
    found = address_endpoint(host, host_port) or endpoint(own_host)
    if service:
        found["svc_name"] = service
    return found


def _client(values: dict[Any, Any], plan: Plan, peer: str | None) -> dict[str, Any]:
    """The client of a SERVER span: the original client, the proxy it came through if known."""
    address = text(values[plan.client]) if plan.client else None
    if not address:
        return {}
    client_port = port(values[plan.client_port]) if plan.client_port else None
    client = address_endpoint(address, client_port)
    if peer and peer != address and "ip" in client:
        via = address_endpoint(peer, None).get("ip")
        if via:
            client["intermediate_ips"] = [via]
    name = text(values[plan.client_name]) if plan.client_name else None
    if name and "hostname" not in client and "name" not in client:
        client.update(endpoint(name))
    return client


def user_of(values: dict[Any, Any], plan: Plan) -> dict[str, Any]:
    """The end user the span names (the actor of the request), or ``{}``."""
    user: dict[str, Any] = {}
    uid = text(values[plan.user_id]) if plan.user_id else None
    if uid:
        user["uid"] = uid
    name = text(values[plan.user_name]) if plan.user_name else None
    if name:
        user["name"] = name
    return user


def unmapped_of(
    span: Any,
    values: dict[Any, Any],
    others: tuple[Any, ...],
    ids: Ids,
    conventional: tuple[str, ...],
) -> dict[str, Any]:
    """The span's own ``unmapped`` entries: other attributes, ids, exception, other events, and
    the span's name unless it is one of the ``conventional`` names the event says already."""
    unmapped: dict[str, Any] = {}
    if others:
        kept = _other_attributes(values, others)
        if kept:
            unmapped["attributes"] = kept
    if ids[1] or ids[2]:
        trace = unmapped["trace"] = {}
        if ids[1]:
            trace["span_id"] = ids[1]
        if ids[2]:
            trace["parent_span_id"] = ids[2]
    name = text(span.name)
    if name and name not in conventional:
        unmapped["span_name"] = name
    events = span.events
    if events:
        _events(events, unmapped)
    dropped = span.dropped_attributes
    if type(dropped) is int and dropped > 0:
        unmapped["dropped_attributes"] = dropped
    return unmapped


def _other_attributes(values: dict[Any, Any], names: tuple[Any, ...]) -> dict[str, Any]:
    return plain_fields((name, values[name]) for name in names)


def _events(events: Any, unmapped: dict[str, Any]) -> None:
    """The last ``exception`` event as ``unmapped.exception``; any other event (an earlier
    exception too) in ``events``."""
    events = list(events)
    last = max((i for i, event in enumerate(events) if event.name == "exception"), default=-1)
    others = []
    for index, event in enumerate(events):
        attributes = plain(event.attributes) if event.attributes else {}
        if index == last:
            info = exception_info(
                attributes.get("exception.type"),
                attributes.get("exception.message"),
                attributes.get("exception.stacktrace"),
            )
            if info:
                unmapped["exception"] = info
            continue
        entry: dict[str, Any] = {"name": text(event.name) or "?"}
        stamp = event.timestamp
        if type(stamp) is int and stamp > 0:
            entry["time"] = stamp // 1_000_000
        cleaned = clean(attributes)
        if cleaned:
            entry["attributes"] = cleaned
        others.append(entry)
    if others:
        unmapped["events"] = others


def redact_own(members: dict[str, Any], redactor: Redactor) -> None:
    """Redact the span's own members in place.

    The redactor sees what the application and its users write where secrets turn up: the URL's
    path and query, the status description, the other attributes, exception and events, and
    ``api``; not the ids, codes and names the mapping put there, nor the client's user agent.
    The message quotes the route, else the path, and follows the path's redaction.
    """
    request: dict[str, Any] = members.get("http_request") or {}
    url: dict[str, Any] = request.get("url") or {}
    unmapped = members["unmapped"]
    if (
        not members.get("status_detail")
        and "api" not in members
        and all(key == "trace" for key in unmapped)
        and all(
            type(value) is str and redactor.looks_clean(value)
            for key, value in url.items()
            if key in _REQUEST_TEXT
        )
    ):
        return  # the usual request: only its URL to look at, and nothing there could match
    view: dict[str, Any] = {}
    asked = {key: url[key] for key in _REQUEST_TEXT if key in url}
    if asked:
        view["http_request"] = asked
    if "api" in members:
        view["api"] = members["api"]
    written = {key: value for key, value in members["unmapped"].items() if key != "trace"}
    detail = members.get("status_detail")
    if detail:
        written["status_detail"] = detail
    if written:
        view["unmapped"] = written
    if not view:
        return
    redactor.event(view)
    labels = view.get("metadata", {}).get("labels")
    if not labels:
        return  # nothing found: the redactor changed nothing
    members["metadata"]["labels"] = labels
    if "api" in view:
        members["api"] = view["api"]
    if "unmapped" in view:
        redacted = dict(view["unmapped"])
        if detail:
            members["status_detail"] = redacted.pop("status_detail")
        members["unmapped"].update(redacted)
    if asked:
        path = url.get("path")
        url.update(view["http_request"])
        if path and url["path"] != path:
            members["message"] = members["message"].replace(path, url["path"], 1)
