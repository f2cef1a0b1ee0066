"""The receiver itself, :class:`HECSink`: what it stores, how it answers each HEC request, and
the fault modes tests set. Its connections are served by ``connections.py``."""

from __future__ import annotations

import hmac
import json
import logging
import os
import ssl
import threading
import uuid
import weakref
import zlib
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import replace
from email.message import Message
from types import TracebackType
from typing import Any, cast

from py_mdr.sink.connections import Server
from py_mdr.sink.display import format_event
from py_mdr.sink.limits import ByteBudget, Reservation
from py_mdr.sink.ocsf import Validator, load_validator, ocsf_problems
from py_mdr.sink.wire import (
    HARD_BODY_LIMIT,
    MAX_EVENT_BYTES,
    MAX_PENDING_ACKS,
    SILENT,
    TOO_LARGE,
    UNSUPPORTED,
    Answer,
    EventCallback,
    NoRoom,
    ReceivedRequest,
    RequestCallback,
    envelope_problems,
    gunzip,
    hec_answer,
    parse_body,
)

logger = logging.getLogger("py_mdr.sink")

#: Request bodies held in memory at once, all connections together (see limits.py).
DEFAULT_MAX_INFLIGHT_BYTES = 128 * 1024 * 1024
#: Open connections served at once; the next one is answered 503 code 9 (busy) and closed.
DEFAULT_MAX_CONNECTIONS = 128

