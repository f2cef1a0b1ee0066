"""OpenTelemetry spans to OCSF HTTP Activity (4002) and API Activity (6003), per ``TRACES.md``.

A span is sent when it records network activity the service took part in: kind SERVER or CLIENT
with an HTTP method (HTTP Activity) or with ``rpc.system`` (API Activity). Every other span is
skipped: :func:`encode_span` then returns its kind's name, for the exporter to count.

Both the stable semantic-convention names and the older ones are read; attributes without an
OCSF home go to ``unmapped.attributes``. The resource and scope give the same product, device and
cloud as for logs (:mod:`py_mdr_otel.resource`), encoded once per (resource, scope) and spliced
into each event. A method outside the eight that OCSF lists for ``http_request.http_method``
(PATCH, WebDAV's) gives activity 99 (Other) and is kept in ``unmapped.http_method`` and the
message. Two cases the conventions leave open: a SERVER span that failed (status ERROR)
without a status code answered 500, which is what WSGI and ASGI servers send for an unhandled
exception; a span without any status code (the request got no answer) records code 0, as
browsers do, since OCSF requires a code.
See https://schema.ocsf.io/1.3.0/classes/http_activity and .../classes/api_activity
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode

from py_mdr import __version__
from py_mdr.eventlog import (
    endpoint,
    exception_info,
    metadata_fixed,
    new_uid,
    next_sequence,
    program_name,
)
from py_mdr.serialize import clean, dumps
from py_mdr_otel.resource import ResourceParts, plain, resource_parts, scope_info
from py_mdr_otel.span_network import address_endpoint, number, port, split_host, text, url_parts

__all__ = ["Encoded", "encode_span", "span_to_event"]

#: ``(event JSON, envelope time in seconds, host, source)`` of a span that is sent.
Encoded = tuple[bytes, float, str, str]

_SERVER = SpanKind.SERVER
_CLIENT = SpanKind.CLIENT
_KIND_NAMES = {kind: kind.name.lower() for kind in SpanKind}


def _fixed(
    class_uid: int, class_name: str, category: tuple[int, str], activity: tuple[int, str]
) -> bytes:
    """The classification members of one class and activity, encoded, without braces."""
    members = {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category[0],
        "category_name": category[1],
        "activity_id": activity[0],
        "activity_name": activity[1],
        "type_uid": class_uid * 100 + activity[0],
        "type_name": f"{class_name}: {activity[1]}",
    }
    return dumps(members)[1:-1]


_HTTP_ACTIVITIES = {
    "CONNECT": 1,
    "DELETE": 2,
    "GET": 3,
    "HEAD": 4,
    "OPTIONS": 5,
    "POST": 6,
    "PUT": 7,
    "TRACE": 8,
}
_HTTP_FIXED = {
    number_: _fixed(4002, "HTTP Activity", (4, "Network Activity"), (number_, caption))
    for number_, caption in (
        *((n, m.capitalize()) for m, n in _HTTP_ACTIVITIES.items()),
        (99, "Other"),
    )
}
_API_ACTIVITY = re.compile(r"(?:[Cc]reate|[Rr]ead|[Uu]pdate|[Dd]elete)(?![a-z])")
_API_ACTIVITIES = {"create": 1, "read": 2, "update": 3, "delete": 4}
_API_FIXED = {
    number_: _fixed(6003, "API Activity", (6, "Application Activity"), (number_, caption))
    for number_, caption in enumerate(("Create", "Read", "Update", "Delete"), start=1)
}
_API_FIXED[99] = _fixed(6003, "API Activity", (6, "Application Activity"), (99, "Other"))

_STATUS = {0: "Unknown", 1: "Success", 2: "Failure"}
_SEVERITY = {1: "Informational", 3: "Medium", 4: "High"}
#: Answers a SERVER span gives that detection cares about: access denied, rate limited.
_DENIED_HTTP = frozenset({401, 403, 429})
_GRPC_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
_DENIED_GRPC = frozenset({7, 8, 16})  # PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAUTHENTICATED
_FAILED_GRPC = frozenset({2, 4, 12, 13, 14, 15})  # the server errors, as 5xx are for HTTP

# Where a SERVER span names its client: (address, port), the original client first, then the
# immediate peer; stable names before older ones.
_CLIENT_PAIRS = (
    ("client.address", "client.port"),
    ("http.client_ip", ""),
    ("net.peer.ip", "net.peer.port"),
    ("network.peer.address", "network.peer.port"),
    ("net.sock.peer.addr", "net.sock.peer.port"),
)
_PEER_ADDRESSES = ("network.peer.address", "net.sock.peer.addr", "net.peer.ip")
_SERVER_ADDRESSES = ("server.address", "http.host", "net.host.name", "http.server_name")
_SERVER_PORTS = ("server.port", "net.host.port")
_REMOTE_ADDRESSES = ("server.address", "net.peer.name", "http.host")
_REMOTE_PORTS = ("server.port", "net.peer.port")

_ENDPOINT_KEYS = frozenset(
    {
        *(key for pair in _CLIENT_PAIRS for key in pair if key),
        *_SERVER_ADDRESSES,
        *_SERVER_PORTS,
        *_REMOTE_ADDRESSES,
        *_REMOTE_PORTS,
        "net.peer.name",
        "peer.service",
        "enduser.id",
        "user.id",
        "user.name",
    }
)
#: Attributes the HTTP mapping gives an OCSF home (the rest go to ``unmapped.attributes``).
_HTTP_KEYS = _ENDPOINT_KEYS | {
    "http.request.method",
    "http.method",
    "http.request.method_original",
    "url.scheme",
    "http.scheme",
    "url.path",
    "url.query",
    "http.target",
    "url.full",
    "http.url",
    "user_agent.original",
    "http.user_agent",
    "network.protocol.version",
    "http.flavor",
    "http.response.status_code",
    "http.status_code",
    "http.route",
}
_API_KEYS = _ENDPOINT_KEYS | {"rpc.service", "rpc.method", "rpc.grpc.status_code"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


# Per (resource, scope): what every span of one source shares, encoded once -------------------


@dataclass(frozen=True)
class _Shape:
    parts: ResourceParts
    source: str  # the HEC envelope source: scope name, else service name, else program name
    service: dict[str, Any]  # the service itself as an endpoint: its host and svc_name
    http_top: bytes  # ``,"device":{...}[,"cloud":{...}]``
    http_meta: bytes  # metadata members every HTTP Activity of this source shares
    api_top: bytes  # ``[,"cloud":{...}]``
    api_meta: bytes
    unmapped: bytes  # ``"scope":{...},"resource":{...}`` members, or b""


_shapes: dict[tuple[int, int, str | None], tuple[object, object, _Shape]] = {}


def _forget_shapes_after_fork() -> None:
    _shapes.clear()  # a shape holds this process's pid when the resource has none


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_shapes_after_fork)


def _shape(span: Any, vendor_name: str | None) -> _Shape:
    resource = span.resource
    scope = span.instrumentation_scope
    key = (id(resource), id(scope), vendor_name)
    cached = _shapes.get(key)
    if cached is not None and cached[0] is resource and cached[1] is scope:
        return cached[2]
    shape = _build_shape(resource, scope, vendor_name)
    if len(_shapes) >= 512:  # resources and tracers are few; bounded all the same
        _shapes.clear()
    _shapes[key] = (resource, scope, shape)
    return shape


def _build_shape(resource: Any, scope: Any, vendor_name: str | None) -> _Shape:
    parts = resource_parts(resource, vendor_name)
    scope_name, scope_details = scope_info(scope)
    service = dict(parts.endpoint)
    if parts.service:
        service["svc_name"] = parts.service
    cloud = {"cloud": parts.cloud} if parts.cloud else {}
    http_meta = metadata_fixed(parts.product, __version__)
    http_meta["profiles"] = ["host", "cloud"] if cloud else ["host"]  # device and actor: host
    api_meta = metadata_fixed(parts.product, __version__)
    if cloud:
        api_meta["profiles"] = ["cloud"]
    unmapped: dict[str, Any] = {}
    if scope_name or scope_details:
        unmapped["scope"] = {"name": scope_name, **scope_details} if scope_name else scope_details
    if parts.unmapped:
        unmapped["resource"] = parts.unmapped
    return _Shape(
        parts=parts,
        source=scope_name or parts.service or program_name(),
        service=service,
        http_top=b"," + _members_json({"device": parts.device, **cloud}),
        http_meta=_members_json(http_meta),
        api_top=b"," + _members_json(cloud) if cloud else b"",
        api_meta=_members_json(api_meta),
        unmapped=_members_json(unmapped),
    )


def _members_json(members: dict[str, Any]) -> bytes:
    return dumps(members)[1:-1]  # ``{}`` gives b""


# Per span -------------------------------------------------------------------------------------


def encode_span(span: Any, vendor_name: str | None = None) -> Encoded | str:
    """The exporter's one pass over a span: its event, encoded, with the envelope's fields.

    A span MDR does not take gives the name of its kind instead (``"internal"``, ``"client"``,
    ...), for counting. ``vendor_name`` stands in for a missing ``service.namespace``. May raise
    for a span the SDK did not make; the exporter counts such a span as unmappable.
    """
    kind = span.kind
    if kind is not _SERVER and kind is not _CLIENT:
        return _KIND_NAMES.get(kind, "unknown")
    attributes = span.attributes
    if not attributes:
        return _KIND_NAMES[kind]
    values = plain(attributes)
    method = values.get("http.request.method") or values.get("http.method")
    if method:
        shape = _shape(span, vendor_name)
        activity, members = _http(span, kind, values, method, shape)
        head = (_HTTP_FIXED[activity], shape.http_top, shape.http_meta)
    elif values.get("rpc.system"):
        shape = _shape(span, vendor_name)
        activity, members = _api(span, kind, values, shape)
        head = (_API_FIXED[activity], shape.api_top, shape.api_meta)
    else:
        return _KIND_NAMES[kind]
    event = _join(*head, members, shape.unmapped)
    return event, members["time"] / 1000, shape.parts.host, shape.source


def span_to_event(span: Any, *, vendor_name: str | None = None) -> dict[str, Any] | None:
    """The OCSF event for a span as a new JSON-ready dict, exactly as sent; None when skipped."""
    encoded = encode_span(span, vendor_name)
    if isinstance(encoded, str):
        return None
    event: dict[str, Any] = json.loads(encoded[0])
    return event


_OWN_HEAD = len(b'{"metadata":{')  # a span's own members start with its metadata


def _join(fixed: bytes, top: bytes, meta: bytes, members: dict[str, Any], unmapped: bytes) -> bytes:
    """The event: classification, the shape's members, and the span's own, in one object.

    The span's members are encoded in one call; the shape's metadata goes into the span's
    ``metadata`` (always first) and the shape's unmapped entries into its ``unmapped`` (always
    last, and always present).
    """
    own = dumps(members)  # b'{"metadata":{...},...,"unmapped":{...}}'
    if unmapped:
        tail = own[_OWN_HEAD:-2] + (b"," if members["unmapped"] else b"") + unmapped + b"}}"
    else:
        tail = own[_OWN_HEAD:]
    return b"".join((b"{", fixed, top, b',"metadata":{', meta, b",", tail))


def _times(span: Any, members: dict[str, Any]) -> None:
    start, end = span.start_time, span.end_time
    start_ms = start // 1_000_000 if type(start) is int and start > 0 else None
    end_ms = end // 1_000_000 if type(end) is int and end > 0 else None
    members["time"] = start_ms or end_ms or int(time.time() * 1000)
    if start_ms:
        members["start_time"] = start_ms
    if end_ms:
        members["end_time"] = end_ms
    if start_ms and end_ms and end >= start:
        members["duration"] = (end - start) // 1_000_000


def _metadata(span: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"uid": new_uid(), "sequence": next_sequence()}
    context = span.context
    trace_id = getattr(context, "trace_id", 0)
    if type(trace_id) is int and trace_id:
        meta["correlation_uid"] = f"{trace_id:032x}"
    return meta


def _http(
    span: Any, kind: SpanKind, values: dict[Any, Any], method: Any, shape: _Shape
) -> tuple[int, dict[str, Any]]:
    """(activity id, the span's own members) of an HTTP span."""
    http_method = text(method) or str(method)
    if http_method == "_OTHER":
        http_method = text(values.get("http.request.method_original")) or http_method
    activity = _HTTP_ACTIVITIES.get(http_method, 99)
    status = span.status
    failed = status.status_code is StatusCode.ERROR
    code = number(values.get("http.response.status_code"))
    if code is None:
        code = number(values.get("http.status_code"))
    if code is None and failed and kind is _SERVER:
        code = 500

    full = text(values.get("url.full")) or text(values.get("http.url"))
    scheme = text(values.get("url.scheme")) or text(values.get("http.scheme"))
    path = text(values.get("url.path"))
    query = text(values.get("url.query"))
    url_host: str | None = None
    url_port: int | None = None
    if path is None or full is not None:
        found = url_parts(full, text(values.get("http.target")))
        scheme = scheme or found[0]
        path = path or found[1]
        query = query or found[2]
        url_host, url_port = found[3], found[4]
    src, dst, host, host_port = _endpoints(kind, values, shape, url_host, url_port)

    request: dict[str, Any] = {"http_method": http_method} if activity != 99 else {}
    url: dict[str, Any] = {}
    if scheme:
        url["scheme"] = scheme
    if host and "hostname" in endpoint(host):
        url["hostname"] = host
    if host_port is not None:
        url["port"] = host_port
    if path:
        url["path"] = path
    if query:
        url["query_string"] = query
    if full is None and scheme and host and path:
        full = text(_compose(scheme, host, host_port, path, query))
    if full:
        url["url_string"] = full
    if path or full:
        request["url"] = url
    agent = text(values.get("user_agent.original")) or text(values.get("http.user_agent"))
    if agent:
        request["user_agent"] = agent
    version = text(values.get("network.protocol.version")) or text(values.get("http.flavor"))
    if version:
        request["version"] = version
    if not request:  # OCSF requires the request: name it by its span when nothing else is known
        span_id = getattr(span.context, "span_id", 0)
        request["uid"] = f"{span_id:016x}" if type(span_id) is int and span_id else "unknown"

    response = {"code": code if code is not None else 0}
    if code is not None:
        status_id = 2 if failed or code >= 400 else 1
    else:
        status_id = 2 if failed else 1 if status.status_code is StatusCode.OK else 0
    if failed or (code is not None and code >= 500):
        severity = 4
    elif kind is _SERVER and code in _DENIED_HTTP:
        severity = 3
    else:
        severity = 1

    route = text(values.get("http.route")) or path
    message = " ".join(str(part) for part in (http_method, route, code) if part is not None)
    members = _members(span, severity, status_id, code, message)
    members["http_request"] = request
    members["http_response"] = response
    _place_endpoints(members, src, dst)
    user = _user(values)
    if user:
        members["actor"] = {"user": user}
    unmapped = members["unmapped"] = _unmapped(span, kind, values, _HTTP_KEYS)
    if activity == 99:  # OCSF lists eight methods for http_method: the others are kept here
        unmapped["http_method"] = http_method
    return activity, members


def _api(
    span: Any, kind: SpanKind, values: dict[Any, Any], shape: _Shape
) -> tuple[int, dict[str, Any]]:
    """(activity id, the span's own members) of an RPC span."""
    service = text(values.get("rpc.service"))
    operation = text(values.get("rpc.method")) or text(span.name) or "unknown"
    grpc = values.get("rpc.system") == "grpc"
    code = number(values.get("rpc.grpc.status_code"))
    plain_verb = _API_ACTIVITY.match(operation)
    activity = _API_ACTIVITIES[plain_verb.group().lower()] if plain_verb else 99
    status = span.status
    failed = status.status_code is StatusCode.ERROR

    api: dict[str, Any] = {"operation": operation}
    if service:
        api["service"] = {"name": service}
    response: dict[str, Any] = {}
    if code is not None:
        response["code"] = code
        if code and grpc and code < len(_GRPC_NAMES):
            response["error"] = _GRPC_NAMES[code]
    if failed and status.description:
        response["error_message"] = status.description
    if response:
        api["response"] = response
    if code is not None:
        status_id = 2 if failed or code != 0 else 1
    else:
        status_id = 2 if failed else 1 if status.status_code is StatusCode.OK else 0
    if failed or (grpc and code in _FAILED_GRPC):
        severity = 4
    elif kind is _SERVER and grpc and code in _DENIED_GRPC:
        severity = 3
    else:
        severity = 1

    outcome = _GRPC_NAMES[code] if grpc and code is not None and code < len(_GRPC_NAMES) else code
    called = f"{service}/{operation}" if service else operation
    message = called if outcome is None else f"{called} {outcome}"
    members = _members(span, severity, status_id, code, message)
    members["api"] = api
    src, dst, _, _ = _endpoints(kind, values, shape, None, None)
    _place_endpoints(members, src or {"name": "unknown"}, dst)
    user = _user(values)
    # API Activity requires an actor: without an end user, the service's own process acted
    members["actor"] = {"user": user} if user else {"process": dict(shape.parts.process)}
    members["unmapped"] = _unmapped(span, kind, values, _API_KEYS)
    return activity, members


def _members(
    span: Any, severity: int, status_id: int, code: int | None, message: str
) -> dict[str, Any]:
    """The members every sent span has, ``metadata`` first."""
    members: dict[str, Any] = {"metadata": _metadata(span)}
    _times(span, members)
    members["severity_id"] = severity
    members["severity"] = _SEVERITY[severity]
    members["status_id"] = status_id
    members["status"] = _STATUS[status_id]
    if code is not None:
        members["status_code"] = str(code)
    description = span.status.description
    if description and type(description) is str:
        members["status_detail"] = text(description)
    if message:
        members["message"] = text(message)
    return members


def _endpoints(
    kind: SpanKind,
    values: dict[Any, Any],
    shape: _Shape,
    url_host: str | None,
    url_port: int | None,
) -> tuple[dict[str, Any], dict[str, Any], str | None, int | None]:
    """(src_endpoint, dst_endpoint, server host, server port) of a SERVER or CLIENT span."""
    serving = kind is _SERVER
    host = _first_text(values, _SERVER_ADDRESSES if serving else _REMOTE_ADDRESSES) or url_host
    host_port = _first_port(values, _SERVER_PORTS if serving else _REMOTE_PORTS)
    if host is not None:
        host, embedded = split_host(host)
        if host_port is None:
            host_port = embedded
    if host_port is None:
        host_port = url_port
    server = address_endpoint(host, host_port)
    peer = _first_text(values, _PEER_ADDRESSES)
    if serving:
        if not server:
            server = dict(shape.service)
        elif shape.parts.service:
            server["svc_name"] = shape.parts.service
        return _client(values, peer), server, host, host_port
    if peer and "ip" not in server:
        found = address_endpoint(peer, None)
        if "ip" in found:
            server["ip"] = found["ip"]
    remote_service = text(values.get("peer.service"))
    if remote_service:
        server["svc_name"] = remote_service
    return dict(shape.service), server or {"name": "unknown"}, host, host_port


def _client(values: dict[Any, Any], peer: str | None) -> dict[str, Any]:
    """The client of a SERVER span: the original client, the proxy it came through if known."""
    for address_key, port_key in _CLIENT_PAIRS:
        address = text(values.get(address_key))
        if address:
            client = address_endpoint(address, port(values.get(port_key)) if port_key else None)
            break
    else:
        return {}
    if peer and peer != address and "ip" in client:
        via = address_endpoint(peer, None).get("ip")
        if via:
            client["intermediate_ips"] = [via]
    name = text(values.get("net.peer.name"))
    if name and "hostname" not in client and "name" not in client:
        client.update(endpoint(name))
    return client


def _place_endpoints(members: dict[str, Any], src: dict[str, Any], dst: dict[str, Any]) -> None:
    if src:
        members["src_endpoint"] = src
    members["dst_endpoint"] = dst


def _first_text(values: dict[Any, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        found = text(values.get(key))
        if found:
            return found
    return None


def _first_port(values: dict[Any, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        found = port(values.get(key))
        if found is not None:
            return found
    return None


def _compose(scheme: str, host: str, host_port: int | None, path: str, query: str | None) -> str:
    """The full URL from its parts (the conventions give a SERVER span's URL only in parts)."""
    if ":" in host:
        host = f"[{host}]"
    if host_port is not None and _DEFAULT_PORTS.get(scheme) != host_port:
        host = f"{host}:{host_port}"
    return f"{scheme}://{host}{path}?{query}" if query else f"{scheme}://{host}{path}"


def _user(values: dict[Any, Any]) -> dict[str, Any]:
    user: dict[str, Any] = {}
    uid = text(values.get("enduser.id")) or text(values.get("user.id"))
    if uid:
        user["uid"] = uid
    name = text(values.get("user.name"))
    if name:
        user["name"] = name
    return user


def _unmapped(
    span: Any, kind: SpanKind, values: dict[Any, Any], known: frozenset[str]
) -> dict[str, Any]:
    """The span's own ``unmapped`` entries: other attributes, ids, exception, other events."""
    unmapped: dict[str, Any] = {}
    others: dict[str, Any] = {}
    for key, value in values.items():
        if key in known:
            continue
        kind_of = type(value)
        if kind_of is str:
            if not value:
                continue
        elif kind_of is not int and kind_of is not bool:
            value = clean(value)
            if value is None:
                continue
        others[key if type(key) is str else str(key)] = value
    if others:
        unmapped["attributes"] = others
    trace = _trace(span)
    if trace:
        unmapped["trace"] = trace
    name = text(span.name)
    kind_name = _KIND_NAMES[kind]
    unmapped["span"] = {"name": name, "kind": kind_name} if name else {"kind": kind_name}
    events = span.events
    if events:
        _events(events, unmapped)
    dropped = span.dropped_attributes
    if type(dropped) is int and dropped > 0:
        unmapped["dropped_attributes"] = dropped
    return unmapped


def _trace(span: Any) -> dict[str, Any]:
    trace: dict[str, Any] = {}
    context = span.context
    trace_id = getattr(context, "trace_id", 0)
    span_id = getattr(context, "span_id", 0)
    if type(trace_id) is int and trace_id:
        trace["trace_id"] = f"{trace_id:032x}"
    if type(span_id) is int and span_id:
        trace["span_id"] = f"{span_id:016x}"
    parent_id = getattr(span.parent, "span_id", 0)
    if type(parent_id) is int and parent_id:
        trace["parent_span_id"] = f"{parent_id:016x}"
    return trace


def _events(events: Any, unmapped: dict[str, Any]) -> None:
    """The last ``exception`` event as ``unmapped.exception``; any other event in ``events``."""
    others = []
    for event in events:
        attributes = plain(event.attributes) if event.attributes else {}
        if event.name == "exception":
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
