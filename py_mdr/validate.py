"""Explicit strictness: every OCSF 1.3.0 schema problem of an event, each with its path.

Construction of models is forgiving; this is where the schema is enforced. ``validate`` checks
the event as the user wrote it (derived values filled, but wrong-typed values not changed to fit,
as sending would), so a model and the dict it serializes to give the same answer. Beyond the
compiled schema it also names times that look like seconds, microseconds or nanoseconds, and the
top-level ``source_format`` that py-mdr 0.7 compatibility adds (see ``types`` for the rules).
"""

from __future__ import annotations

import enum
import json
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from py_mdr.compat import SOURCE_FORMAT
from py_mdr.ocsf_models._base import (
    GENERIC_OBJECT,
    REQUIRED,
    Attr,
    ModelSpec,
    OCSFModel,
    load_model,
)
from py_mdr.ocsf_models._registry import CLASSES
from py_mdr.serialize import to_dict
from py_mdr.time_units import advice, suspect_unit
from py_mdr.type_rules import TypeRule, rule_for

__all__ = ["Problem", "validate"]

_SOURCE_FORMAT_NOTE = (
    "not an OCSF attribute: py-mdr adds it when a client or handler is configured with py-mdr "
    "0.7's dataset_name and namespace, because MDR routes those events by it; strict OCSF "
    "validators reject it (the name / source_type configuration does not add it)"
)


@dataclass(frozen=True)
class Problem:
    """One schema violation: where (dotted path, list indexes in brackets), what kind, and why."""

    path: str
    # missing | constraint | type | format | enum | unit | unknown | profile | class | routing
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<event>'}: {self.message}"


def validate(event: OCSFModel | Mapping[str, Any]) -> list[Problem]:
    """Every OCSF 1.3.0 schema problem of ``event`` (a model or an event dict); [] if none.

    Never raises for a bad event: each problem is a :class:`Problem` with the dotted ``path``
    (list indexes in brackets, ``""`` for the event itself), a ``kind`` and a ``message`` that
    says what is expected. The kinds:

    - ``missing``: a required attribute is absent (or empty);
    - ``type``: a value of the wrong type (text where a number belongs, a number beyond 32 or
      64 bits, an object where a list belongs);
    - ``format``: text that does not parse as its type (an IP address, a MAC, a datetime);
    - ``enum``: an ``*_id`` value that the schema does not list;
    - ``constraint``: a rule between attributes (at least one of, just one of) is broken;
    - ``unit``: a time that looks like seconds, microseconds or nanoseconds, not milliseconds;
    - ``unknown``: an attribute the class (or object) does not define;
    - ``profile``: an attribute of a profile the event does not declare in
      ``metadata.profiles``;
    - ``class``: ``class_uid`` is missing or unknown, or ``category_uid`` / ``type_uid`` do not
      belong to it (also: not a model or a dict at all);
    - ``routing``: the top-level ``source_format`` that py-mdr 0.7 compatibility adds.
    """
    if isinstance(event, OCSFModel):
        spec = type(event).__ocsf__
        data = to_dict(event, coerce=False)
        if spec.uid is None:
            return _check_object(data, spec, "", set())
    elif isinstance(event, Mapping):
        data = dict(event)
        class_uid = data.get("class_uid")
        path = CLASSES.get(class_uid) if type(class_uid) is int else None
        if path is None:
            hint = "set class_uid to one of the OCSF 1.3.0 class uids (see `py-mdr schema`)"
            if class_uid is None:
                word = "missing"
            elif type(class_uid) is not int:
                word = f"must be a whole number, got {json.dumps(class_uid, default=repr)}"
            else:
                word = f"unknown class_uid {class_uid}"
            return [Problem("class_uid", "class", f"{word}: {hint}")]
        spec = load_model(path).__ocsf__
    else:
        return [
            Problem("", "type", f"expected an OCSF model or a dict, got {type(event).__name__}")
        ]
    metadata = data.get("metadata")
    declared = metadata.get("profiles") if isinstance(metadata, Mapping) else None
    profiles = {p for p in declared if isinstance(p, str)} if isinstance(declared, list) else set()
    problems = _check_object(data, spec, "", profiles)
    problems += _check_event_ids(data, spec)
    return problems


def _check_event_ids(data: Mapping[str, Any], spec: ModelSpec) -> list[Problem]:
    problems = []
    if data.get("class_uid") != spec.uid:
        problems.append(Problem("class_uid", "class", f"must be {spec.uid} for {spec.caption}"))
    if "category_uid" in data and data["category_uid"] != spec.category_uid:
        problems.append(
            Problem("category_uid", "class", f"must be {spec.category_uid} for {spec.caption}")
        )
    class_uid, activity, type_uid = (data.get(k) for k in ("class_uid", "activity_id", "type_uid"))
    if type(class_uid) is int and type(activity) is int and type(type_uid) is int:
        expected = class_uid * 100 + activity
        if type_uid != expected:
            message = f"is {type_uid}, must be class_uid * 100 + activity_id = {expected}"
            problems.append(Problem("type_uid", "class", message))
    return problems


