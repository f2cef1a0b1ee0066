"""Import path kept from py-mdr 0.7: ``flatten_dict``, now :func:`py_mdr.serialize.flatten`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from py_mdr.serialize import flatten

__all__ = ["flatten_dict"]


def flatten_dict(data: Mapping[str, Any], separator: str = ".", prefix: str = "") -> dict[str, Any]:
    """Dotted keys for nested mappings (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``). ``prefix`` is
    accepted and, as in 0.7, changes nothing."""
    return flatten(data, separator)
