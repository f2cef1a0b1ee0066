"""Schema-driven example events for tests: every required attribute set, constraints met."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SCHEMA_PATH = SHARED / "ocsf" / "ocsf-1.3.0.json"
CLASSES_TSV = SHARED / "ocsf" / "classes-1.3.0.tsv"

_SAMPLES = {
    "ip_t": "192.0.2.10",
    "mac_t": "00:1a:2b:3c:4d:5e",
    "email_t": "someone@example.com",
    "url_t": "https://example.com/path",
    "hostname_t": "host.example.com",
    "uuid_t": "0f8fad5b-d9cb-469f-a165-70867728950e",
    "subnet_t": "192.0.2.0/24",
    "file_hash_t": "d41d8cd98f00b204e9800998ecf8427e",
    "datetime_t": "2024-08-01T12:00:00Z",
    "timestamp_t": 1_722_513_600_000,
    "port_t": 443,
    "float_t": 1.5,
    "boolean_t": True,
    "json_t": {"key": "value"},
}


@cache
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return data


def core_classes() -> list[dict[str, str]]:
    """Rows of classes-1.3.0.tsv without extension classes."""
    lines = CLASSES_TSV.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]
    return [row for row in rows if "/" not in row["name"]]


def primitive(type_name: str) -> str:
    types = schema()["types"]
    while type_name in types and types[type_name].get("type"):
        type_name = types[type_name]["type"]
    return type_name


def sample(attr: dict[str, Any], depth: int = 0) -> Any:
    if attr.get("object_type"):
        value: Any = (
            {"note": "free-form"}
            if attr["object_type"] == "object"
            else populated_object(attr["object_type"], depth + 1)
        )
    elif attr["enum"]:
        first = next(iter(attr["enum"]))
        value = int(first) if first.lstrip("-").isdigit() else first
    elif attr["type"] in _SAMPLES:
        value = _SAMPLES[attr["type"]]
    else:
        value = {"string_t": "example", "integer_t": 1, "long_t": 1}[primitive(attr["type"])]
    return [value] if attr["is_array"] else value


def _fill(record: dict[str, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    attributes = record["attributes"]
    for name, attr in attributes.items():
        if attr["requirement"] == "required" and not attr["profile"]:
            out[name] = sample(attr, depth)
    for kind, names in (record.get("constraints") or {}).items():
        chosen = next(n for n in names if n.split(".")[0] in attributes)
        if kind == "just_one":
            for other in names:
                if other != chosen:
                    out.pop(other, None)
        head, _, rest = chosen.partition(".")
        if not rest:
            out.setdefault(head, sample(attributes[head], depth))
        else:  # a dotted constraint such as device.os.sp_name
            target = out.setdefault(head, sample(attributes[head], depth))
            object_name = attributes[head]["object_type"]
            *middle, last = rest.split(".")
            for part in middle:
                part_attr = schema()["objects"][object_name]["attributes"][part]
                object_name = part_attr["object_type"]
                target = target.setdefault(part, populated_object(object_name, depth + 1))
            target[last] = "example"
    if not out:  # an object with nothing required still needs one value to be sent at all
        name = next(
            n for n, a in sorted(attributes.items()) if not a["object_type"] and not a["profile"]
        )
        out[name] = sample(attributes[name], depth)
    return out


def populated_object(name: str, depth: int = 0) -> dict[str, Any]:
    if depth > 8:
        raise RecursionError(f"required attributes of {name} nest too deep")
    return _fill(schema()["objects"][name], depth)


def populated_event(class_name: str) -> dict[str, Any]:
    record = schema()["classes"][class_name]
    event = _fill(record, 0)
    for derived in ("type_uid", "category_uid"):  # filled by the serializer
        event.pop(derived, None)
    event["class_uid"] = record["uid"]
    return event
