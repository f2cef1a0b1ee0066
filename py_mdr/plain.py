"""Plain data made JSON-ready, cheaply: the part of the serializer every log line goes through.

Mapped events are built as plain dicts; this module makes any value JSON-safe without raising
(:func:`json_safe`), drops what is empty (:func:`prune`, :func:`clean`) and writes compact JSON
(:func:`dumps`). It imports no model, and pydantic_core only at the first :func:`dumps`, so
``import py_mdr.handler`` stays cheap; :mod:`py_mdr.serialize` adds OCSF models and re-exports
these names.
"""

from __future__ import annotations

import datetime as _dt
import enum
import ipaddress
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "clean",
    "dumps",
    "epoch_ms",
    "ipaddress_types",
    "is_model",
    "json_safe",
    "plain_fields",
    "prune",
    "safe_repr",
    "safe_str",
]

#: Python's address and network types: written as their text, as OCSF ``ip_t`` / ``subnet_t``.
ipaddress_types = (
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
)
_MAX_DEPTH = 32
_PLAIN = (str, int, bool)
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def epoch_ms(value: _dt.datetime) -> int:
    """OCSF ``timestamp_t`` for a datetime; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return (value - _EPOCH) // _dt.timedelta(milliseconds=1)


def safe_repr(value: object) -> str:
    """``repr`` that cannot raise: a broken ``__repr__`` yields a placeholder naming the type."""
    try:
        return repr(value)
    except Exception:  # the object is foreign; its repr may do anything
        return f"<unrepresentable {type(value).__name__}>"


def safe_str(value: object) -> str:
    """``str`` that cannot raise, falling back to :func:`safe_repr`."""
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


def json_safe(value: Any, _depth: int = 0) -> Any:
    """Return ``value`` as something ``json.dumps`` accepts, without ever raising."""
    kind = type(value)
    if kind in _PLAIN or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else str(value)
    if _depth >= _MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, Mapping):
        return {_key(k): json_safe(v, _depth + 1) for k, v in list(value.items())}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, _depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [json_safe(v, _depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    return _scalar(value, _depth)


def _key(key: object) -> str:
    return key if isinstance(key, str) else safe_str(key)


def _scalar(value: Any, depth: int) -> Any:
    if isinstance(value, enum.Enum):
        return json_safe(value.value, depth + 1)
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return json_safe(float(value), depth)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, _dt.datetime):
        return epoch_ms(value)
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    decimal = sys.modules.get("decimal")  # none exists unless the module was imported
    if decimal is not None and isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, ipaddress_types):
        return str(value)
    uuid = sys.modules.get("uuid")
    if uuid is not None and isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": safe_str(value)}
    if is_model(value):
        from py_mdr.serialize import model_dict

        return model_dict(value)
    return safe_repr(value)


def is_model(value: object) -> bool:
    """True for an OCSF model instance, without importing the models (none exist before)."""
    models = sys.modules.get("py_mdr.ocsf_models._base")
    return models is not None and isinstance(value, models.OCSFModel)


def dumps(data: Any) -> bytes:
    """Compact JSON bytes for already JSON-safe data (``pydantic_core`` is ~5x ``json.dumps``)."""
    try:
        return _to_json(data)
    except _EncodeError:
        # Lone surrogates (file names decoded with surrogateescape) cannot be UTF-8 encoded;
        # the stdlib writes them as \udcxx escapes, which every JSON reader accepts.
        return json.dumps(data, separators=(",", ":"), default=safe_repr).encode()


class _NotYetLoaded(Exception):
    """Stands for pydantic_core's error class until the first :func:`dumps` loads it."""


def _load_encoder(data: Any) -> bytes:
    """The first :func:`dumps`: load ``pydantic_core`` (~20 ms) on first use, not on import."""
    global _to_json, _EncodeError
    import pydantic_core

    _EncodeError = pydantic_core.PydanticSerializationError
    _to_json = pydantic_core.to_json
    return _to_json(data)


_to_json: Callable[[Any], bytes] = _load_encoder
_EncodeError: type[Exception] = _NotYetLoaded


def prune(value: Any) -> Any:
    """Drop ``None``, empty strings, lists and dicts (recursively) from JSON-safe data."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(item) is dict or type(item) is list:
                item = prune(item)
            if item is None or item == "" or item == [] or item == {}:
                continue
            out[key] = item
        return out
    if kind is list:
        items = []
        for item in value:
            if type(item) is dict or type(item) is list:
                item = prune(item)
            if item is None or item == "" or item == [] or item == {}:
                continue
            items.append(item)
        return items
    return value


def clean(value: Any) -> Any:
    """Any value made JSON-safe and pruned; ``None`` when nothing non-empty is left."""
    kind = type(value)
    if kind is str:
        return value or None
    if kind is int or kind is bool:
        return value
    value = prune(json_safe(value))
    if value == "" or value == [] or value == {}:
        return None
    return value


def plain_fields(items: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    """Key-value pairs as a JSON-ready dict: keys as text, values JSON-safe, empty ones left out
    (``extra=`` fields, an OTel record's or span's other attributes)."""
    fields: dict[str, Any] = {}
    for key, value in items:
        kind = type(value)
        if kind is str:
            if not value:
                continue
        elif kind is not int and kind is not bool:
            value = clean(value)
            if value is None:
                continue
        fields[key if type(key) is str else safe_str(key)] = value
    return fields
