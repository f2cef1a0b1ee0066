"""Preparing one input item for ``py-mdr send``: the OCSF event, then its HEC envelope.

Every outcome is a value (an envelope, an envelope with something to tell, or why the item is
rejected), never an exception: one bad line must not stop the rest.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from py_mdr import __version__
from py_mdr.cli.input import STDIN, Item
from py_mdr.completion import complete_event, complete_event_noted
from py_mdr.eventlog import FIXED_PART, device, metadata, next_sequence
from py_mdr.hec.envelope import encode_envelope
from py_mdr.ocsf_models._registry import CLASSES
from py_mdr.serialize import Notes, dumps
from py_mdr.time_units import advice
from py_mdr.validate import validate

_SHOWN_PROBLEMS = 5  # schema problems quoted per rejected event


@dataclass(frozen=True)
class SendSettings:
    """What turns input into envelopes, and how batches are cut."""

    name: str
    host: str
    index: str | None
    max_event_bytes: int
    strict: bool = False
    text: bool = False
    severity: tuple[int, str] = (1, "Informational")
    product: Mapping[str, Any] = field(default_factory=dict)
    batch_events: int = 2000
    batch_bytes: int = 1024 * 1024
    flush_interval: float = 1.0

    @property
    def sourcetype(self) -> str:
        return f"pymdr::{self.name}"


@dataclass(frozen=True)
class Rejected:
    """An input item that will not be sent, and why (in words a user can act on)."""

    where: str
    reason: str


class Noted(NamedTuple):
    """A prepared envelope with something to tell: values changed to fit their OCSF type, or
    times that look like another unit than milliseconds (sent as written, never changed)."""

    envelope: bytes
    where: str
    coerced: int
    warnings: tuple[str, ...]


def prepare(item: Item, settings: SendSettings) -> bytes | Noted | Rejected:
    """The envelope for one input item (with what to tell about it), or why it is rejected;
    never raises."""
    if item.error is not None:
        return Rejected(item.where, item.error)
    notes = None
    try:
        if settings.text:
            event = text_event(item, settings)
        else:
            checked = json_event(item.value, settings.strict, settings.name, settings.product)
            if isinstance(checked, str):
                return Rejected(item.where, checked)
            event, notes = checked
        envelope = encode_envelope(
            dumps(event),
            time=_envelope_time(event),
            host=settings.host,
            source=settings.name,
            sourcetype=settings.sourcetype,
            index=settings.index,
        )
    except Exception as exc:  # a value the serializer could not handle: reject, go on
        return Rejected(item.where, f"could not be prepared: {type(exc).__name__}: {exc}")
    if len(envelope) > settings.max_event_bytes:
        return Rejected(
            item.where,
            f"event is {len(envelope)} bytes as sent, over the {settings.max_event_bytes}-byte "
            "limit for one event",
        )
    if notes is not None and (notes.coerced or notes.units):
        warnings = tuple(f"{where}: {advice(value, unit)}" for where, value, unit in notes.units)
        return Noted(envelope, item.where, notes.coerced, warnings)
    return envelope


def json_event(
    value: Any, strict: bool, name: str, product: Mapping[str, Any]
) -> tuple[dict[str, Any], Notes | None] | str:
    """The completed OCSF event for a decoded JSON value (with what serializing it noticed), or
    the reason it cannot be sent. ``strict`` refuses what ``py-mdr validate`` reports, wrong
    types included; otherwise wrong-typed values are changed to fit where possible."""
    if not isinstance(value, dict):
        kind = {list: "a list", str: "a string", bool: "a boolean"}.get(type(value))
        kind = kind or ("null" if value is None else "a number")
        return f"not a JSON object (got {kind}): each event must be an object with a class_uid"
    if not value:
        return "an empty object is not an event"
    class_uid = value.get("class_uid")
    type_uid = value.get("type_uid")
    if class_uid is None and type(type_uid) is int and type_uid // 100 in CLASSES:
        class_uid = type_uid // 100  # type_uid is class_uid * 100 + activity_id
    if class_uid is None:
        return (
            "no class_uid, so not an OCSF event: add one (`py-mdr schema` lists them), "
            "or send plain lines with --text"
        )
    if type(class_uid) is not int:  # "1008", 1008.0 or true: say so rather than "unknown"
        return (
            f"class_uid must be a whole number, got {json.dumps(class_uid)[:40]}: "
            "`py-mdr schema` lists the OCSF 1.3.0 classes"
        )
    if class_uid not in CLASSES:
        return f"unknown class_uid {class_uid}: `py-mdr schema` lists the OCSF 1.3.0 classes"
    if strict:
        event = complete_event(value, name=name, product=product, coerce=False)
        problems = validate(event)
        if problems:
            return "refused by --strict: " + quote_problems(problems)
        return event, None
    return complete_event_noted(value, name=name, product=product)


def problems_as_sent(value: Any, settings: SendSettings) -> list[tuple[str, str, str]]:
    """(path, kind, message) for what ``--strict`` would refuse in one decoded JSON value: the
    event as it would be sent (the sender's product and name filled), wrong types unchanged."""
    try:
        event = complete_event(value, name=settings.name, product=settings.product, coerce=False)
        return [(p.path, p.kind, p.message) for p in validate(event)]
    except Exception as exc:  # a value the serializer could not handle
        return [("", "type", f"cannot be read as an event: {type(exc).__name__}: {exc}")]


def quote_problems(problems: list[Any]) -> str:
    shown = "; ".join(str(problem) for problem in problems[:_SHOWN_PROBLEMS])
    more = len(problems) - _SHOWN_PROBLEMS
    return shown + (f"; and {more} more" if more > 0 else "")


def text_event(item: Item, settings: SendSettings) -> dict[str, Any]:
    """An Event Log Activity whose message is the input line."""
    severity_id, severity = settings.severity
    event: dict[str, Any] = {
        **FIXED_PART,
        "severity_id": severity_id,
        "severity": severity,
        "time": int(time.time() * 1000),
        "message": item.value,
        "log_name": settings.name,
        "metadata": metadata(dict(settings.product), __version__, next_sequence(), None, None),
        "device": device(settings.host),
    }
    if item.source != STDIN:  # where the line came from, for tracing it back
        event["unmapped"] = {"input": {"file": _full_path(item.source), "line": item.line}}
    return event


#: Looked up once per input file, not once per line.
_full_path = functools.cache(os.path.abspath)


def _envelope_time(event: Mapping[str, Any]) -> float:
    stamp = event.get("time")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) and math.isfinite(stamp):
        return stamp / 1000
    return time.time()
