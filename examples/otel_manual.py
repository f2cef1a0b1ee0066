"""OpenTelemetry logs to MDR with the SDK set up by hand.

    python examples/otel_manual.py

With ``MDR_HOST`` and ``MDR_TOKEN`` set, the lines go to that HEC endpoint. Without them the
example starts a local receiver (``py_mdr.sink``) and prints what it received, so it runs
anywhere. The resource names the product (``service.*``) and the host; a line logged inside a
span carries its trace id; the exception arrives with its stack trace under ``unmapped``.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import ExitStack

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from py_mdr.sink import HECSink, format_event
from py_mdr_otel import MDRExporter

RESOURCE = Resource.create({
    "service.name": "orders",
    "service.version": "1.4.0",
    "service.namespace": "acme.shop",
    "deployment.environment.name": "demo",
})


def log_some_lines(tracer_provider: TracerProvider) -> None:
    log = logging.getLogger("orders")
    tracer = tracer_provider.get_tracer("examples.otel_manual")
    log.info("order service starting")
    with tracer.start_as_current_span("checkout"):
        log.warning("payment provider is slow", extra={"order_id": "order-7", "latency_ms": 2300})
    try:
        _ = {"order-7": 3}["order-8"]
    except KeyError:
        log.exception("unknown order")


def main() -> int:
    with ExitStack() as stack:
        sink: HECSink | None = None
        if os.environ.get("MDR_HOST") and os.environ.get("MDR_TOKEN"):
            exporter = MDRExporter()  # everything from MDR_* variables
        else:
            sink = stack.enter_context(HECSink())
            exporter = MDRExporter(host=sink.url, token=sink.token)
            print(f"MDR_HOST/MDR_TOKEN not set: sending to a local receiver at {sink.url}")

        provider = LoggerProvider(resource=RESOURCE)
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        handler = LoggingHandler(logger_provider=provider)
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            log_some_lines(TracerProvider(resource=RESOURCE))
        finally:
            root.removeHandler(handler)
            provider.shutdown()  # sends what is queued, then closes the exporter

        stats = exporter.stats()
        print(f"exported {stats.exported}, sent {stats.sent}, dropped {dict(stats.dropped)}")
        if sink is None:
            return 0 if stats.failures == 0 else 1
        for index, envelope in enumerate(sink.envelopes):
            print(format_event(index, envelope))
        if sink.envelopes:
            print("the last event in full:")
            print(json.dumps(sink.envelopes[-1], indent=2))
        for problem in sink.problems:
            print(f"problem: {problem}")
        return 0 if stats.failures == 0 and not sink.problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
