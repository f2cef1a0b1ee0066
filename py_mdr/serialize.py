"""The one serializer ("flattening module"): models, dicts and foreign values to JSON-ready data.

Every sender goes through here, so the same event looks the same on the wire whichever front door
it came in by. Rules: ``None``, empty strings, empty lists and empty objects are pruned; enums
become integers; a ``datetime`` becomes OCSF ``timestamp_t`` (integer milliseconds since the
epoch) or, on a ``datetime_t`` attribute, RFC 3339 text in UTC (naive datetimes read as UTC);
anything else is made JSON-safe instead of raising. Derived values come from ``derive``.
"""

from __future__ import annotations

import datetime as _dt
import enum
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from py_mdr.derive import derive_event, fill_pair, spec_for_event
from py_mdr.errors import EventError
from py_mdr.ocsf_models._base import (
    GENERIC_OBJECT,
    Attr,
    ModelSpec,
    OCSFModel,
    find_cycle,
    load_model,
)
from py_mdr.ocsf_models._registry import TYPES
from py_mdr.plain import (
    clean,
    dumps,
    epoch_ms,
    ipaddress_types,
    json_safe,
    prune,
    safe_repr,
    safe_str,
)
from py_mdr.time_units import MILLISECONDS, suspect_unit

__all__ = [
    "Notes",
    "clean",
    "complete",
    "complete_noted",
    "dumps",
    "epoch_ms",
    "flatten",
    "json_safe",
    "prune",
    "rfc3339",
    "safe_repr",
    "safe_str",
    "to_dict",
    "to_json",
    "to_json_bytes",
]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


# --- OCSF models and event dicts ------------------------------------------------------------

_Converter = Callable[[Any], Any]
_Pair = tuple[str, str, Any]  # (id attribute, caption attribute, enum with __captions__)
# What a step's value needs checking for after conversion: nothing, a time unit, a datetime_t.
_PLAIN_STEP, _TIMESTAMP_STEP, _DATETIME_STEP = 0, 1, 2
_SHOWN_UNITS = 5  # suspect times kept per event


@dataclass
class Notes:
    """What serializing one event found: values changed to fit their OCSF type (coercions),
    times that look like another unit than milliseconds, and whether a ``datetime_t`` was set."""

    coerced: int = 0
    units: list[tuple[str, int, str]] = field(default_factory=list)  # (where, value, unit)
    datetime: bool = False


_local = threading.local()


def _notes() -> Notes:
    try:
        notes: Notes = _local.notes
    except AttributeError:
        notes = _local.notes = Notes()
    return notes


def _fresh_notes() -> Notes:
    notes = _local.notes = Notes()
    return notes


class _Plan:
    """How to serialize one class or object, worked out once from its ``ModelSpec``.

    ``coerce`` plans change wrong-typed values to fit (what is sent); the others keep them as
    written, so that ``validate`` can name them.
    """

    __slots__ = ("coerce", "enrichment", "is_event", "pairs", "spec", "steps")

    def __init__(self, spec: ModelSpec, coerce: bool) -> None:
        self.spec = spec
        self.coerce = coerce
        self.is_event = spec.uid is not None
        self.enrichment = spec.name == "enrichment"
        # attribute name -> (JSON name, converter, the one type that needs no conversion, check)
        self.steps: dict[str, tuple[str, _Converter, type | None, int]] = {}
        self.pairs: list[_Pair] = []
        for name, attr in spec.attributes.items():
            convert = _converter(attr, coerce)
            ready = _READY.get(convert)
            if attr.is_array:
                convert, ready = _array(convert), None
            check = _CHECKS.get(attr.type, _PLAIN_STEP)
            json_name = attr.json_name or name
            self.steps[name] = self.steps[json_name] = (json_name, convert, ready, check)
            if attr.sibling and attr.enum is not None and name != "type_uid":
                self.pairs.append((json_name, attr.sibling, attr.enum))


_CHECKS = {"timestamp_t": _TIMESTAMP_STEP, "datetime_t": _DATETIME_STEP}
_plans: dict[tuple[int, bool], _Plan] = {}  # (id(ModelSpec), coerce) -> plan; specs live on


def _plan(spec: ModelSpec, coerce: bool = True) -> _Plan:
    plan = _plans.get((id(spec), coerce))
    if plan is None:
        plan = _plans[(id(spec), coerce)] = _Plan(spec, coerce)
    return plan


