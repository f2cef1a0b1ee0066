"""One HEC envelope as bytes, built by concatenation around the already-encoded event JSON.

Every metadata key is written on every envelope: Vector copies a missing key from the previous
envelope of the same request. The metadata part depends only on (host, source, sourcetype, index),
which hardly ever change, so it is encoded once and cached.
"""

from __future__ import annotations

import functools
import math
import time as _time
from collections.abc import Mapping
from typing import Any

from py_mdr.plain import dumps, json_safe


@functools.lru_cache(maxsize=512)
def envelope_head(host: str, source: str, sourcetype: str, index: str | None) -> bytes:
    """What stands between an envelope's time and its event:
    ``,"host":..,"source":..,"sourcetype":..[,"index":..],"event":``."""
    parts = [
        b'"host":' + dumps(host),
        b'"source":' + dumps(source),
        b'"sourcetype":' + dumps(sourcetype),
    ]
    if index is not None:
        parts.append(b'"index":' + dumps(index))
    return b"," + b",".join(parts) + b',"event":'


def time_json(seconds: float) -> bytes:
    """Epoch seconds with millisecond precision; a non-finite time becomes now."""
    if not math.isfinite(seconds):
        seconds = _time.time()
    return b"%.3f" % seconds


def wrap_event(event: bytes, seconds: float, head: bytes) -> bytes:
    """One envelope around already-encoded event JSON, ``head`` from :func:`envelope_head`."""
    return b"".join((b'{"time":', time_json(seconds), head, event, b"}"))


def encode_envelope(
    event: Mapping[str, Any] | bytes,
    *,
    time: float,
    host: str,
    source: str,
    sourcetype: str,
    index: str | None = None,
) -> bytes:
    """One envelope, compact JSON, no trailing newline.

    ``event`` may be a mapping or already-encoded JSON object bytes (the fast path: the caller
    encoded it once and it is copied in as it is).
    """
    body = event if isinstance(event, bytes) else dumps(json_safe(event))
    return wrap_event(body, time, envelope_head(host, source, sourcetype, index))
