"""A local HEC receiver on loopback: for tests, demos, and checking what a sender puts on the wire.

It answers as the MDR receiver does (Vector's ``splunk_hec`` source, or Splunk): same paths, codes
and quirks, including partial acceptance up to ``invalid-event-number``. It keeps what it accepted,
flags envelopes that would be read wrongly downstream, validates OCSF events, and can misbehave on
purpose (busy, throttled, hanging, dropping connections, refusing sizes) so that retry and split
logic is proved against real HTTP rather than mocks.

Start it with ``with HECSink() as sink:`` or from the shell with
``python -m py_mdr.sink --port 8088 --token T``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hmac
import importlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, cast

from py_mdr.serialize import safe_str

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
_MAX_PENDING_ACKS = 100_000  # per channel; the oldest is forgotten beyond this

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
Validator = Callable[[Any], Iterable[object]]


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
class _Answer:
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


def _hec(status: int, code: int, extra: Mapping[str, Any] | None = None) -> _Answer:
    payload: dict[str, Any] = {"text": HEC_TEXT.get(code, "Error"), "code": code}
    if extra:
        payload.update(extra)
    return _Answer(status, payload)


def _bad_envelope(code: int, number: int) -> _Answer:
    return _hec(400, code, {"invalid-event-number": number})


_SILENT = _Answer(0, silent=True)
_TOO_LARGE = _Answer(413, plain=b"Payload Too Large", headers=(("Content-Type", "text/plain"),))
_UNSUPPORTED = _Answer(415)  # Vector answers an unknown Content-Encoding with an empty body
_NOT_FOUND = _Answer(404, {"text": "The requested URL was not found on this server.", "code": 404})


# --- body parsing -------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN/Infinity: a strict receiver refuses them


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _gunzip(data: bytes, limit: int) -> bytes | None:
    """The decompressed body (all gzip members), or None once it would exceed ``limit``."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out += inflater.decompress(data, limit + 1 - len(out))
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
) -> tuple[list[dict[str, Any]], _Answer | None]:
    """Split a body into envelopes as HEC does: the ones accepted, and the error that stopped it.

    Envelopes before a bad one stay accepted (Vector has already forwarded them); the error
    carries ``invalid-event-number``. ``reject_at`` refuses that envelope on purpose (code 6).
    """
    accepted: list[dict[str, Any]] = []
    end = len(text)
    pos = _SPACE.match(text, 0).end()  # type: ignore[union-attr]  # the pattern always matches
    if pos == end:
        return accepted, _hec(400, 5)
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


def envelope_problems(envelope: Mapping[str, Any]) -> list[str]:
    """What in an accepted envelope would be read wrongly downstream ("<path>: <message>")."""
    problems = []
    missing = [key for key in _STICKY_KEYS if key not in envelope]
    if missing:
        names = ", ".join(missing)
        problems.append(f"envelope: no {names} (Vector copies these from the previous envelope)")
    if "time" in envelope:
        when = envelope["time"]
        if isinstance(when, bool) or not isinstance(when, (int, float)):
            problems.append(f"envelope.time: not a number of epoch seconds: {when!r:.60}")
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


def _load_validator() -> Validator | None:
    """The OCSF schema validator, or None while ``py_mdr.validate`` is not available."""
    try:
        module = importlib.import_module("py_mdr.validate")
    except ModuleNotFoundError as exc:
        if exc.name != "py_mdr.validate":
            logger.warning("OCSF validation is off: %s", exc)
        return None
    except Exception as exc:  # a broken validator must not take the receiver down
        logger.warning("OCSF validation is off: %s", safe_str(exc))
        return None
    found = getattr(module, "validate", None)
    return cast(Validator, found) if callable(found) else None


def _ocsf_problems(validator: Validator, event: Any) -> list[str]:
    if not isinstance(event, dict) or "class_uid" not in event:
        return []
    try:
        return [safe_str(problem) for problem in validator(event)]
    except Exception as exc:
        return [f"<event>: the validator failed: {type(exc).__name__}: {safe_str(exc)}"]


