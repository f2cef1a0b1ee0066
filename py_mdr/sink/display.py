"""Showing what arrived: one readable line per event, its problems below it."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from py_mdr.serialize import safe_str
from py_mdr.sink.wire import epoch_seconds

_LINE_LIMIT = 200


def _clip(text: str) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= _LINE_LIMIT else text[: _LINE_LIMIT - 3] + "..."


def _when(value: Any) -> str:
    seconds = epoch_seconds(value)
    if seconds is None:
        return "time?"
    try:
        moment = _dt.datetime.fromtimestamp(seconds, tz=_dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"time={value!r}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _summary(event: Mapping[str, Any]) -> str:
    for key in ("message", "status_detail", "status"):
        if isinstance(event.get(key), str) and event[key]:
            return str(event[key])
    finding = event.get("finding_info")
    if isinstance(finding, Mapping) and isinstance(finding.get("title"), str):
        return str(finding["title"])
    return json.dumps(event, separators=(",", ":"), default=safe_str)


def format_event(index: int, envelope: Mapping[str, Any], problems: Sequence[str] = ()) -> str:
    """One compact line per event, then each problem indented below it."""
    event = envelope.get("event")
    parts = [f"#{index}", _when(envelope.get("time")), safe_str(envelope.get("sourcetype", "-"))]
    if isinstance(event, Mapping):
        if "class_uid" in event or "class_name" in event:
            parts.append(f"{event.get('class_name', '?')}/{event.get('class_uid', '?')}")
        if isinstance(event.get("severity"), str):
            parts.append(f"[{event['severity']}]")
        parts.append(_clip(_summary(event)))
    else:
        parts.append(_clip(safe_str(event)))
    return "\n".join([" ".join(parts), *(f"    ! {problem}" for problem in problems)])