_LIVE: weakref.WeakSet[HECSink] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A lock held by a parent's thread at fork time would stay held for ever in the child."""
    for sink in list(_LIVE):
        sink._reset_locks()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class HECSink:
    """A real HEC endpoint on 127.0.0.1 that records what it accepts; thread-safe, bounded.

    With ``client_ca`` (and ``tls``) it demands a client certificate signed by that CA, as a
    receiver behind mutual TLS does.

    Memory stays bounded under abuse: a body over ``max_body_bytes`` (raw or decompressed;
    default 100 MiB, as Vector) is answered 413; a body waits for its turn while others hold
    ``max_inflight_bytes``; beyond ``max_connections`` open connections a request is answered
    503 code 9 (busy). A sink left from a parent process can be stopped in a forked child: the
    child closes its copy of the socket and the parent's server runs on.

    Beyond the constructor: ``max_body_bytes``, ``max_event_bytes``
    (one envelope; above it 400 code 6), ``allowed_indexes`` (others: 400 code 7), ``down`` (the
    event endpoint answers 503 code 9, health 503 code 18) and ``token_disabled`` (403 code 1)
    may be set at any time. Fault modes: ``fail_next``, ``answer_next`` (anything, e.g. a
    proxy's login page with 200), ``hang``, ``trickle``, ``close_next``, ``reject_envelope``.
    """

    def __init__(
        self,
        *,
        token: str = "test-token",
        host: str = "127.0.0.1",
        port: int = 0,
        use_ack: bool = False,
        tls: tuple[str, str] | None = None,
        client_ca: str | None = None,
        validate: bool = True,
        max_events: int = 1_000_000,
        max_requests: int = 100_000,
        max_problems: int = 100_000,
        idle_timeout: float = 300.0,
        max_body_bytes: int | None = None,
        max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        log_requests: bool = False,
        on_event: EventCallback | None = None,
        on_request: RequestCallback | None = None,
    ) -> None:
        """Set up (not yet started: ``start()`` or ``with``) a receiver accepting ``token``.

        ``port`` 0 picks a free port; ``tls`` is a (certificate, key) pair to serve HTTPS, and
        ``client_ca`` with it demands client certificates signed by that CA; ``validate``
        checks each event against OCSF 1.3.0; the ``max_*`` bounds keep memory bounded;
        ``on_event`` / ``on_request`` are called with what arrives."""
        self.token = token
        self.use_ack = use_ack
        self.validate = validate
        self.max_events = max_events
        self.max_requests = max_requests
        self.max_problems = max_problems
        self.idle_timeout = idle_timeout
        self.log_requests = log_requests
        for name, value in (
            ("max_inflight_bytes", max_inflight_bytes),
            ("max_connections", max_connections),
            ("max_body_bytes", 1 if max_body_bytes is None else max_body_bytes),
        ):
            if type(value) is not int or value < 1:
                raise ValueError(f"HECSink: {name} must be a positive whole number, got {value!r}")
        self.max_body_bytes: int | None = max_body_bytes
        self.max_connections = max_connections
        self._budget = ByteBudget(max_inflight_bytes)
        self._pid = os.getpid()
        self.max_event_bytes = MAX_EVENT_BYTES
        self.allowed_indexes: Collection[str] | None = None
        self.down = False
        self.token_disabled = False
        self._bind = (host, port)
        if client_ca is not None and tls is None:
            raise ValueError("HECSink: client_ca needs tls=(certfile, keyfile): it is mutual TLS")
        self._tls = tls
        self._client_ca = client_ca
        self._on_event = on_event
        self._on_request = on_request
        self._server: Server | None = None
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
        self._failures: deque[Answer] = deque()
        self._close_next = 0
        self._hang: tuple[float, int | None, bool] | None = None
        self._trickle: tuple[float, int | None, bool] | None = None
        self._rejects: deque[int] = deque()
        self._poison: str | None = None
        # indexer acknowledgement, per channel
        self._ack_next: dict[str, int] = {}
        self._acks: dict[str, dict[int, bool]] = {}
        self._hold_acks = False
        _LIVE.add(self)

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
        server = Server(self._bind, self)
        if self._tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(*self._tls)
            if self._client_ca is not None:  # mutual TLS: no connection without a client cert
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(cafile=self._client_ca)
            # handshakes happen in the connection's own thread, never in the accept loop
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._pid = os.getpid()
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
        self._budget.close()
        if os.getpid() != self._pid:
            # a forked child: the serving thread exists only in the parent, so shutdown()
            # would wait for it for ever; closing this process's copy of the socket is all
            server.server_close()
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _reset_locks(self) -> None:
        """Fresh locks in a forked child (the parent's threads that held them are gone)."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._budget = ByteBudget(self._budget.limit)
        if self._server is not None:
            self._server._open_lock = threading.Lock()
            self._server._open = set()

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
    def inflight_bytes(self) -> int:
        """Request bodies held in memory right now (at most ``max_inflight_bytes``, but for
        one body larger than that, which is then the only one)."""
        return self._budget.used

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
        answer = self._failure(status, code, retry_after)
        with self._lock:
            self._failures.extend([answer] * n)

    def answer_next(
        self,
        n: int,
        status: int = 200,
        body: bytes | str = b"",
        content_type: str | None = None,
    ) -> None:
        """Answer the next ``n`` event requests with exactly this, storing nothing.

        For answers that are not HEC's: a proxy's HTML login page with 200, a 200 carrying
        ``{"text":"Invalid data format","code":6}``, an empty 200. Queued with ``fail_next``.
        """
        data = body.encode("utf-8") if isinstance(body, str) else body
        headers = (("Content-Type", content_type),) if content_type else ()
        with self._lock:
            self._failures.extend([Answer(status, plain=data, headers=headers)] * n)

    def trickle(self, interval: float, n: int | None = None, *, health: bool = True) -> None:
        """Write the answers to the next ``n`` event requests (all, when None) one byte every
        ``interval`` seconds, status line included; ``trickle(0)`` ends the mode.

        Health requests are paced too (and count in ``n``) unless ``health`` is false. The
        request is handled normally first (events are stored), so a good request gets a 200
        HEC success that takes minutes to arrive. Writing ends when the sink stops.
        """
        active = interval > 0 and (n is None or n > 0)
        with self._lock:
            self._trickle = (interval, n, health) if active else None

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

    def refuse_containing(self, marker: str | None) -> None:
        """Refuse every event request whose body holds ``marker`` with a 400 code 6 that does
        not say which event is bad (as Vector does); nothing of it is stored. None ends it."""
        with self._lock:
            self._poison = marker

    def clear_faults(self) -> None:
        """End every fault mode, including ``down`` and ``token_disabled``."""
        with self._lock:
            self._failures.clear()
            self._close_next = 0
            self._hang = None
            self._trickle = None
            self._rejects.clear()
            self._poison = None
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
        self,
        headers: Message,
        body: bytes | None,
        channel: str | None,
        room: Reservation | None = None,
    ) -> tuple[Answer, int]:
        with self._lock:
            if self._close_next > 0:
                self._close_next -= 1
                return SILENT, 0
            pause, then_close = self._take_hang()
        if pause and (self._stopping.wait(pause) or then_close):
            return SILENT, 0
        with self._lock:
            if self.down:
                return hec_answer(503, 9), 0
            if self._failures:
                return self._failures.popleft(), 0
        refusal = self._auth_refusal(headers) or self._channel_refusal(channel)
        if refusal is not None:
            return refusal, 0
        text = self._body_text(headers, body, room)
        if isinstance(text, Answer):
            return text, 0
        with self._lock:
            if self._poison is not None and self._poison in text:
                return hec_answer(400, 6), 0
            reject_at = self._rejects.popleft() if self._rejects else None
        envelopes, error = parse_body(
            text,
            reject_at=reject_at,
            max_event_bytes=self.max_event_bytes,
            indexes=self.allowed_indexes,
        )
        if not envelopes:
            return error or hec_answer(400, 5), 0
        found = [self._problems_of(envelope) for envelope in envelopes]
        want_ack = channel if error is None and self.use_ack else None
        base, ack_id = self._store(envelopes, found, want_ack)
        if self._on_event is not None:
            for offset, envelope in enumerate(envelopes):
                self._notify(self._on_event, base + offset, envelope, found[offset])
        if error is not None:
            return error, len(envelopes)
        return hec_answer(200, 0, None if ack_id is None else {"ackId": ack_id}), len(envelopes)

    def _ack_request(self, headers: Message, body: bytes | None, channel: str | None) -> Answer:
        refusal = self._auth_refusal(headers)
        if refusal is not None:
            return refusal
        if not self.use_ack:
            return hec_answer(400, 14)
        refusal = self._channel_refusal(channel)
        if refusal is not None:
            return refusal
        text = self._body_text(headers, body)
        if isinstance(text, Answer):
            return text
        try:
            ids = json.loads(text)["acks"]
        except (ValueError, TypeError, KeyError):
            return hec_answer(400, 6)
        if not isinstance(ids, list) or not all(type(i) is int for i in ids):
            return hec_answer(400, 6)
        answer: dict[str, bool] = {}
        with self._lock:
            pending = self._acks.get(cast(str, channel), {})
            for ack_id in ids:
                done = pending.get(ack_id, False)
                answer[str(ack_id)] = done
                if done:  # as Splunk does: an id reported true is forgotten
                    del pending[ack_id]
        return Answer(200, {"acks": answer})

    def _health(self) -> Answer:
        return hec_answer(503, 18) if self.down else hec_answer(200, 17)

    def _take_hang(self) -> tuple[float, bool]:
        """The pause for this request and whether to close unanswered after it; uses one up."""
        if self._hang is None:
            return 0.0, False
        seconds, left, then_close = self._hang
        if left is not None:
            self._hang = (seconds, left - 1, then_close) if left > 1 else None
        return seconds, then_close

    def _take_trickle(self, health: bool) -> float:
        """The byte interval for this answer (0: at once); uses one up."""
        with self._lock:
            if self._trickle is None:
                return 0.0
            interval, left, with_health = self._trickle
            if health and not with_health:
                return 0.0
            if left is not None:
                self._trickle = (interval, left - 1, with_health) if left > 1 else None
            return interval

    @staticmethod
    def _failure(status: int, code: int | None, retry_after: str | None) -> Answer:
        answer = Answer(status) if code is None else hec_answer(status, code)
        if retry_after is not None:
            answer = replace(answer, headers=(("Retry-After", retry_after),))
        return answer

    def _auth_refusal(self, headers: Message) -> Answer | None:
        value = headers.get("Authorization")
        if value is None or not value.strip():
            return hec_answer(401, 2)
        scheme, space, given = value.partition(" ")
        if scheme != "Splunk" or not space:
            return hec_answer(401, 3)
        if not given:
            return hec_answer(401, 2)
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return hec_answer(403, 4)
        if self.token_disabled:
            return hec_answer(403, 1)
        return None

    def _channel_refusal(self, channel: str | None) -> Answer | None:
        if not self.use_ack:
            return None
        if not channel:
            return hec_answer(400, 10)
        try:
            uuid.UUID(channel)
        except ValueError:
            return hec_answer(400, 11)
        return None

    def _body_text(
        self, headers: Message, body: bytes | None, room: Reservation | None = None
    ) -> str | Answer:
        encoding = (headers.get("Content-Encoding") or "").strip().lower()
        if encoding not in ("", "gzip"):
            return UNSUPPORTED
        limit = self.max_body_bytes if self.max_body_bytes is not None else HARD_BODY_LIMIT
        if body is None or len(body) > limit:
            return TOO_LARGE
        if encoding == "gzip":
            try:
                data = gunzip(body, limit, room.grow if room is not None else None)
            except NoRoom:
                return replace(hec_answer(503, 9), close=True)
            except (ValueError, zlib.error):
                return hec_answer(400, 6)
            if data is None:
                return TOO_LARGE
            body = data
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return hec_answer(400, 6)

    def _problems_of(self, envelope: dict[str, Any]) -> list[str]:
        problems = envelope_problems(envelope)
        if self.validate:
            if not self._validator_loaded:
                self._validator = load_validator()  # lazily: most runs never need the schema
                self._validator_loaded = True
            if self._validator is not None:
                problems += ocsf_problems(self._validator, envelope["event"])
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
                if len(pending) > MAX_PENDING_ACKS:
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