def _redacted(headers: Message) -> dict[str, str]:
    """Headers as a dict, the Authorization value hidden (only a known scheme word is kept)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() == "authorization":
            scheme, space, _ = value.partition(" ")
            known = space and scheme.lower() in _AUTH_SCHEMES
            value = f"{scheme} <redacted>" if known else "<redacted>"
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _query_value(query: str, name: str) -> str | None:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == name and value:
            return value
    return None


# --- the server ---------------------------------------------------------------------------------


class HECSink:
    """A real HEC endpoint on 127.0.0.1 that records what it accepts; thread-safe, bounded.

    Beyond the constructor: ``max_body_bytes`` (decompressed; above it 413), ``max_event_bytes``
    (one envelope; above it 400 code 6), ``allowed_indexes`` (others: 400 code 7), ``down`` (the
    event endpoint answers 503 code 9, health 503 code 18) and ``token_disabled`` (403 code 1)
    may be set at any time.
    """

    def __init__(
        self,
        *,
        token: str = "test-token",
        host: str = "127.0.0.1",
        port: int = 0,
        use_ack: bool = False,
        tls: tuple[str, str] | None = None,
        validate: bool = True,
        max_events: int = 1_000_000,
        max_requests: int = 100_000,
        max_problems: int = 100_000,
        idle_timeout: float = 300.0,
        log_requests: bool = False,
        on_event: EventCallback | None = None,
        on_request: RequestCallback | None = None,
    ) -> None:
        self.token = token
        self.use_ack = use_ack
        self.validate = validate
        self.max_events = max_events
        self.max_requests = max_requests
        self.max_problems = max_problems
        self.idle_timeout = idle_timeout
        self.log_requests = log_requests
        self.max_body_bytes: int | None = None
        self.max_event_bytes = MAX_EVENT_BYTES
        self.allowed_indexes: Collection[str] | None = None
        self.down = False
        self.token_disabled = False
        self._bind = (host, port)
        self._tls = tls
        self._on_event = on_event
        self._on_request = on_request
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._validator: Validator | None = None
        self._validator_loaded = False
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # what was received
        self._envelopes: list[dict[str, Any]] = []
        self._accepted = 0
        self._requests: list[ReceivedRequest] = []
        self._requests_seen = 0
        self._problems: list[str] = []
        self._problems_seen = 0
        # fault modes
        self._failures: deque[tuple[int, int | None, str | None]] = deque()
        self._close_next = 0
        self._hang: tuple[float, int | None, bool] | None = None
        self._rejects: deque[int] = deque()
        # indexer acknowledgement, per channel
        self._ack_next: dict[str, int] = {}
        self._acks: dict[str, dict[int, bool]] = {}
        self._hold_acks = False

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"HECSink({where}, use_ack={self.use_ack}, tls={self._tls is not None})"

    # lifecycle

    def start(self) -> HECSink:
        """Bind and serve in a daemon thread; returns self so ``HECSink().start()`` reads well."""
        if self._server is not None:
            return self
        if self._stopping.is_set():
            raise RuntimeError("a stopped HECSink cannot be started again; make a new one")
        server = _Server(self._bind, self)
        if self._tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(*self._tls)
            # handshakes happen in the connection's own thread, never in the accept loop
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns within a twentieth of a second
            name="hec-sink",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end hanging answers and open connections; idempotent and quick."""
        server = self._server
        if server is None or self._stopping.is_set():
            self._stopping.set()
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def __enter__(self) -> HECSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the HECSink is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self._bind[0]}:{self.port}"

    # what was received (snapshots)

    @property
    def envelopes(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._envelopes)

    @property
    def events(self) -> list[Any]:
        with self._lock:
            return [envelope["event"] for envelope in self._envelopes]

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def problems(self) -> list[str]:
        with self._lock:
            return list(self._problems)

    @property
    def event_count(self) -> int:
        """Envelopes accepted since the last clear, stored or not."""
        with self._lock:
            return self._accepted

    @property
    def not_stored(self) -> dict[str, int]:
        """What the caps kept out of memory: envelopes, requests, problems."""
        with self._lock:
            return {
                "envelopes": self._accepted - len(self._envelopes),
                "requests": self._requests_seen - len(self._requests),
                "problems": self._problems_seen - len(self._problems),
            }

    def wait_for_events(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` envelopes were accepted in all; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._accepted >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` requests were answered (or dropped); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._requests_seen >= count, timeout)

    def problems_of(self, index: int) -> list[str]:
        """The problems found in the ``index``-th stored envelope (without the index prefix)."""
        prefix = f"{index}: "
        return [p[len(prefix) :] for p in self.problems if p.startswith(prefix)]

    def report(self, *, last_as_json: bool = True) -> str:
        """What arrived, readably: one line per event, its problems below it, the last in full."""
        envelopes = self.envelopes
        lines = [f"the receiver got {len(envelopes)} event(s):"]
        lines += [format_event(i, env, self.problems_of(i)) for i, env in enumerate(envelopes)]
        if envelopes and last_as_json:
            lines += ["", "the last one as MDR stores it:", json.dumps(envelopes[-1], indent=2)]
        return "\n".join(lines)

    def clear(self) -> None:
        """Forget what was received (ack state and fault modes stay)."""
        with self._lock:
            self._envelopes.clear()
            self._accepted = 0
            self._requests.clear()
            self._requests_seen = 0
            self._problems.clear()
            self._problems_seen = 0

    # fault modes: each applies to the event endpoints only

    def fail_next(
        self, n: int, status: int = 503, code: int | None = 9, retry_after: str | None = None
    ) -> None:
        """Answer the next ``n`` event requests with ``status`` (queued after earlier failures).

        With ``code`` the body is the HEC JSON for it; with None it is empty, as from Vector or
        a proxy. ``retry_after`` is sent verbatim as the Retry-After header.
        """
        with self._lock:
            self._failures.extend([(status, code, retry_after)] * n)

    def hang(self, seconds: float, n: int | None = None, *, then_close: bool = False) -> None:
        """Read the next ``n`` event requests (all, when None), then answer nothing for ``seconds``.

        After the pause the request is handled normally, so a sender that gave up may find its
        events stored anyway (as with Vector under backpressure); with ``then_close`` the
        connection is closed unanswered instead, as by a proxy that timed out. ``hang(0)`` ends
        the mode.
        """
        active = seconds > 0 and (n is None or n > 0)
        with self._lock:
            self._hang = (seconds, n, then_close) if active else None

    def close_next(self, n: int) -> None:
        """Close the connection without answering, for the next ``n`` event requests."""
        with self._lock:
            self._close_next += n

    def reject_envelope(self, index: int, n: int = 1) -> None:
        """Refuse envelope ``index`` (400 code 6) in the next ``n`` event requests that get parsed.

        Envelopes before it are accepted; a body with fewer envelopes is accepted whole and still
        uses up one of the ``n``.
        """
        with self._lock:
            self._rejects.extend([index] * n)

    def clear_faults(self) -> None:
        """End every fault mode, including ``down`` and ``token_disabled``."""
        with self._lock:
            self._failures.clear()
            self._close_next = 0
            self._hang = None
            self._rejects.clear()
            self.down = False
            self.token_disabled = False

    def hold_acks(self, hold: bool = True) -> None:
        """While held, new ack ids stay false; releasing marks every pending id true."""
        with self._lock:
            self._hold_acks = hold
            if not hold:
                for pending in self._acks.values():
                    for ack_id in pending:
                        pending[ack_id] = True

    # request handling (runs in the connection's thread)

    def _event_request(
        self, headers: Message, body: bytes | None, channel: str | None
    ) -> tuple[_Answer, int]:
        with self._lock:
            if self._close_next > 0:
                self._close_next -= 1
                return _SILENT, 0
            pause, then_close = self._take_hang()
        if pause and (self._stopping.wait(pause) or then_close):
            return _SILENT, 0
        with self._lock:
            if self.down:
                return _hec(503, 9), 0
            if self._failures:
                return self._failure(*self._failures.popleft()), 0
        refusal = self._auth_refusal(headers) or self._channel_refusal(channel)
        if refusal is not None:
            return refusal, 0
        text = self._body_text(headers, body)
        if isinstance(text, _Answer):
            return text, 0
        with self._lock:
            reject_at = self._rejects.popleft() if self._rejects else None
        envelopes, error = parse_body(
            text,
            reject_at=reject_at,
            max_event_bytes=self.max_event_bytes,
            indexes=self.allowed_indexes,
        )
        if not envelopes:
            return error or _hec(400, 5), 0
        found = [self._problems_of(envelope) for envelope in envelopes]
        want_ack = channel if error is None and self.use_ack else None
        base, ack_id = self._store(envelopes, found, want_ack)
        if self._on_event is not None:
            for offset, envelope in enumerate(envelopes):
                self._notify(self._on_event, base + offset, envelope, found[offset])
        if error is not None:
            return error, len(envelopes)
        return _hec(200, 0, None if ack_id is None else {"ackId": ack_id}), len(envelopes)

    def _ack_request(self, headers: Message, body: bytes | None, channel: str | None) -> _Answer:
        refusal = self._auth_refusal(headers)
        if refusal is not None:
            return refusal
        if not self.use_ack:
            return _hec(400, 14)
        refusal = self._channel_refusal(channel)
        if refusal is not None:
            return refusal
        text = self._body_text(headers, body)
        if isinstance(text, _Answer):
            return text
        try:
            ids = json.loads(text)["acks"]
        except (ValueError, TypeError, KeyError):
            return _hec(400, 6)
        if not isinstance(ids, list) or not all(type(i) is int for i in ids):
            return _hec(400, 6)
        answer: dict[str, bool] = {}
        with self._lock:
            pending = self._acks.get(cast(str, channel), {})
            for ack_id in ids:
                done = pending.get(ack_id, False)
                answer[str(ack_id)] = done
                if done:  # as Splunk does: an id reported true is forgotten
                    del pending[ack_id]
        return _Answer(200, {"acks": answer})

    def _health(self) -> _Answer:
        return _hec(503, 18) if self.down else _hec(200, 17)

    def _take_hang(self) -> tuple[float, bool]:
        """The pause for this request and whether to close unanswered after it; uses one up."""
        if self._hang is None:
            return 0.0, False
        seconds, left, then_close = self._hang
        if left is not None:
            self._hang = (seconds, left - 1, then_close) if left > 1 else None
        return seconds, then_close

    @staticmethod
    def _failure(status: int, code: int | None, retry_after: str | None) -> _Answer:
        answer = _Answer(status) if code is None else _hec(status, code)
        if retry_after is not None:
            answer = replace(answer, headers=(("Retry-After", retry_after),))
        return answer

    def _auth_refusal(self, headers: Message) -> _Answer | None:
        value = headers.get("Authorization")
        if value is None or not value.strip():
            return _hec(401, 2)
        scheme, space, given = value.partition(" ")
        if scheme != "Splunk" or not space:
            return _hec(401, 3)
        if not given:
            return _hec(401, 2)
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return _hec(403, 4)
        if self.token_disabled:
            return _hec(403, 1)
        return None

    def _channel_refusal(self, channel: str | None) -> _Answer | None:
        if not self.use_ack:
            return None
        if not channel:
            return _hec(400, 10)
        try:
            uuid.UUID(channel)
        except ValueError:
            return _hec(400, 11)
        return None

    def _body_text(self, headers: Message, body: bytes | None) -> str | _Answer:
        encoding = (headers.get("Content-Encoding") or "").strip().lower()
        if encoding not in ("", "gzip"):
            return _UNSUPPORTED
        limit = self.max_body_bytes if self.max_body_bytes is not None else HARD_BODY_LIMIT
        if body is None or len(body) > limit:
            return _TOO_LARGE
        if encoding == "gzip":
            try:
                data = _gunzip(body, limit)
            except (ValueError, zlib.error):
                return _hec(400, 6)
            if data is None:
                return _TOO_LARGE
            body = data
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return _hec(400, 6)

    def _problems_of(self, envelope: dict[str, Any]) -> list[str]:
        problems = envelope_problems(envelope)
        if self.validate:
            if not self._validator_loaded:
                self._validator = _load_validator()  # lazily: most runs never need the schema
                self._validator_loaded = True
            if self._validator is not None:
                problems += _ocsf_problems(self._validator, envelope["event"])
        return problems

    def _store(
        self, envelopes: list[dict[str, Any]], found: list[list[str]], channel: str | None
    ) -> tuple[int, int | None]:
        """Keep accepted envelopes (up to the cap); returns the first one's index and the ack id."""
        with self._lock:
            base = self._accepted
            room = max(0, self.max_events - len(self._envelopes))
            self._envelopes.extend(envelopes[:room])
            self._accepted += len(envelopes)
            for offset, problems in enumerate(found):
                for problem in problems:
                    self._problems_seen += 1
                    if len(self._problems) < self.max_problems:
                        self._problems.append(f"{base + offset}: {problem}")
            ack_id = None
            if channel is not None:
                ack_id = self._ack_next.get(channel, 0)
                self._ack_next[channel] = ack_id + 1
                pending = self._acks.setdefault(channel, {})
                pending[ack_id] = not self._hold_acks
                if len(pending) > _MAX_PENDING_ACKS:
                    del pending[next(iter(pending))]
            self._changed.notify_all()
        return base, ack_id

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests_seen += 1
            if len(self._requests) < self.max_requests:
                self._requests.append(request)
            self._changed.notify_all()
        if self.log_requests:
            logger.info(
                "%s %s -> %s code %s, %d events",
                request.method,
                request.path,
                request.status,
                request.hec_code,
                request.envelope_count,
            )
        if self._on_request is not None:
            self._notify(self._on_request, request)

    @staticmethod
    def _notify(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # a listener's bug must not break the receiver
            logger.exception("HECSink listener failed")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], sink: HECSink) -> None:
        self.sink = sink
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)

    def close_connections(self) -> None:
        """Wake every connection thread (idle keep-alive reads included) so it ends now."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            # the plain socket call, so an SSL wrapper is not torn down under its reader
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as HEC senders expect
    server_version = "py-mdr-sink"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this the client's delayed ACK
        # holds every answer after the first on a keep-alive connection for ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # an idle keep-alive connection ends after this; a handshake or a body must not stall longer
        self.connection.settimeout(self.server.sink.idle_timeout)
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the sink logs its own line (without the query string) when asked

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        sink = self.server.sink
        arrived = time.time()
        path, _, query = self.path.partition("?")
        path = path.rstrip("/") or "/"
        channel = self.headers.get("X-Splunk-Request-Channel") or _query_value(query, "channel")
        wire_bytes = 0
        try:
            body, wire_bytes = self._read_body()
        except (ValueError, OSError):
            answer, count, body = replace(_hec(400, 6), close=True), 0, b""
        else:
            count = 0
            if method == "POST" and path in EVENT_PATHS:
                answer, count = sink._event_request(self.headers, body, channel)
            elif method == "GET" and path in HEALTH_PATHS:
                answer = sink._health()
            elif method == "POST" and path == ACK_PATH:
                answer = sink._ack_request(self.headers, body, channel)
            else:
                answer = _NOT_FOUND
            if body is None:  # the body was left unread: the connection cannot be reused
                answer = replace(answer, close=True)
        sink._record(
            ReceivedRequest(
                time=arrived,
                method=method,
                path=path,
                status=answer.status,
                hec_code=answer.hec_code,
                envelope_count=count,
                body_bytes=wire_bytes,
                gzip=(self.headers.get("Content-Encoding") or "").strip().lower() == "gzip",
                channel=channel,
                headers=_redacted(self.headers),
            )
        )
        self._answer(answer)

    def _read_body(self) -> tuple[bytes | None, int]:
        """The raw body and its size on the wire; None when over the read cap (left unread)."""
        cap = max(HARD_BODY_LIMIT, self.server.sink.max_body_bytes or 0)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(cap)
        declared = self.headers.get("Content-Length")
        if not declared:
            return b"", 0
        length = int(declared)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > cap:
            return None, length
        return self.rfile.read(length), length

    def _read_chunked(self, cap: int) -> tuple[bytes | None, int]:
        parts: list[bytes] = []
        total = 0
        for _ in range(cap + 1):  # every chunk but the last carries at least one byte
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
            if size == 0:
                break
            total += size
            if total > cap:
                return None, total
            parts.append(self.rfile.read(size))
            self.rfile.readline(16)  # the CRLF after the chunk
        for _ in range(64):  # trailers, up to the blank line
            if self.rfile.readline(1024) in (b"\r\n", b"\n", b""):
                break
        return b"".join(parts), total

    def _answer(self, answer: _Answer) -> None:
        if answer.silent:
            self.close_connection = True
            return
        if answer.payload is not None:
            body = json.dumps(answer.payload, separators=(",", ":")).encode()
            headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
        else:
            body, headers = answer.plain, ()
        try:
            self.send_response(answer.status)
            for name, value in headers + answer.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if answer.close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client went away (e.g. it timed out during a hang)
            self.close_connection = True


# --- TLS for tests and the command line --------------------------------------------------------


def make_self_signed_cert(directory: str | os.PathLike[str], days: int = 30) -> tuple[str, str]:
    """Write a self-signed certificate for 127.0.0.1/localhost; returns (certfile, keyfile).

    Clients verify against the certificate file itself (``verify=certfile``).
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make a test certificate")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "hec-sink-cert.pem", folder / "hec-sink-key.pem"
    command = [
        openssl, "req", "-x509", "-nodes", "-days", str(days),
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"openssl could not make a certificate: {detail}")
    key.chmod(0o600)
    return str(cert), str(key)