def to_dict(obj: Any, *, coerce: bool = True) -> dict[str, Any]:
    """The JSON-ready form of an OCSF model (derived values filled) or of a plain mapping.

    With ``coerce`` (the default, what is sent) wrong-typed values are changed to fit their
    attribute where that is possible (``100`` for a string becomes ``"100"``); without it they
    stay as written, for :func:`py_mdr.validate.validate` to report. A mapping passes through
    as given, only made JSON-safe and pruned; use :func:`complete` to have derived values filled
    for an event dict too.
    """
    _fresh_notes()
    if isinstance(obj, OCSFModel):
        try:
            return _model_to_dict(obj, coerce)
        except RecursionError:
            raise _too_deep(obj) from None
    if isinstance(obj, Mapping):
        pruned = prune(json_safe(obj))
        return pruned if isinstance(pruned, dict) else {}
    raise TypeError(
        f"expected an OCSF model or a dict, got {type(obj).__name__}; "
        "pass an instance from py_mdr.ocsf_models or a dict of OCSF attributes"
    )


def to_json(obj: Any) -> str:
    """Compact JSON text of :func:`to_dict`, a ``str`` as its name and ``model_dump_json`` say.

    Writing it to a socket or file in binary mode? :func:`to_json_bytes` skips the decoding.
    """
    return dumps(to_dict(obj)).decode()


def to_json_bytes(obj: Any) -> bytes:
    """Compact UTF-8 JSON of :func:`to_dict` as ``bytes``: what goes on the wire, no extra copy."""
    return dumps(to_dict(obj))


def complete(event: Mapping[str, Any], *, coerce: bool = True) -> dict[str, Any]:
    """Serialize an event dict as its class's model would be: pruned, derived values filled,
    and (with ``coerce``) wrong-typed values changed to fit, as :func:`to_dict` does.

    The class comes from ``class_uid``, else from ``type_uid``; without either the dict is only
    made JSON-safe (``validate`` then says what is wrong).
    """
    _fresh_notes()
    spec = spec_for_event(event)
    if spec is None:
        return to_dict(event)
    try:
        return _convert(_plan(spec, coerce), event.items())
    except RecursionError:
        raise _too_deep(event) from None


def complete_noted(event: Mapping[str, Any]) -> tuple[dict[str, Any], Notes]:
    """:func:`complete` (coercing), with the :class:`Notes` on what it changed or suspects."""
    out = complete(event)
    return out, _notes()


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


def _model_to_dict(model: OCSFModel, coerce: bool = True) -> dict[str, Any]:
    out = _convert(_plan(type(model).__ocsf__, coerce), model.__dict__.items())
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
        json_name, convert, ready, check = step
        if type(value) is not ready:
            value = convert(value)
            if value is None:
                continue
        elif value == "":  # empty strings are left out like every other empty value
            continue
        if check:
            _note_time(plan, json_name, value, check)
        out[json_name] = value
    if plan.is_event:
        derive_event(plan.spec, plan.pairs, out, has_datetime=_notes().datetime)
    else:
        for id_name, caption_name, enum_type in plan.pairs:
            if id_name in out or caption_name in out:
                fill_pair(out, id_name, caption_name, enum_type)
    return out


def _note_time(plan: _Plan, json_name: str, value: Any, check: int) -> None:
    notes = _notes()
    if check == _DATETIME_STEP:
        notes.datetime = True
        return
    for stamp in value if type(value) is list else (value,):
        if type(stamp) is not int:
            continue
        if not _MIN_LONG <= stamp <= _MAX_LONG and plan.coerce:
            where = json_name if plan.is_event else f"{plan.spec.name}.{json_name}"
            raise absurd_time(where, stamp)
        if len(notes.units) >= _SHOWN_UNITS:
            continue
        unit = suspect_unit(stamp)
        if unit is not None:
            where = json_name if plan.is_event else f"{plan.spec.name}.{json_name}"
            notes.units.append((where, stamp, unit))


_MIN_LONG, _MAX_LONG = -(2**63), 2**63 - 1


def absurd_time(where: str, stamp: int) -> EventError:
    """The error for a time that no 64-bit reader (OCSF ``timestamp_t``) can hold."""
    return EventError(
        f"{where} must be a time in epoch milliseconds that fits 64 bits (such as "
        f"1700000000000), got an integer of {stamp.bit_length()} bits"
    )