def _check_object(data: Any, spec: ModelSpec, path: str, profiles: set[str]) -> list[Problem]:
    if not isinstance(data, Mapping):
        return [Problem(path, "type", f"must be an object ({spec.caption}), got {_kind(data)}")]
    problems: list[Problem] = []
    by_json = _attributes_by_json_name(spec)
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        attr = by_json.get(key)
        if attr is None:
            if key == SOURCE_FORMAT and not path and spec.is_event:
                problems.append(Problem(where, "routing", _SOURCE_FORMAT_NOTE))
            else:
                message = f"{spec.caption} has no attribute {key!r}"
                problems.append(Problem(where, "unknown", message))
            continue
        if attr.profile and attr.profile not in profiles:
            problems.append(
                Problem(
                    where,
                    "profile",
                    f"belongs to the {attr.profile!r} profile: "
                    f"add {attr.profile!r} to metadata.profiles",
                )
            )
        problems += _check_value(value, attr, where, profiles)
    for name, attr in spec.attributes.items():
        key = attr.json_name or name
        if attr.requirement != REQUIRED or key in data:
            continue
        if attr.profile and attr.profile not in profiles:
            continue
        where = f"{path}.{key}" if path else key
        problems.append(
            Problem(where, "missing", f"required attribute of {spec.caption} is missing")
        )
    problems += _check_constraints(data, spec, path)
    return problems


def _check_value(value: Any, attr: Attr, path: str, profiles: set[str]) -> list[Problem]:
    if attr.is_array:
        if not isinstance(value, list):
            return [Problem(path, "type", f"must be a list, got {_kind(value)}")]
        problems: list[Problem] = []
        for index, item in enumerate(value):
            problems += _check_single(item, attr, f"{path}[{index}]", profiles)
        return problems
    return _check_single(value, attr, path, profiles)


def _check_single(value: Any, attr: Attr, path: str, profiles: set[str]) -> list[Problem]:
    if attr.obj == GENERIC_OBJECT:
        if isinstance(value, Mapping):
            return []
        return [Problem(path, "type", f"must be an object, got {_kind(value)}")]
    if attr.obj is not None:
        return _check_object(value, load_model(attr.obj).__ocsf__, path, profiles)
    rule = rule_for(attr.type)
    if rule.any_json:
        return []
    if not isinstance(value, rule.python_types) or (type(value) is bool and not rule.boolean):
        return [Problem(path, "type", f"must be {rule.word} ({attr.type}), got {_kind(value)}")]
    problem = _constraint_problem(value, rule, attr.type)
    if problem is not None:
        return [Problem(path, *problem)]
    if attr.enum is not None and not _in_enum(value, attr.enum):
        allowed = ", ".join(str(v) for v in _captions(attr.enum))
        return [Problem(path, "enum", f"{value!r} is not one of the defined values ({allowed})")]
    return []


def _constraint_problem(value: Any, rule: TypeRule, type_name: str) -> tuple[str, str] | None:
    """(kind, message) for a value of the right JSON type that breaks its type's rules."""
    if type(value) is str:
        if rule.max_len is not None and len(value) > rule.max_len:
            return (
                "type",
                f"is {len(value)} characters, at most {rule.max_len} allowed ({type_name})",
            )
        why = rule.format_problem(value)
        if why is not None:
            return "format", f"{_clip(value)} is not {rule.caption} ({type_name}): {why}"
        return None
    if type(value) is int:
        if rule.limits is not None and not rule.limits[0] <= value <= rule.limits[1]:
            low, high = rule.limits
            return "type", f"{value} is outside {low}..{high} ({type_name})"
        if type_name == "timestamp_t":
            unit = suspect_unit(value)
            if unit is not None:
                return "unit", advice(value, unit)
    return None


def _clip(value: str) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:56] + '..."'


def _in_enum(value: Any, enum_type: type[enum.Enum]) -> bool:
    return value in _captions(enum_type)


def _captions(enum_type: type[enum.Enum]) -> Mapping[Any, str]:
    captions: Mapping[Any, str] = getattr(enum_type, "__captions__", {})
    return captions


def _check_constraints(data: Mapping[str, Any], spec: ModelSpec, path: str) -> list[Problem]:
    problems = []
    for kind, names in spec.constraints.items():
        present = [name for name in names if _lookup(data, name) is not None]
        listed = ", ".join(names)
        if kind == "at_least_one" and not present:
            message = f"{spec.caption} needs at least one of: {listed}"
            problems.append(Problem(path, "constraint", message))
        elif kind == "just_one" and len(present) != 1:
            message = f"{spec.caption} needs exactly one of: {listed} (found {len(present)})"
            problems.append(Problem(path, "constraint", message))
    return problems


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    current: Any = data
    for part in dotted.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


_by_json: dict[int, dict[str, Attr]] = {}


def _attributes_by_json_name(spec: ModelSpec) -> dict[str, Attr]:
    table = _by_json.get(id(spec))
    if table is None:
        table = {attr.json_name or name: attr for name, attr in spec.attributes.items()}
        _by_json[id(spec)] = table
    return table


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


class _CallableModule(types.ModuleType):
    """``py_mdr.validate`` names both this module and its function; calling either validates.

    Importing ``py_mdr.validate`` replaces the package's lazy function attribute with the module,
    so code that did ``from py_mdr import validate`` after such an import still works.
    """

    def __call__(self, event: OCSFModel | Mapping[str, Any]) -> list[Problem]:
        return validate(event)


sys.modules[__name__].__class__ = _CallableModule
