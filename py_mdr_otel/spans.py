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

import functools
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
from py_mdr_otel.span_network import (
    address_endpoint,
    is_hostname,
    number,
    port,
    split_host,
    text,
    url_parts,
)
from py_mdr_otel.span_plan import Plan, plan_for

__all__ = ["Encoded", "encode_span", "span_to_event"]

#: ``(event JSON, envelope time in seconds, host, source)`` of a span that is sent.
Encoded = tuple[bytes, float, str, str]

_SERVER = SpanKind.SERVER
_CLIENT = SpanKind.CLIENT
_ERROR = StatusCode.ERROR
_OK = StatusCode.OK
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
# The direction says which end the service was: it answered (SERVER) or asked (CLIENT).
_DIRECTION = {
    True: b',"connection_info":{"direction_id":1,"direction":"Inbound"}',
    False: b',"connection_info":{"direction_id":2,"direction":"Outbound"}',
}
_HTTP_FIXED = {
    (number_, serving): _fixed(4002, "HTTP Activity", (4, "Network Activity"), (number_, caption))
    + _DIRECTION[serving]
    for number_, caption in (
        *((n, m.capitalize()) for m, n in _HTTP_ACTIVITIES.items()),
        (99, "Other"),
    )
    for serving in (True, False)
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
    if kind is _SERVER:
        serving = True
    elif kind is _CLIENT:
        serving = False
    else:
        return _KIND_NAMES.get(kind, "unknown")
    attributes = span.attributes
    if not attributes:
        return _KIND_NAMES[kind]
    values = plain(attributes)
    plan = plan_for(serving, tuple(values))
    method = values[plan.method] if plan.method else None
    if method:
        shape = _shape(span, vendor_name)
        activity, members = _http(span, serving, values, plan, method, shape)
        head = (_HTTP_FIXED[activity, serving], shape.http_top, shape.http_meta)
    elif plan.rpc_system and values[plan.rpc_system]:
        shape = _shape(span, vendor_name)
        activity, members = _api(span, serving, values, plan, shape)
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
    last).
    """
    own_unmapped = members["unmapped"]
    if not own_unmapped:
        del members["unmapped"]
    own = memoryview(dumps(members))  # b'{"metadata":{...},...[,"unmapped":{...}]}'
    tail: tuple[Any, ...]
    if not unmapped:
        tail = (own[_OWN_HEAD:],)
    elif own_unmapped:
        tail = (own[_OWN_HEAD:-2], b",", unmapped, b"}}")
    else:
        tail = (own[_OWN_HEAD:-1], b',"unmapped":{', unmapped, b"}}")
    return b"".join((b"{", fixed, top, b',"metadata":{', meta, b",", *tail))


def _http(
    span: Any, serving: bool, values: dict[Any, Any], plan: Plan, method: Any, shape: _Shape
) -> tuple[int, dict[str, Any]]:
    """(activity id, the span's own members) of an HTTP span."""
    http_method = text(method) or str(method)
    if http_method == "_OTHER" and plan.method_original:
        http_method = text(values[plan.method_original]) or http_method
    activity = _HTTP_ACTIVITIES.get(http_method, 99)
    status = span.status
    failed = status.status_code is _ERROR
    code = number(values[plan.code]) if plan.code else None
    if code is None and failed and serving:
        code = 500

    full = text(values[plan.full]) if plan.full else None
    scheme = text(values[plan.scheme]) if plan.scheme else None
    path = text(values[plan.path]) if plan.path else None
    query = text(values[plan.query]) if plan.query else None
    url_host: str | None = None
    url_port: int | None = None
    if path is None or full is not None:
        target = text(values[plan.target]) if plan.target else None
        url_scheme, url_path, url_query, url_host, url_port = url_parts(full, target)
        scheme = scheme or url_scheme
        path = path or url_path
        query = query or url_query
    host, host_port = _server_address(values, plan, url_host, url_port)

    request: dict[str, Any] = {"http_method": http_method} if activity != 99 else {}
    url: dict[str, Any] = {}
    if scheme:
        url["scheme"] = scheme
    if host and is_hostname(host):
        url["hostname"] = host
    if host_port is not None:
        url["port"] = host_port
    if path:
        url["path"] = path
    if query:
        url["query_string"] = query
    if full:
        url["url_string"] = full
    if path or full:
        request["url"] = url
    agent = text(values[plan.agent]) if plan.agent else None
    if agent:
        request["user_agent"] = agent
    version = text(values[plan.version]) if plan.version else None
    if version:
        request["version"] = version
    ids = _ids(span)
    if not request:  # OCSF requires the request: name it by its span when nothing else is known
        request["uid"] = ids[1] or "unknown"

    if code is not None:
        status_id = 2 if failed or code >= 400 else 1
    else:
        status_id = 2 if failed else 1 if status.status_code is _OK else 0
    if failed or (code is not None and code >= 500):
        severity = 4
    elif serving and code in _DENIED_HTTP:
        severity = 3
    else:
        severity = 1
    route = (text(values[plan.route]) if plan.route else None) or path
    message = f"{http_method} {route}" if route else http_method
    if code is not None:
        message = f"{message} {code}"

    members = _members(span, ids, severity, status_id, code, message)
    members["http_request"] = request
    members["http_response"] = {"code": code if code is not None else 0}
    _endpoints(members, serving, values, plan, shape, host, host_port)
    user = _user(values, plan)
    if user:
        members["actor"] = {"user": user}
    conventional = (http_method, f"{http_method} {route}")  # what instrumentations call it
    unmapped = members["unmapped"] = _unmapped(span, values, plan.http_others, ids, conventional)
    if activity == 99:  # OCSF lists eight methods for http_method: the others are kept here
        unmapped["http_method"] = http_method
    return activity, members


def _api(
    span: Any, serving: bool, values: dict[Any, Any], plan: Plan, shape: _Shape
) -> tuple[int, dict[str, Any]]:
    """(activity id, the span's own members) of an RPC span."""
    service = text(values[plan.rpc_service]) if plan.rpc_service else None
    operation = (text(values[plan.rpc_method]) if plan.rpc_method else None) or text(span.name)
    operation = operation or "unknown"
    grpc = values[plan.rpc_system] == "grpc" if plan.rpc_system else False
    code = number(values[plan.rpc_code]) if plan.rpc_code else None
    plain_verb = _API_ACTIVITY.match(operation)
    activity = _API_ACTIVITIES[plain_verb.group().lower()] if plain_verb else 99
    status = span.status
    failed = status.status_code is _ERROR

    api: dict[str, Any] = {"operation": operation}
    if service:
        api["service"] = {"name": service}
    known_code = grpc and code is not None and 0 <= code < len(_GRPC_NAMES)
    response: dict[str, Any] = {}
    if code is not None:
        response["code"] = code
        if code and known_code:
            response["error"] = _GRPC_NAMES[code]
    description = text(status.description)
    if failed and description:
        response["error_message"] = description
    if response:
        api["response"] = response
    if code is not None:
        status_id = 2 if failed or code != 0 else 1
    else:
        status_id = 2 if failed else 1 if status.status_code is _OK else 0
    if failed or (grpc and code in _FAILED_GRPC):
        severity = 4
    elif serving and grpc and code in _DENIED_GRPC:
        severity = 3
    else:
        severity = 1
    outcome = _GRPC_NAMES[code] if known_code and code is not None else code
    called = f"{service}/{operation}" if service else operation
    message = called if outcome is None else f"{called} {outcome}"

    ids = _ids(span)
    members = _members(span, ids, severity, status_id, code, message)
    members["api"] = api
    _endpoints(members, serving, values, plan, shape, *_server_address(values, plan, None, None))
    if "src_endpoint" not in members:  # required here: a client nothing is known of
        members["src_endpoint"] = {"name": "unknown"}
    user = _user(values, plan)
    # API Activity requires an actor: without an end user, the service's own process acted
    members["actor"] = {"user": user} if user else {"process": shape.parts.process}
    unmapped = members["unmapped"] = _unmapped(span, values, plan.api_others, ids, (called,))
    unmapped["span_kind"] = "server" if serving else "client"  # API Activity has no direction
    return activity, members


_Ids = tuple["str | None", "str | None", "str | None"]  # trace, span, parent span (hex)


def _ids(span: Any) -> _Ids:
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


def _members(
    span: Any, ids: _Ids, severity: int, status_id: int, code: int | None, message: str
) -> dict[str, Any]:
    """The members every sent span has, ``metadata`` first."""
    meta: dict[str, Any] = {"uid": new_uid(), "sequence": next_sequence()}
    if ids[0]:
        meta["correlation_uid"] = ids[0]
    start, end = span.start_time, span.end_time
    if type(start) is int and type(end) is int and 0 < start <= end:  # an ended span
        start_ms = start // 1_000_000
        members: dict[str, Any] = {
            "metadata": meta,
            "time": start_ms,
            "start_time": start_ms,
            "end_time": end // 1_000_000,
            "duration": (end - start) // 1_000_000,
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


def _server_address(
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


def _endpoints(
    members: dict[str, Any],
    serving: bool,
    values: dict[Any, Any],
    plan: Plan,
    shape: _Shape,
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


def _user(values: dict[Any, Any], plan: Plan) -> dict[str, Any]:
    user: dict[str, Any] = {}
    uid = text(values[plan.user_id]) if plan.user_id else None
    if uid:
        user["uid"] = uid
    name = text(values[plan.user_name]) if plan.user_name else None
    if name:
        user["name"] = name
    return user


def _unmapped(
    span: Any,
    values: dict[Any, Any],
    others: tuple[Any, ...],
    ids: _Ids,
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
    kept: dict[str, Any] = {}
    for name in names:
        value = values[name]
        kind = type(value)
        if kind is str:
            if not value:
                continue
        elif kind is not int and kind is not bool:
            value = clean(value)
            if value is None:
                continue
        kept[name if type(name) is str else str(name)] = value
    return kept


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