def _too_deep(obj: object) -> EventError:
    cycle = find_cycle(obj)
    if cycle is not None:
        return EventError(
            f"the event contains itself: {cycle}; a model cannot be its own parent or child "
            "(give a copy, or only the fields that matter)"
        )
    return EventError("the event is nested too deeply to serialize (a very deep structure)")


def _structured_enrichment(values: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    """``Enrichment(value={...})`` (the published README does this): the structure goes to the
    required ``data`` (json_t) and ``value`` (string_t) carries its JSON text."""
    value = values.get("value")
    if isinstance(value, (Mapping, list, tuple)):
        if values.get("data") is None:
            values["data"] = value if isinstance(value, Mapping) else {"value": value}
        safe = clean(value)
        values["value"] = None if safe is None else dumps(safe).decode()
    return values.items()


def _converter(attr: Attr, coerce: bool) -> _Converter:
    if attr.obj == GENERIC_OBJECT:
        return clean
    if attr.obj is not None:
        return _object_converter(attr.obj, coerce)
    primitive = TYPES.get(attr.type, (attr.type,))[0]
    if attr.type == "timestamp_t":
        return _timestamp if coerce else _timestamp_as_written
    if attr.type == "datetime_t":
        return _datetime_text if coerce else _datetime_as_written
    if primitive == "string_t":
        return _string if coerce else _string_as_written
    if primitive in ("integer_t", "long_t"):
        return _integer if coerce else _integer_as_written
    return clean


def rfc3339(value: _dt.datetime) -> str:
    """OCSF ``datetime_t`` text for a datetime, in UTC; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    text = value.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _coerced(value: Any) -> Any:
    """Count one value changed to fit its attribute (``send`` says how many)."""
    _notes().coerced += 1
    return value


def _string_as_written(value: Any) -> Any:
    if type(value) is str:
        return value or None
    if isinstance(value, enum.Enum):
        return _string_as_written(value.value)
    if isinstance(value, _TEXT_LIKE):  # the same text in a Python type: not a change
        return json_safe(value) or None
    return clean(value)  # wrong types stay visible


def _string(value: Any) -> Any:
    if type(value) is str:
        return value or None
    if isinstance(value, _TEXT_LIKE) or (
        isinstance(value, enum.Enum) and isinstance(value.value, str)
    ):
        return json_safe(value) or None
    if isinstance(value, enum.Enum):  # an OCSF id enum where its caption belongs
        caption = getattr(value, "caption", None)
        return _coerced(caption) if isinstance(caption, str) else _string(value.value)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        safe = clean(value)
        return None if safe is None else _coerced(dumps(safe).decode())
    safe = json_safe(value)
    if isinstance(safe, str):
        return safe or None
    return _coerced(dumps(safe).decode())


def _integer_as_written(value: Any) -> Any:
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)  # IntEnum members
    return json_safe(value)  # wrong types stay visible for validate()


def _integer(value: Any) -> Any:
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)  # IntEnum members
    if isinstance(value, float) and value.is_integer():
        return _coerced(int(value))
    return json_safe(value)  # cannot be made to fit: validate() and --strict say so


def _timestamp_as_written(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return epoch_ms(value)
    return _integer_as_written(value)


def _timestamp(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return epoch_ms(value)
    return _integer(value)


def _datetime_as_written(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return rfc3339(value)
    return _string_as_written(value)


def _datetime_text(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return rfc3339(value)
    if type(value) is int and suspect_unit(value) is None and value >= MILLISECONDS[0]:
        return _coerced(rfc3339(_EPOCH + _dt.timedelta(milliseconds=value)))
    return _string(value)


_TEXT_LIKE = (bytes, bytearray, memoryview, uuid.UUID, *ipaddress_types)

# Values of these exact types pass through their converter unchanged (str is never empty-pruned).
_READY: dict[_Converter, type] = {
    _string: str,
    _string_as_written: str,
    _integer: int,
    _integer_as_written: int,
    _timestamp: int,
    _timestamp_as_written: int,
    _datetime_text: str,
    _datetime_as_written: str,
}


def _object_converter(path: str, coerce: bool) -> _Converter:
    def convert(value: Any) -> Any:
        if isinstance(value, OCSFModel):
            out = _model_to_dict(value, coerce)
        elif isinstance(value, Mapping):
            out = _convert(_plan(load_model(path).__ocsf__, coerce), value.items())
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


def model_dict(model: OCSFModel) -> dict[str, Any]:
    """The JSON-ready dict of a model met inside plain data (what :func:`json_safe` calls)."""
    return _model_to_dict(model)