# --- command line -------------------------------------------------------------------------------

_LINE_LIMIT = 200


def _clip(text: str) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= _LINE_LIMIT else text[: _LINE_LIMIT - 3] + "..."


def _when(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "time?"
    try:
        moment = _dt.datetime.fromtimestamp(value, tz=_dt.timezone.utc)
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


def run_sink_cli(
    port: int = 8088,
    token: str = "test-token",
    *,
    host: str = "127.0.0.1",
    use_ack: bool = False,
    tls: tuple[str, str] | None = None,
    validate: bool = True,
    log_requests: bool = False,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run a receiver in the foreground, printing each event, until Ctrl-C (or ``stop`` is set)."""
    stream = out if out is not None else sys.stdout
    print_lock = threading.Lock()
    stop = stop if stop is not None else threading.Event()

    def show(text: str) -> None:
        with print_lock:
            print(text, file=stream, flush=True)

    def on_event(index: int, envelope: dict[str, Any], problems: list[str]) -> None:
        show(format_event(index, envelope, problems))

    def on_request(request: ReceivedRequest) -> None:
        if request.status != 200:
            said = ""
            if request.hec_code is not None:
                said = f" code {request.hec_code} {HEC_TEXT.get(request.hec_code, '')}".rstrip()
            show(f"! {request.method} {request.path} -> {request.status or 'no answer'}{said}")

    sink = HECSink(
        token=token,
        host=host,
        port=port,
        use_ack=use_ack,
        tls=tls,
        validate=validate,
        max_events=10_000,  # it prints; it need not remember a long run
        log_requests=log_requests,
        on_event=on_event,
        on_request=on_request,
    )
    try:
        sink.start()
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    show(f"HEC receiver listening on {sink.url} (Ctrl-C to stop)")
    try:
        # timed: a signal the kernel hands to a server thread only runs its Python handler once
        # the main thread wakes up, and an untimed wait would never wake
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()
    show(f"stopped after {sink.event_count} events and {len(sink.problems)} problems")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m py_mdr.sink``: a local HEC receiver that prints what it gets."""
    parser = argparse.ArgumentParser(
        prog="py-mdr sink", description="Run a local HEC receiver and print every event it gets."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8088, help="0 picks a free port")
    parser.add_argument(
        "--token",
        default=os.environ.get("MDR_TOKEN", "test-token"),
        help="the HEC token to accept (default: $MDR_TOKEN, else test-token)",
    )
    parser.add_argument("--ack", action="store_true", help="turn indexer acknowledgement on")
    parser.add_argument("--tls-cert", help="certificate file (PEM) to serve HTTPS")
    parser.add_argument("--tls-key", help="private key file (PEM) for --tls-cert")
    parser.add_argument(
        "--self-signed", metavar="DIR", help="make a self-signed certificate in DIR and serve HTTPS"
    )
    parser.add_argument("--no-validate", action="store_true", help="skip OCSF validation")
    parser.add_argument("--log-requests", action="store_true", help="log one line per request")
    args = parser.parse_args(argv)
    tls: tuple[str, str] | None = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            parser.error("--tls-cert and --tls-key go together")
        tls = (args.tls_cert, args.tls_key)
    elif args.self_signed:
        tls = make_self_signed_cert(args.self_signed)
        print(f"self-signed certificate (verify against it): {tls[0]}", flush=True)
    if args.log_requests:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        # our own handlers: Ctrl-C stops the receiver even where SIGINT was inherited as ignored
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, lambda signum, frame: stop.set())
    try:
        return run_sink_cli(
            args.port,
            args.token,
            host=args.host,
            use_ack=args.ack,
            tls=tls,
            validate=not args.no_validate,
            log_requests=args.log_requests,
            stop=stop,
        )
    finally:
        for number, handler in previous.items():
            if handler is not None:
                signal.signal(number, handler)


if __name__ == "__main__":
    sys.exit(main())
