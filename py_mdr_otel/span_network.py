"""Addresses, ports and URLs from span attributes, in the OCSF shapes they fit.

Span attributes come in the stable semantic-convention names and in older ones, and real
instrumentations put odd things in them (``server.address`` with the port still attached, a
status code as text). These helpers take whatever is there and return OCSF-ready values or None;
none of them raises. See https://schema.ocsf.io/1.3.0/objects/network_endpoint
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from py_mdr.eventlog import MAX_STRING, endpoint

__all__ = ["address_endpoint", "is_hostname", "number", "port", "split_host", "text", "url_parts"]

_INT32 = 2**31


def text(value: Any) -> str | None:
    """A non-empty string attribute, cut to what OCSF ``string_t`` holds; else None."""
    if type(value) is not str or not value:
        return None
    return value if len(value) <= MAX_STRING else value[: MAX_STRING - 1] + "\u2026"


def number(value: Any) -> int | None:
    """An integer attribute as OCSF ``integer_t`` (32 bits), also when written as text (some
    instrumentations do, for codes and ports); else None."""
    if type(value) is int:
        return value if -_INT32 <= value < _INT32 else None
    if type(value) is str and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return None


def port(value: Any) -> int | None:
    """A port attribute as OCSF ``port_t`` (0..65535); else None."""
    found = number(value)
    return found if found is not None and 0 <= found <= 65535 else None


@functools.lru_cache(maxsize=1024)
def split_host(value: str) -> tuple[str, int | None]:
    """``host[:port]`` (``[v6]:port`` too) as (host, port); a bare IPv6 address keeps its colons."""
    if value.startswith("["):
        close = value.find("]")
        if close > 0:
            rest = value[close + 1 :]
            return value[1:close], port(rest[1:]) if rest.startswith(":") else None
        return value, None
    host, colon, tail = value.rpartition(":")
    if colon and host and ":" not in host and tail.isdigit():
        return host, port(tail)
    return value, None


@functools.lru_cache(maxsize=4096)
def _address(value: str) -> tuple[tuple[str, str], ...]:
    """The endpoint members an address fills: ``ip`` for an IP address, else a host name."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return tuple(endpoint(value).items())  # hostname, or name when it is not one
    return (("ip", value),)


def is_hostname(value: str) -> bool:
    """True when ``value`` fits OCSF ``hostname_t`` (an IPv4 address does too)."""
    return _address(value)[0][0] != "name" if ":" not in value else False


def address_endpoint(address: str | None, port_number: int | None) -> dict[str, Any]:
    """A new OCSF ``network_endpoint`` for an address and port (either may be missing)."""
    result: dict[str, Any] = {}
    if address:
        host, embedded = split_host(address)
        if host:
            result.update(_address(host))
        if port_number is None:
            port_number = embedded
    if port_number is not None and result:
        result["port"] = port_number
    return result


def _split_url(full: str) -> tuple[str | None, str | None, str | None, str | None, int | None]:
    """(scheme, path, query, host, port) of a URL; Nones where it has none or cannot be read."""
    try:
        parts = urlsplit(full)
        found_port = parts.port
    except ValueError:  # a port out of range, an unbalanced bracket
        return None, None, None, None, None
    return (
        parts.scheme or None,
        parts.path or None,
        parts.query or None,
        parts.hostname or None,
        found_port,
    )


def url_parts(
    full: str | None, target: str | None
) -> tuple[str | None, str | None, str | None, str | None, int | None]:
    """(scheme, path, query, host, port) from a full URL, else from a request target."""
    if full is not None:
        return _split_url(full)
    if target is not None:
        path, mark, query = target.partition("?")
        return None, path or None, (query or None) if mark else None, None, None
    return None, None, None, None, None
