"""The one serializer ("flattening module"): models, dicts and foreign values to JSON-ready data.

Every sender goes through here, so the same event looks the same on the wire whichever front door
it came in by. Rules: ``None``, empty strings are kept, but ``None``, empty lists and empty objects
are pruned; enums become integers; ``datetime`` becomes OCSF ``timestamp_t`` (integer milliseconds
since the epoch, naive datetimes read as UTC); anything else is made JSON-safe instead of raising.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
import time as _time
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import pydantic_core

from py_mdr import OCSF_VERSION
from py_mdr.ocsf_models._base import GENERIC_OBJECT, Attr, ModelSpec, OCSFModel, load_model
from py_mdr.ocsf_models._registry import CLASSES, TYPES

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
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": safe_str(value)}
    if isinstance(value, OCSFModel):
        return _model_to_dict(value)
    return safe_repr(value)


def dumps(data: Any) -> bytes:
    """Compact JSON bytes for already JSON-safe data (``pydantic_core`` is ~5x ``json.dumps``)."""
    try:
        return pydantic_core.to_json(data)
    except pydantic_core.PydanticSerializationError:
        # Lone surrogates (file names decoded with surrogateescape) cannot be UTF-8 encoded;
        # the stdlib writes them as \udcxx escapes, which every JSON reader accepts.
        return json.dumps(data, separators=(",", ":"), default=safe_repr).encode()


# --- OCSF models and event dicts ------------------------------------------------------------

_STRING_TYPES = frozenset({"string_t"})
_Converter = Callable[[Any], Any]
_Pair = tuple[str, str, Any]  # (id attribute, caption attribute, enum with __captions__)


class _Plan:
    """How to serialize one class or object, worked out once from its ``ModelSpec``."""

    __slots__ = ("enrichment", "is_event", "pairs", "spec", "steps")

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.is_event = spec.uid is not None
        self.enrichment = spec.name == "enrichment"
        # attribute name -> (JSON name, converter, the one type that needs no conversion)
        self.steps: dict[str, tuple[str, _Converter, type | None]] = {}
        self.pairs: list[_Pair] = []
        for name, attr in spec.attributes.items():
            convert = _converter(attr)
            ready = _READY.get(convert)
            if attr.is_array:
                convert, ready = _array(convert), None
            json_name = attr.json_name or name
            self.steps[name] = self.steps[json_name] = (json_name, convert, ready)
            if attr.sibling and attr.enum is not None and name != "type_uid":
                self.pairs.append((json_name, attr.sibling, attr.enum))


_plans: dict[int, _Plan] = {}  # id(ModelSpec) -> plan; specs live as long as their classes


def _plan(spec: ModelSpec) -> _Plan:
    plan = _plans.get(id(spec))
    if plan is None:
        plan = _plans[id(spec)] = _Plan(spec)
    return plan


def to_dict(obj: Any) -> dict[str, Any]:
    """The JSON-ready form of an OCSF model (derived values filled) or of a plain mapping.

    A mapping passes through as given, only made JSON-safe and pruned; use :func:`complete` to
    have derived values filled for an event dict too.
    """
    if isinstance(obj, OCSFModel):
        return _model_to_dict(obj)
    if isinstance(obj, Mapping):
        pruned = prune(json_safe(obj))
        return pruned if isinstance(pruned, dict) else {}
    raise TypeError(
        f"expected an OCSF model or a dict, got {type(obj).__name__}; "
        "pass an instance from py_mdr.ocsf_models or a dict of OCSF attributes"
    )


def to_json(obj: Any) -> bytes:
    """Compact JSON bytes of :func:`to_dict`."""
    return dumps(to_dict(obj))


def complete(event: Mapping[str, Any]) -> dict[str, Any]:
    """Serialize an event dict as its class's model would be: coerced, pruned, derived filled.

    The class comes from ``class_uid``; without a known ``class_uid`` the dict is only made
    JSON-safe (``validate`` then says what is wrong).
    """
    spec = _spec_for_uid(event.get("class_uid"))
    if spec is None:
        return to_dict(event)
    return _convert(_plan(spec), event.items())


def flatten(data: Mapping[str, Any], separator: str = ".") -> dict[str, Any]:
    """Dotted keys for flat consumers: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay lists."""
    flat: dict[str, Any] = {}
    stack: list[tuple[str, Mapping[str, Any]]] = [("", data)]
    while stack:
        prefix, current = stack.pop()
        for key, value in current.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping) and value:
                stack.append((name + separator, value))
            else:
                flat[name] = value
    return dict(sorted(flat.items()))


def _model_to_dict(model: OCSFModel) -> dict[str, Any]:
    out = _convert(_plan(type(model).__ocsf__), model.__dict__.items())
    extra = model.__pydantic_extra__
    if extra:
        for key, value in extra.items():
            safe = clean(value)
            if safe is not None:
                out[key] = safe
    return out


def _convert(plan: _Plan, items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if plan.enrichment:
        items = _structured_enrichment(dict(items))
    steps = plan.steps
    for name, value in items:
        if value is None:
            continue
        step = steps.get(name)
        if step is None:  # an attribute the schema does not know: kept for validate() to report
            value = clean(value)
            if value is not None:
                out[name] = value
            continue
        json_name, convert, ready = step
        if type(value) is not ready:
            value = convert(value)
            if value is None:
                continue
        elif value == "":  # empty strings are left out like every other empty value
            continue
        out[json_name] = value
    if plan.is_event:
        _derive_event(plan, out)
    else:
        for id_name, caption_name, enum_type in plan.pairs:
            if id_name in out or caption_name in out:
                _fill_pair(out, id_name, caption_name, enum_type)
    return out


def _structured_enrichment(values: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    """``Enrichment(value={...})`` (the published README does this): the structure goes to the
    required ``data`` (json_t) and ``value`` (string_t) carries its JSON text."""
    value = values.get("value")
    if values.get("data") is None and isinstance(value, (Mapping, list, tuple)):
        values["data"] = value if isinstance(value, Mapping) else {"value": value}
    return values.items()


def _converter(attr: Attr) -> _Converter:
    if attr.obj == GENERIC_OBJECT:
        return clean
    if attr.obj is not None:
        return _object_converter(attr.obj)
    primitive = TYPES.get(attr.type, (attr.type, None, None))[0]
    if attr.type == "timestamp_t":
        return _timestamp
    if primitive == "string_t":
        return _string
    if primitive in ("integer_t", "long_t"):
        return _integer
    return clean


def _string(value: Any) -> Any:
    if type(value) is str:
        return value or None
    if isinstance(value, enum.Enum):
        return _string(value.value)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        safe = clean(value)
        return None if safe is None else dumps(safe).decode()
    safe = json_safe(value)
    return (safe or None) if isinstance(safe, str) else dumps(safe).decode()


def _integer(value: Any) -> Any:
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)  # IntEnum members
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return json_safe(value)  # wrong types stay visible for validate()


def _timestamp(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return epoch_ms(value)
    return _integer(value)


# Values of these exact types pass through their converter unchanged (str is never empty-pruned).
_READY: dict[_Converter, type] = {_string: str, _integer: int, _timestamp: int}


def _object_converter(path: str) -> _Converter:
    def convert(value: Any) -> Any:
        if isinstance(value, OCSFModel):
            out = _model_to_dict(value)
        elif isinstance(value, Mapping):
            out = _convert(_plan(load_model(path).__ocsf__), value.items())
        else:
            return json_safe(value)
        return out or None

    return convert


def _array(convert: _Converter) -> _Converter:
    def convert_all(values: Any) -> Any:
        if not isinstance(values, (list, tuple, set, frozenset)):
            return convert(values)  # a scalar where a list belongs: validate() reports it
        out = [v for v in map(convert, values) if v is not None]
        return out or None

    return convert_all


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


def _derive_event(plan: _Plan, out: dict[str, Any]) -> None:
    """Fill an event's class facts, defaults, caption pairs, ``type_uid`` and ``type_name``."""
    spec = plan.spec
    out.setdefault("class_uid", spec.uid)
    out.setdefault("category_uid", spec.category_uid)
    out.setdefault("time", int(_time.time() * 1000))
    if "activity_id" not in out and "activity_name" not in out:
        out["activity_id"] = 0
    if "severity_id" not in out and "severity" not in out:
        out["severity_id"] = 0
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        metadata.setdefault("version", OCSF_VERSION)
    else:
        out["metadata"] = {"version": OCSF_VERSION}
    for id_name, caption_name, enum_type in plan.pairs:
        if id_name in out or caption_name in out:
            _fill_pair(out, id_name, caption_name, enum_type)
    activity = out.get("activity_id")
    class_uid = out.get("class_uid")
    if "type_uid" not in out and type(activity) is int and type(class_uid) is int:
        out["type_uid"] = class_uid * 100 + activity
    type_attr = spec.attributes.get("type_uid")
    if type_attr is not None and type_attr.enum is not None:
        _fill_pair(out, "type_uid", "type_name", type_attr.enum)


def _fill_pair(out: dict[str, Any], id_name: str, caption_name: str, enum_type: Any) -> None:
    captions: Mapping[Any, str] = enum_type.__captions__
    if id_name in out:
        if caption_name not in out:
            caption = captions.get(out[id_name])
            if caption is not None:
                out[caption_name] = caption
    elif caption_name in out:
        wanted = out[caption_name]
        for value, caption in captions.items():
            if isinstance(wanted, str) and caption.lower() == wanted.lower():
                out[id_name] = value
                return
        if 99 in captions:
            out[id_name] = 99


def _spec_for_uid(uid: Any) -> ModelSpec | None:
    path = CLASSES.get(uid) if type(uid) is int else None
    return load_model(path).__ocsf__ if path else None
