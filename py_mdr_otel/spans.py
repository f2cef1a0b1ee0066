"""OpenTelemetry spans to OCSF HTTP Activity (4002) and API Activity (6003).

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
import re
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode

from py_mdr.plain import dumps
from py_mdr.processing.redact import Redactor
from py_mdr_otel.resource import plain
from py_mdr_otel.span_members import (
    common_members,
    ids_of,
    place_endpoints,
    redact_own,
    server_address,
    unmapped_of,
    user_of,
)
from py_mdr_otel.span_network import is_hostname, number, text, url_parts
from py_mdr_otel.span_plan import Plan, plan_for
from py_mdr_otel.span_shape import API_FIXED, HTTP_ACTIVITIES, HTTP_FIXED, Shape, shape_of

__all__ = ["Encoded", "encode_span", "span_to_event"]

#: ``(event JSON, envelope time in seconds, host, source)`` of a span that is sent.
Encoded = tuple[bytes, float, str, str]

_SERVER = SpanKind.SERVER
_CLIENT = SpanKind.CLIENT
_ERROR = StatusCode.ERROR
_OK = StatusCode.OK
_KIND_NAMES = {kind: kind.name.lower() for kind in SpanKind}
_API_ACTIVITY = re.compile(r"(?:[Cc]reate|[Rr]ead|[Uu]pdate|[Dd]elete)(?![a-z])")
_API_ACTIVITIES = {"create": 1, "read": 2, "update": 3, "delete": 4}
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


def encode_span(
    span: Any,
    vendor_name: str | None = None,
    redact: Redactor | None = None,
) -> Encoded | str:
    """The exporter's one pass over a span: its event, encoded, with the envelope's fields.

    A span MDR does not take gives the name of its kind instead (``"internal"``, ``"client"``,
    ...), for counting. ``vendor_name`` stands in for a missing ``service.namespace``.
    ``redact``, a redactor when given, edits the span's own members (message, request, ``unmapped``,
    ``metadata``) in place before they are encoded. May raise for a span the SDK did not make;
    the exporter counts such a span as unmappable.
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
        shape = shape_of(span, vendor_name)
        activity, members = _http(span, serving, values, plan, method, shape)
        head = (HTTP_FIXED[activity, serving], shape.http_top, shape.http_meta)
    elif plan.rpc_system and values[plan.rpc_system]:
        shape = shape_of(span, vendor_name)
        activity, members = _api(span, serving, values, plan, shape)
        head = (API_FIXED[activity], shape.api_top, shape.api_meta)
    else:
        return _KIND_NAMES[kind]
    if redact is not None:
        redact_own(members, redact)
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
    span: Any, serving: bool, values: dict[Any, Any], plan: Plan, method: Any, shape: Shape
) -> tuple[int, dict[str, Any]]:
    """(activity id, the span's own members) of an HTTP span."""
    http_method = text(method) or str(method)
    if http_method == "_OTHER" and plan.method_original:
        http_method = text(values[plan.method_original]) or http_method
    activity = HTTP_ACTIVITIES.get(http_method, 99)
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
    host, host_port = server_address(values, plan, url_host, url_port)

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
    ids = ids_of(span)
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

    members = common_members(span, ids, severity, status_id, code, message)
    members["http_request"] = request
    members["http_response"] = {"code": code if code is not None else 0}
    place_endpoints(members, serving, values, plan, shape, host, host_port)
    user = user_of(values, plan)
    if user:
        members["actor"] = {"user": user}
    conventional = (http_method, f"{http_method} {route}")  # what instrumentations call it
    unmapped = members["unmapped"] = unmapped_of(span, values, plan.http_others, ids, conventional)
    if activity == 99:  # OCSF lists eight methods for http_method: the others are kept here
        unmapped["http_method"] = http_method
    return activity, members


def _api(
    span: Any, serving: bool, values: dict[Any, Any], plan: Plan, shape: Shape
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

    ids = ids_of(span)
    members = common_members(span, ids, severity, status_id, code, message)
    members["api"] = api
    place_endpoints(
        members, serving, values, plan, shape, *server_address(values, plan, None, None)
    )
    if "src_endpoint" not in members:  # required here: a client nothing is known of
        members["src_endpoint"] = {"name": "unknown"}
    user = user_of(values, plan)
    # API Activity requires an actor: without an end user, the service's own process acted
    members["actor"] = {"user": user} if user else {"process": shape.parts.process}
    unmapped = members["unmapped"] = unmapped_of(span, values, plan.api_others, ids, (called,))
    unmapped["span_kind"] = "server" if serving else "client"  # API Activity has no direction
    return activity, members
