"""OpenTelemetry logs to MDR with the SDK set up by hand.

    python examples/otel_manual.py

With ``MDR_HOST`` and ``MDR_TOKEN`` set, the lines go to that HEC endpoint. Without them the
example starts a local receiver (``py_mdr.sink``) and prints what it received, so it runs
anywhere. The resource names the product (``service.*``) and the host; a line logged inside a
span carries its trace id; the exception arrives with its stack trace under ``unmapped``.
"""

from __future__ import annotations

import logging

from _endpoint import mdr_endpoint
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from py_mdr_otel import MDRExporter

RESOURCE = Resource.create(
    {
        "service.name": "orders",
        "service.version": "1.4.0",
        "service.namespace": "acme.shop",
        "deployment.environment.name": "demo",
    }
)


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
    with mdr_endpoint() as sink:
        exporter = MDRExporter()  # everything from MDR_* variables
        provider = LoggerProvider(resource=RESOURCE)
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        handler = LoggingHandler(logger_provider=provider, log_code_attributes=True)
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            log_some_lines(TracerProvider(resource=RESOURCE))
        finally:
            root.removeHandler(handler)
            provider.shutdown()  # sends what is queued, then closes the exporter

        stats = exporter.stats
        print(f"exported {stats.exported}, sent {stats.sent}, dropped {dict(stats.dropped)}")
        if sink is None:
            return 0 if stats.failures == 0 else 1
        print(sink.report())
        for problem in sink.problems:
            print(f"problem: {problem}")
        return 0 if stats.failures == 0 and not sink.problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
