"""What tests of mapped or serialized events share: hostile values to feed in, and the checks
every resulting event must pass (JSON-safe, nothing empty, schema-valid)."""

from __future__ import annotations

import json
from typing import Any

from py_mdr.validate import validate


class BrokenStr:
    """A value whose repr and str raise, as foreign objects sometimes do."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


class BrokenEverything(BrokenStr):
    """Also refuses comparison and truth testing."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    def __bool__(self) -> bool:
        raise RuntimeError("no bool")

    __hash__ = object.__hash__


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
    """Strict JSON, nothing empty left in, and no OCSF problem.

    A time that merely looks like another unit ("unit") is not one: these checks are fed any
    time, 1970 included, and a faithful mapping keeps it.
    """
    json.dumps(event, allow_nan=False)
    assert empties(event) == []
    assert [str(p) for p in validate(event) if p.kind != "unit"] == []
