"""The receiver's HTTP side: connections, request bodies read within the memory budget, answers
written; what a request means and what it is answered is the sink's (``server.py``)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from py_mdr.sink.limits import Reservation
from py_mdr.sink.pacing import TrickleWriter
from py_mdr.sink.wire import (
    ACK_PATH,
    EVENT_PATHS,
    HARD_BODY_LIMIT,
    HEALTH_PATHS,
    NOT_FOUND,
    Answer,
    NoRoom,
    ReceivedRequest,
    hec_answer,
    query_value,
    redacted_headers,
)

if TYPE_CHECKING:
    from py_mdr.sink.server import HECSink

__all__ = ["RequestHandler", "Server"]

logger = logging.getLogger("py_mdr.sink")


class Server(ThreadingHTTPServer):
    """Threads per connection, bounded by the sink's ``max_connections``; closable at once."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], sink: HECSink) -> None:
        self.sink = sink
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, RequestHandler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)

    @property
    def crowded(self) -> bool:
        """More connections are open than the sink serves at once."""
        with self._open_lock:
            return len(self._open) > self.sink.max_connections

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


class RequestHandler(BaseHTTPRequestHandler):
    """One connection's requests: read the body within the memory budget, let the sink decide
    the answer, write it (paced when the sink trickles)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as HEC senders expect
    server_version = "py-mdr-sink"
    sys_version = ""
    server: Server

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
        channel = self.headers.get("X-Splunk-Request-Channel") or query_value(query, "channel")
        room = Reservation(sink._budget)
        try:
            answer, count, wire_bytes = self._handle(method, path, channel, room)
        finally:
            room.release()
        health = method == "GET" and path in HEALTH_PATHS
        paced = health or (method == "POST" and path in EVENT_PATHS)
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
                headers=redacted_headers(self.headers),
            )
        )
        self._answer(answer, sink._take_trickle(health) if paced and not answer.silent else 0.0)

    def _handle(
        self, method: str, path: str, channel: str | None, room: Reservation
    ) -> tuple[Answer, int, int]:
        """The answer, the envelopes accepted and the body's size on the wire."""
        sink = self.server.sink
        if self.server.crowded:  # the body is left unread, so the connection must close
            return replace(hec_answer(503, 9), close=True), 0, 0
        try:
            body, wire_bytes = self._read_body(room)
        except (ValueError, OSError):
            return replace(hec_answer(400, 6), close=True), 0, 0
        except NoRoom:  # other bodies held the memory budget for the whole idle timeout
            return replace(hec_answer(503, 9), close=True), 0, 0
        count = 0
        if method == "POST" and path in EVENT_PATHS:
            answer, count = sink._event_request(self.headers, body, channel, room)
        elif method == "GET" and path in HEALTH_PATHS:
            answer = sink._health()
        elif method == "POST" and path == ACK_PATH:
            answer = sink._ack_request(self.headers, body, channel)
        else:
            answer = NOT_FOUND
        if body is None:  # the body was left unread: the connection cannot be reused
            answer = replace(answer, close=True)
        return answer, count, wire_bytes

    def _read_body(self, room: Reservation) -> tuple[bytes | None, int]:
        """The raw body and its size on the wire; None when over the read cap (left unread).

        Its size is reserved from the memory budget first (a chunked body's cap, its size being
        unknown); :class:`NoRoom` when no room came within the idle timeout.
        """
        sink = self.server.sink
        cap = max(HARD_BODY_LIMIT, sink.max_body_bytes or 0)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._reserve(room, cap)
            return self._read_chunked(cap)
        declared = self.headers.get("Content-Length")
        if not declared:
            return b"", 0
        length = int(declared)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > cap:  # refused unread (413), so nothing to hold
            return None, length
        self._reserve(room, length)
        return self.rfile.read(length), length

    def _reserve(self, room: Reservation, size: int) -> None:
        if not room.take(size, self.server.sink.idle_timeout):
            raise NoRoom

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

    def _answer(self, answer: Answer, interval: float = 0.0) -> None:
        """Write the answer, one byte every ``interval`` seconds when that is set."""
        if answer.silent:
            self.close_connection = True
            return
        out = self.wfile
        if interval > 0:
            self.wfile = TrickleWriter(out, interval, self.server.sink._stopping)
        try:
            self._write_answer(answer)
        finally:
            self.wfile = out

    def _write_answer(self, answer: Answer) -> None:
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
