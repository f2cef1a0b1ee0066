"""A minimal OTLP/HTTP logs receiver on loopback, so the OpenTelemetry path is measured fairly.

It accepts ``POST /v1/logs`` (protobuf, optionally gzip), counts log records and wire bytes, and
answers an empty ``ExportLogsServiceResponse``. ``fail_next(n)`` answers the next ``n`` POSTs with
503 instead (counting nothing), as a busy collector does; ``port`` binds a chosen port (so a
benchmark can start the receiver late, on a port the sender already knows). Benchmarks only; not
part of the package.
"""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)


class OTLPSink:
    def __init__(self, port: int = 0) -> None:
        self.records = 0
        self.wire_bytes = 0
        self.requests = 0
        self.refused = 0
        self._failures: list[int] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = sink.take_failure()
                if status is not None:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                raw = (
                    gzip.decompress(body)
                    if self.headers.get("Content-Encoding") == "gzip"
                    else body
                )
                request = ExportLogsServiceRequest.FromString(raw)
                count = sum(
                    len(scope.log_records)
                    for resource in request.resource_logs
                    for scope in resource.scope_logs
                )
                sink.add(count, len(body))
                answer = ExportLogsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1/logs"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next ``n`` POSTs with ``status`` and an empty body, storing nothing."""
        with self._lock:
            self._failures.extend([status] * n)

    def take_failure(self) -> int | None:
        with self._lock:
            if not self._failures:
                return None
            self.refused += 1
            return self._failures.pop(0)

    def add(self, records: int, wire_bytes: int) -> None:
        with self._lock:
            self.records += records
            self.wire_bytes += wire_bytes
            self.requests += 1

    def __enter__(self) -> OTLPSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
