"""What an OpenTelemetry resource and instrumentation scope say about the source of every event.

Log records and spans of one provider share the same resource object, so the product, device,
process, user, cloud and leftover attributes it gives are worked out once per resource and
shared by both mappings; a forked child works them out
again, as they may hold the parent's pid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from py_mdr.eventlog import (
    clean_mapping,
    clean_text,
    default_product,
    device,
    endpoint,
    host_name,
    os_user,
)
from py_mdr.plain import dumps

__all__ = ["MAX_INT32", "ResourceParts", "plain", "resource_parts", "scope_info"]

#: OCSF ``integer_t`` is 32 bits: a larger pid or thread id stays out of the typed attribute.
MAX_INT32 = 2**31 - 1

# OTel `os.type` values to OCSF os `type_id`; anything else is 99 (Other) with its own name.
_OS_TYPES = {
    "windows": (100, "Windows"),
    "linux": (200, "Linux"),
    "darwin": (300, "macOS"),
    "solaris": (400, "Solaris"),
    "aix": (401, "AIX"),
    "hpux": (402, "HP-UX"),
}


@dataclass(frozen=True)
class ResourceParts:
    """The OCSF pieces one resource gives; templates, so copy them before handing them out."""

    host: str
    service: str
    product: dict[str, Any]
    device: dict[str, Any]
    endpoint: dict[str, Any]
    process: dict[str, Any]
    user: dict[str, Any]
    cloud: dict[str, Any]
    unmapped: dict[str, Any]


_cache: tuple[object, object, ResourceParts | None] = (object(), None, None)


def _forget_after_fork() -> None:
    # The parts hold this process's pid when the resource has none: a forked child recomputes.
    global _cache
    _cache = (object(), None, None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def resource_parts(resource: Any, vendor_name: str | None) -> ResourceParts:
    """The parts of ``resource``; ``vendor_name`` stands in for a missing ``service.namespace``."""
    global _cache
    key, vendor, parts = _cache
    if key is resource and vendor == vendor_name and parts is not None:
        return parts
    parts = _build_resource_parts(resource, vendor_name)
    _cache = (resource, vendor_name, parts)
    return parts


def _build_resource_parts(resource: Any, vendor_name: str | None) -> ResourceParts:
    try:
        attributes = clean_mapping(plain(getattr(resource, "attributes", None) or {}))
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
    if type(pid) is int and 0 <= pid <= MAX_INT32:
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
    return ResourceParts(
        host, service or "", product, dev, endpoint(host), process, user, cloud, unmapped
    )


_NO_SCOPE: tuple[str | None, dict[str, Any]] = (None, {})
_scopes: dict[int, tuple[Any, tuple[str | None, dict[str, Any]]]] = {}


def scope_info(scope: Any) -> tuple[str | None, dict[str, Any]]:
    """``(name, unmapped.scope)`` of an instrumentation scope, worked out once per scope."""
    if scope is None:
        return _NO_SCOPE
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
        cleaned = clean_mapping(plain(attributes))
        if cleaned:
            info["attributes"] = cleaned
    result = (clean_text(getattr(scope, "name", None)), info)
    if len(_scopes) >= 512:  # scopes are few; a program making them without end is not
        _scopes.clear()
    _scopes[id(scope)] = (scope, result)
    return result


def plain(attributes: Any) -> dict[Any, Any]:
    """OTel attributes as a plain dict, copied (the SDK hands out read-only mappings)."""
    # BoundedAttributes.copy() is a C-level dict copy; iterating the Mapping ABC is slower.
    copy = getattr(attributes, "copy", None)
    if copy is not None:
        try:
            result = copy()
            if type(result) is dict:
                return result
        except Exception:
            pass
    return dict(attributes.items())
