"""A small web service for the span tests: a WSGI application on wsgiref, on loopback.

``/users/<id>`` answers 200 (and names the user from ``X-User`` as ``enduser.id``),
``/missing`` 404, and ``/boom`` raises, so the server answers 500. Each request also records
one INTERNAL span, which MDR must not receive. Run as a script, it serves under the global
tracer provider (what ``opentelemetry-instrument`` sets up), prints its port, and serves until
its standard input closes.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from opentelemetry import trace
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

StartResponse = Callable[..., Any]


def make_app(tracer_provider: Any = None) -> Callable[[dict[str, Any], StartResponse], Any]:
    tracer = trace.get_tracer("tests.wsgi_app", tracer_provider=tracer_provider)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        with tracer.start_as_current_span("lookup"):  # INTERNAL: never sent
            pass
        if path == "/boom":
            raise ValueError("the order service is down")
        if path.startswith("/users/"):
            user = environ.get("HTTP_X_USER")
            if user:
                trace.get_current_span().set_attribute("enduser.id", user)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"a user"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such page"]

    return app


class _Handler(WSGIRequestHandler):
    """wsgiref's handler, quiet, passing the raw request target as uWSGI and gunicorn do."""

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ["REQUEST_URI"] = self.path
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(tracer_provider: Any = None) -> WSGIServer:
    """The instrumented application, served on 127.0.0.1 in a daemon thread."""
    app = OpenTelemetryMiddleware(make_app(tracer_provider), tracer_provider=tracer_provider)
    server = make_server("127.0.0.1", 0, app, handler_class=_Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    running = serve()
    print(running.server_port, flush=True)
    sys.stdin.read()
    running.shutdown()
