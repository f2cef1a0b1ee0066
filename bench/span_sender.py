"""One benchmark run of one span exporter, in a child process of bench/spans.py.

Usage: ``python bench/span_sender.py EXPORTER URL TOKEN SPANS``. Records SPANS server spans as
the WSGI instrumentation does (stable attribute names, a 200 answer) under a TracerProvider whose
BatchSpanProcessor feeds EXPORTER (``null``, ``otlp``, ``mdr``, or ``mdr_plain``: redaction
off), in bursts of 500 with a short
pause (a busy service; a tight loop would outrun the processor's queue and drop spans), waits
until the exporter has handed everything on, and prints one JSON line: the CPU time of this
process (all threads: the application's, the processor's, the exporter's) per span. With
``BENCH_CPU`` set, it runs on that core only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

BURST = 500
PAUSE = 0.005
WARM_UP = 1_000


class NullExporter(SpanExporter):
    """Takes every batch and does nothing: what remains is the SDK's own cost."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def exporter(kind: str, url: str, token: str) -> SpanExporter:
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=url, compression=Compression.Gzip)
    if kind in ("mdr", "mdr_plain"):
        from py_mdr_otel import MDRSpanExporter

        return MDRSpanExporter(host=url, token=token, compress=True, redact=kind == "mdr")
    return NullExporter()


def serve(tracer: object, count: int) -> None:
    start_span = tracer.start_span  # type: ignore[attr-defined]
    for i in range(count):
        span = start_span("GET /users/{id}", kind=SpanKind.SERVER)
        span.set_attributes(
            {
                "http.request.method": "GET",
                "url.scheme": "http",
                "url.path": f"/users/{i}",
                "url.query": "tab=orders",
                "server.address": "shop.example.com",
                "server.port": 8080,
                "client.address": "198.51.100.23",
                "client.port": 50_000 + i % 10_000,
                "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
                "network.protocol.version": "1.1",
                "http.route": "/users/{id}",
            }
        )
        span.set_attribute("http.response.status_code", 200)
        span.end()
        if i % BURST == BURST - 1:
            time.sleep(PAUSE)


def main(kind: str, url: str, token: str, count: int) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    chosen = exporter(kind, url, token)
    provider.add_span_processor(
        BatchSpanProcessor(
            chosen,
            max_queue_size=count + WARM_UP,  # never full: a dropped span would cost nothing
            schedule_delay_millis=100,
            max_export_batch_size=BURST,
        )
    )
    tracer = provider.get_tracer("bench.spans")
    serve(tracer, WARM_UP)  # imports, caches, the connection
    provider.force_flush(60_000)
    chosen.force_flush(60_000)
    started = time.process_time()
    serve(tracer, count)
    provider.force_flush(60_000)
    chosen.force_flush(60_000)  # MDRSpanExporter: until its delivery has sent everything
    cpu = time.process_time() - started
    print(json.dumps({"cpu_us_per_span": cpu / count * 1e6, "spans": count + WARM_UP}), flush=True)
    provider.shutdown()


if __name__ == "__main__":
    if os.environ.get("BENCH_CPU"):
        os.sched_setaffinity(0, {int(os.environ["BENCH_CPU"])})
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
