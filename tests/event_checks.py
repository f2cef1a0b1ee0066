"""Checks every test of a mapped or serialized event makes: JSON-safe, no empties, schema-valid."""

from __future__ import annotations

import json
from typing import Any

from py_mdr.validate import validate


def empties(value: Any, path: str = "") -> list[str]:
    """Paths of None / empty string / empty list / empty object anywhere in a value."""
    if value is None or value == "" or value == [] or value == {}:
        return [path or "<root>"]
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += empties(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += empties(item, f"{path}[{index}]")
    return found


def assert_clean(event: dict[str, Any]) -> None:
    """Strict JSON, nothing empty left in, and no OCSF problem."""
    json.dumps(event, allow_nan=False)
    assert empties(event) == []
    assert [str(p) for p in validate(event)] == []
