"""What the receiver reads and answers: paths, codes, envelope parsing and checks."""

from __future__ import annotations

import json
import logging
import math
import re
import zlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

__all__ = [
    "ACK_PATH",
    "EVENT_PATHS",
    "HARD_BODY_LIMIT",
    "HEALTH_PATHS",
    "HEC_TEXT",
    "MAX_EVENT_BYTES",
    "MAX_PENDING_ACKS",
    "NOT_FOUND",
    "SILENT",
    "TOO_LARGE",
    "UNSUPPORTED",
    "Answer",
    "EventCallback",
    "NoRoom",
    "ReceivedRequest",
    "RequestCallback",
    "envelope_problems",
    "epoch_seconds",
    "gunzip",
    "hec_answer",
    "parse_body",
    "query_value",
    "redacted_headers",
]

logger = logging.getLogger("py_mdr.sink")

EVENT_PATHS = frozenset(
    {"/services/collector", "/services/collector/event", "/services/collector/event/1.0"}
)
HEALTH_PATHS = frozenset({"/services/collector/health", "/services/collector/health/1.0"})
ACK_PATH = "/services/collector/ack"

#: Vector's default cap on a body, raw or decompressed; also the most this receiver ever reads.
HARD_BODY_LIMIT = 100 * 1024 * 1024
#: Splunk rejects a single event above this size with code 6.
MAX_EVENT_BYTES = 5_000_000
MAX_PENDING_ACKS = 100_000  # per channel; the oldest is forgotten beyond this

HEC_TEXT: dict[int, str] = {
    0: "Success",
    1: "Token disabled",
    2: "Token is required",
    3: "Invalid authorization",
    4: "Invalid token",
    5: "No data",
    6: "Invalid data format",
    7: "Incorrect index",
    8: "Internal server error",
    9: "Server is busy",
    10: "Data channel is missing",
    11: "Invalid data channel",
    12: "Event field is required",
    13: "Event field cannot be blank",
    14: "ACK is disabled",
    15: "Error in handling indexed fields",
    16: "Query string authorization is not enabled",
    17: "HEC is healthy",
    18: "HEC is unhealthy, queues are full",
    19: "HEC is unhealthy, ack service unavailable",
    20: "HEC is unhealthy, queues are full, ack service unavailable",
}

_ENVELOPE_KEYS = frozenset({"time", "host", "source", "sourcetype", "index", "fields", "event"})
_STICKY_KEYS = ("time", "host", "source", "sourcetype")
_RESERVED_FIELDS = frozenset({"message", "timestamp", "host"})
_AUTH_SCHEMES = frozenset({"splunk", "bearer", "basic"})
_SPACE = re.compile(r"[ \t\r\n]*")

EventCallback = Callable[[int, dict[str, Any], list[str]], None]
RequestCallback = Callable[["ReceivedRequest"], None]


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver saw it; ``status`` 0 means it was never answered."""

    time: float  # time.time() when the request arrived
    method: str
    path: str  # without the query string
    status: int
    hec_code: int | None
    envelope_count: int  # envelopes accepted from this request
    body_bytes: int  # bytes on the wire (compressed if gzip)
    gzip: bool
    channel: str | None
    headers: dict[str, str] = field(repr=False)  # Authorization value redacted


@dataclass(frozen=True)
class Answer:
    """What to send back: a JSON payload, or a plain body (possibly empty), or nothing at all."""

    status: int
    payload: Mapping[str, Any] | None = None
    plain: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False
    silent: bool = False  # close the connection without answering

    @property
    def hec_code(self) -> int | None:
        code = self.payload.get("code") if self.payload else None
        return code if isinstance(code, int) else None


def hec_answer(status: int, code: int, extra: Mapping[str, Any] | None = None) -> Answer:
    payload: dict[str, Any] = {"text": HEC_TEXT.get(code, "Error"), "code": code}
    if extra:
        payload.update(extra)
    return Answer(status, payload)


def _bad_envelope(code: int, number: int) -> Answer:
    return hec_answer(400, code, {"invalid-event-number": number})


SILENT = Answer(0, silent=True)
TOO_LARGE = Answer(413, plain=b"Payload Too Large", headers=(("Content-Type", "text/plain"),))
UNSUPPORTED = Answer(415)  # Vector answers an unknown Content-Encoding with an empty body
NOT_FOUND = Answer(404, {"text": "The requested URL was not found on this server.", "code": 404})


# --- body parsing -------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN/Infinity: a strict receiver refuses them


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


class NoRoom(Exception):
    """The body would not fit in the receiver's memory budget now: answer busy (503 code 9)."""


_INFLATE_STEP = 1 << 20


