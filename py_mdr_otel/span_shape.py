"""The parts of a span's OCSF event that many spans share, encoded once.

Per class and activity: the classification members (and, for HTTP Activity, the direction). Per
source (a resource and an instrumentation scope, the same objects span after span): product,
device, cloud and leftover resource attributes from :mod:`py_mdr_otel.resource`, as for logs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from py_mdr import __version__
from py_mdr.eventlog import metadata_fixed, program_name
from py_mdr.plain import dumps
from py_mdr_otel.resource import ResourceParts, resource_parts, scope_info

__all__ = ["API_FIXED", "HTTP_ACTIVITIES", "HTTP_FIXED", "Shape", "shape_of"]


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
    # built on import, so the stdlib encoder (the same bytes for these names and numbers)
    return json.dumps(members, separators=(",", ":")).encode()[1:-1]


HTTP_ACTIVITIES = {
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
HTTP_FIXED = {
    (number_, serving): _fixed(4002, "HTTP Activity", (4, "Network Activity"), (number_, caption))
    + _DIRECTION[serving]
    for number_, caption in (
        *((n, m.capitalize()) for m, n in HTTP_ACTIVITIES.items()),
        (99, "Other"),
    )
    for serving in (True, False)
}
API_FIXED = {
    number_: _fixed(6003, "API Activity", (6, "Application Activity"), (number_, caption))
    for number_, caption in enumerate(("Create", "Read", "Update", "Delete"), start=1)
}
API_FIXED[99] = _fixed(6003, "API Activity", (6, "Application Activity"), (99, "Other"))


@dataclass(frozen=True)
class Shape:
    """What every span of one source shares; the dicts are shared by events, never changed."""

    parts: ResourceParts
    source: str  # the HEC envelope source: scope name, else service name, else program name
    service: dict[str, Any]  # the service itself as an endpoint: its host and svc_name
    http_top: bytes  # ``,"device":{...}[,"cloud":{...}]``
    http_meta: bytes  # metadata members every HTTP Activity of this source shares
    api_top: bytes  # ``[,"cloud":{...}]``
    api_meta: bytes
    unmapped: bytes  # ``"scope":{...},"resource":{...}`` members, or b""


_shapes: dict[tuple[int, int, str | None], tuple[object, object, Shape]] = {}


def _forget_shapes_after_fork() -> None:
    _shapes.clear()  # a shape holds this process's pid when the resource has none


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_shapes_after_fork)


def shape_of(span: Any, vendor_name: str | None) -> Shape:
    """The shape of the span's source, worked out once per (resource, scope, vendor)."""
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


def _build_shape(resource: Any, scope: Any, vendor_name: str | None) -> Shape:
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
    return Shape(
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
