"""Routing of py-mdr 0.7.x: ``dataset_name`` and ``namespace`` instead of ``name``.

py-mdr 0.7 took a dataset name and a namespace, sent HEC ``source`` ``pymdr::<dataset>.<ns>``
and put the same text in each event's top-level ``source_format``; MDR routes those events by
it. ``MDRClient`` and ``MDRHandler`` accept the two keywords so that such code keeps working and
its events keep arriving where they did. The seed's ``name`` / ``source_type`` stays the
documented path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from py_mdr.config import ConfigError

__all__ = ["SOURCE_FORMAT", "legacy_source", "with_source_format", "with_source_format_json"]

#: The top-level event key 0.7 sent its routing text in; not an OCSF attribute.
SOURCE_FORMAT = "source_format"

# 0.7's rules, matched against the whole value (0.7 used re.match with "$", which let a
# trailing newline through).
_DATASET_NAME = re.compile(r"[a-z_]+")
_NAMESPACE = re.compile(r"[a-z]+")


def legacy_source(dataset_name: object, namespace: object) -> str:
    """``pymdr::<dataset_name>.<namespace>``, the HEC ``source`` and ``source_format`` of 0.7.

    Raises :class:`~py_mdr.config.ConfigError` naming the argument when a value breaks 0.7's
    rules (``^[a-z_]+$`` and ``^[a-z]+$``), or when only one of the two is given.
    """
    if (dataset_name is None) != (namespace is None):
        given, missing = (
            ("namespace", "dataset_name") if dataset_name is None else ("dataset_name", "namespace")
        )
        raise ConfigError(
            f"{given} needs {missing} as well (py-mdr 0.7 routing takes both); "
            "or use name= / source_type= instead"
        )
    _check("dataset_name", dataset_name, _DATASET_NAME, "lower-case letters a-z and _")
    _check("namespace", namespace, _NAMESPACE, "lower-case letters a-z")
    return f"pymdr::{dataset_name}.{namespace}"


def _check(argument: str, value: object, rule: re.Pattern[str], allowed: str) -> None:
    if not isinstance(value, str) or rule.fullmatch(value) is None:
        raise ConfigError(
            f"{argument} must be one or more {allowed} only (py-mdr 0.7's rule "
            f"^{rule.pattern}$), got {value!r}"
        )


def with_source_format(event: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The serialized ``event`` with ``source_format`` first, as 0.7 sent it; a
    ``source_format`` the event already carries wins, as it did in 0.7."""
    return {SOURCE_FORMAT: source, **event}


def with_source_format_json(event: bytes, source: str) -> bytes:
    """:func:`with_source_format` for an event already encoded as a JSON object (the handler's
    and the exporters' fast path), without decoding it again."""
    head = b'{"' + SOURCE_FORMAT.encode() + b'":' + json.dumps(source).encode()
    rest = event.strip()
    if not rest.startswith(b"{"):
        raise ValueError("the event must be an encoded JSON object")
    inner = rest[1:].lstrip()
    return head + (inner if inner.startswith(b"}") else b"," + inner)