def gunzip(data: bytes, limit: int, room: Callable[[int], bool] | None = None) -> bytes | None:
    """The decompressed body (all gzip members), or None once it would exceed ``limit``.

    ``room(n)`` is asked before each ``n`` bytes of output; it raises :class:`NoRoom` when
    refused, so a small compressed body cannot grow past the memory budget unseen.
    """
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while True:
            step = min(_INFLATE_STEP, limit + 1 - len(out))
            if room is not None and not room(step):
                raise NoRoom
            out += inflater.decompress(data, step)
            if len(out) > limit:
                return None
            data = inflater.unconsumed_tail
            if inflater.eof or not data:
                break
        if not inflater.eof:
            out += inflater.flush()
            if len(out) > limit:
                return None
            if not inflater.eof:
                raise ValueError("truncated gzip stream")
        data = inflater.unused_data
    return bytes(out)


def _flat_fields(fields: Any) -> bool:
    """Indexed fields must be strings or flat lists; anything nested is HEC code 15."""
    if not isinstance(fields, dict):
        return False
    for value in fields.values():
        if isinstance(value, dict):
            return False
        if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
            return False
    return True


def _envelope_code(value: Any, indexes: Collection[str] | None) -> int | None:
    """The HEC code that refuses this envelope, or None when it is acceptable."""
    if isinstance(value, list):
        return 12  # a JSON array body: Vector finds no event field
    if not isinstance(value, dict):
        return 6
    if "event" not in value:
        return 12
    event = value["event"]
    if event is None or event == {} or (isinstance(event, str) and not event.strip()):
        return 13
    if isinstance(event, (bool, int, float, list)):
        return 6
    if value.get("fields") is not None and not _flat_fields(value["fields"]):
        return 15
    if indexes is not None and "index" in value and value["index"] not in indexes:
        return 7
    return None


def parse_body(
    text: str,
    *,
    reject_at: int | None = None,
    max_event_bytes: int = MAX_EVENT_BYTES,
    indexes: Collection[str] | None = None,
) -> tuple[list[dict[str, Any]], Answer | None]:
    """Split a body into envelopes as HEC does: the ones accepted, and the error that stopped it.

    Envelopes before a bad one stay accepted (Vector has already forwarded them); the error
    carries ``invalid-event-number``. ``reject_at`` refuses that envelope on purpose (code 6).
    """
    accepted: list[dict[str, Any]] = []
    end = len(text)
    pos = _SPACE.match(text, 0).end()  # type: ignore[union-attr]  # the pattern always matches
    if pos == end:
        return accepted, hec_answer(400, 5)
    while pos < end:
        number = len(accepted)
        try:
            value, stop = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError):
            return accepted, _bad_envelope(6, number)
        code = 6 if number == reject_at else _envelope_code(value, indexes)
        span = stop - pos
        if (  # only a long span needs encoding to know its size in bytes
            code is None
            and span * 4 > max_event_bytes
            and len(text[pos:stop].encode("utf-8", "surrogatepass")) > max_event_bytes
        ):
            code = 6
        if code is not None:
            return accepted, _bad_envelope(code, number)
        accepted.append(value)
        pos = _SPACE.match(text, stop).end()  # type: ignore[union-attr]
    return accepted, None


def epoch_seconds(value: Any) -> float | None:
    """An envelope's ``time`` as HEC reads it: a number, or a string holding one (HEC takes
    ``"1700000000.5"`` as readily as ``1700000000.5``); None for anything else."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def envelope_problems(envelope: Mapping[str, Any]) -> list[str]:
    """What in an accepted envelope would be read wrongly downstream ("<path>: <message>")."""
    problems = []
    missing = [key for key in _STICKY_KEYS if key not in envelope]
    if missing:
        names = ", ".join(missing)
        problems.append(f"envelope: no {names} (Vector copies these from the previous envelope)")
    if "time" in envelope:
        when = epoch_seconds(envelope["time"])
        if when is None:
            problems.append(
                f"envelope.time: not a number of epoch seconds: {envelope['time']!r:.60}"
            )
        elif when > 1e11:
            problems.append("envelope.time: looks like milliseconds; HEC wants epoch seconds")
    for key in ("host", "source", "sourcetype", "index"):
        if key in envelope and not isinstance(envelope[key], str):
            problems.append(f"envelope.{key}: not a string")
    problems.extend(
        f"envelope.{key}: not an HEC envelope key; ignored"
        for key in envelope
        if key not in _ENVELOPE_KEYS
    )
    fields = envelope.get("fields")
    if isinstance(fields, dict):
        event = envelope.get("event")
        for key, value in fields.items():
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                problems.append(f"envelope.fields.{key}: not a string; Splunk drops it")
            if (
                key in _RESERVED_FIELDS
                or key.startswith("splunk_")
                or (isinstance(event, dict) and key in event)
            ):
                problems.append(f"envelope.fields.{key}: collides with a key of the stored event")
    return problems


def redacted_headers(headers: Message) -> dict[str, str]:
    """Headers as a dict, the Authorization value hidden (only a known scheme word is kept)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() == "authorization":
            scheme, space, _ = value.partition(" ")
            known = space and scheme.lower() in _AUTH_SCHEMES
            value = f"{scheme} <redacted>" if known else "<redacted>"
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def query_value(query: str, name: str) -> str | None:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == name and value:
            return value
    return None
