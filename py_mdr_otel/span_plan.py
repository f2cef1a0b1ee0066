"""Which span attribute holds what, in the stable semantic-convention names and the older ones.

The spans of one instrumentation carry the same attribute names span after span, so where each
value is found (the stable name when present, else an older one) is worked out once per set of
names and kind (:func:`plan_for`), not looked up name by name for every span.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

__all__ = ["Plan", "plan_for"]

# Each slot's names, the stable one first. Slots whose names differ by span kind come in pairs.
_NAMES: dict[str, tuple[str, ...]] = {
    "method": ("http.request.method", "http.method"),
    "method_original": ("http.request.method_original",),
    "code": ("http.response.status_code", "http.status_code"),
    "full": ("url.full", "http.url"),
    "scheme": ("url.scheme", "http.scheme"),
    "path": ("url.path",),
    "query": ("url.query",),
    "target": ("http.target",),
    "agent": ("user_agent.original", "http.user_agent"),
    "version": ("network.protocol.version", "http.flavor"),
    "route": ("http.route",),
    "peer": ("network.peer.address", "net.sock.peer.addr", "net.peer.ip"),
    "user_id": ("enduser.id", "user.id"),
    "user_name": ("user.name",),
    "rpc_system": ("rpc.system",),
    "rpc_service": ("rpc.service",),
    "rpc_method": ("rpc.method",),
    "rpc_code": ("rpc.grpc.status_code",),
}
# A SERVER span's own address, and the server a CLIENT span called.
_SERVER_HOST = ("server.address", "http.host", "net.host.name", "http.server_name")
_SERVER_PORT = ("server.port", "net.host.port")
_REMOTE_HOST = ("server.address", "net.peer.name", "http.host")
_REMOTE_PORT = ("server.port", "net.peer.port")
# Where a SERVER span names its client, (address, port): the original client first, then the
# immediate peer.
_CLIENT_PAIRS = (
    ("client.address", "client.port"),
    ("http.client_ip", None),
    ("net.peer.ip", "net.peer.port"),
    ("network.peer.address", "network.peer.port"),
    ("net.sock.peer.addr", "net.sock.peer.port"),
)
_ENDPOINT_NAMES = frozenset(
    {
        *_SERVER_HOST,
        *_SERVER_PORT,
        *_REMOTE_HOST,
        *_REMOTE_PORT,
        *(name for pair in _CLIENT_PAIRS for name in pair if name),
        *_NAMES["peer"],
        *_NAMES["user_id"],
        *_NAMES["user_name"],
        "peer.service",
    }
)
_RPC_SLOTS = ("rpc_service", "rpc_method", "rpc_code")
#: Names with an OCSF home in HTTP Activity / API Activity; the rest go to unmapped.attributes.
_HTTP_NAMES = _ENDPOINT_NAMES | {
    name for slot, names in _NAMES.items() if not slot.startswith("rpc_") for name in names
}
_API_NAMES = _ENDPOINT_NAMES | {name for slot in _RPC_SLOTS for name in _NAMES[slot]}


@dataclass(frozen=True, slots=True)
class Plan:
    """The attribute name each value is found under in spans of one shape (None: nowhere)."""

    method: str | None
    method_original: str | None
    code: str | None
    full: str | None
    scheme: str | None
    path: str | None
    query: str | None
    target: str | None
    agent: str | None
    version: str | None
    route: str | None
    peer: str | None
    user_id: str | None
    user_name: str | None
    rpc_system: str | None
    rpc_service: str | None
    rpc_method: str | None
    rpc_code: str | None
    host: str | None  # the server's address: the service's own, or the one a client called
    host_port: str | None
    client: str | None  # SERVER spans: the client's address and port
    client_port: str | None
    client_name: str | None  # SERVER spans: the client's host name (older names only)
    peer_service: str | None  # CLIENT spans: the service called
    http_others: tuple[Any, ...]  # names without an OCSF home in HTTP Activity
    api_others: tuple[Any, ...]


@functools.lru_cache(maxsize=1024)
def plan_for(serving: bool, names: tuple[Any, ...]) -> Plan:
    """Where a SERVER (``serving``) or CLIENT span with these attribute names holds each value."""
    present = set(names)

    def first(candidates: tuple[str | None, ...]) -> str | None:
        return next((name for name in candidates if name in present), None)

    found: dict[str, Any] = {slot: first(candidates) for slot, candidates in _NAMES.items()}
    found["host"] = first(_SERVER_HOST if serving else _REMOTE_HOST)
    found["host_port"] = first(_SERVER_PORT if serving else _REMOTE_PORT)
    pair = next((pair for pair in _CLIENT_PAIRS if pair[0] in present), (None, None))
    found["client"], found["client_port"] = pair if serving else (None, None)
    found["client_port"] = found["client_port"] if found["client_port"] in present else None
    found["client_name"] = "net.peer.name" if serving and "net.peer.name" in present else None
    found["peer_service"] = first(("peer.service",)) if not serving else None
    found["http_others"] = tuple(name for name in names if name not in _HTTP_NAMES)
    found["api_others"] = tuple(name for name in names if name not in _API_NAMES)
    return Plan(**found)
