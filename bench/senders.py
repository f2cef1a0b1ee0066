"""One benchmark run of one sender, in a child process of bench/run.py.

Usage: ``python bench/senders.py SENDER URL TOKEN RECORDS [BURST PAUSE_MS]``. Logs RECORDS lines
through the sender (``logger.info`` with 2 %-args and 3 ``extra`` fields) in bursts of BURST
calls with a pause of PAUSE_MS between them (a busy service, not a tight loop: every sender
drops records when a tight loop outruns its bounded queue), waits until the sender has handed
everything on, and prints one JSON line: caller latency percentiles, CPU per record (all
threads of this process, pauses excluded), peak RSS. The parent counts what was received.

``SENDERS`` also holds the setups bench/burst_child.py runs for bench/burst.py (all on their
defaults: ``MDRHandler``, ``MDRExporter``, each optionally with a spool, and OTLP with gzip).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk._logs.export import LogRecordExporter

FLUSH_TIMEOUT = float(os.environ.get("BENCH_FLUSH_TIMEOUT", "60"))
Finish = Callable[[], bool]  # waits (bounded) until the sender handed everything on; True if so
Setup = Callable[[str, str], tuple[logging.Handler, Finish]]


def null(url: str, token: str) -> tuple[logging.Handler, Finish]:
    return logging.NullHandler(), lambda: True


def _otel(exporter: LogRecordExporter) -> tuple[logging.Handler, Finish]:
    """SDK ``LoggerProvider`` + default ``BatchLogRecordProcessor`` + the stdlib bridge.

    The bridge is opentelemetry-instrumentation-logging's ``LoggingHandler`` (the SDK's own
    ``opentelemetry.sdk._logs.LoggingHandler`` is deprecated and warns). ``finish`` flushes the
    processor, then the exporter: the processor's ``force_flush`` never calls the exporter's, and
    ``MDRExporter`` hands its batches to a delivery of its own that must drain too.
    """
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)

    def finish() -> bool:
        deadline = time.monotonic() + FLUSH_TIMEOUT
        flushed = provider.force_flush(int(FLUSH_TIMEOUT * 1000))
        left = max(0.0, deadline - time.monotonic())
        return exporter.force_flush(int(left * 1000)) and flushed

    handler.close = provider.shutdown  # type: ignore[method-assign]  # closes the exporter too
    return handler, finish


class _Noop:
    """A do-nothing exporter: what the SDK costs on its own, below every exporter."""

    exported = 0

    def export(self, batch: object) -> object:
        from opentelemetry.sdk._logs.export import LogRecordExportResult

        _Noop.exported += len(batch)  # type: ignore[arg-type]
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def otel_noop(url: str, token: str) -> tuple[logging.Handler, Finish]:
    return _otel(_Noop())  # type: ignore[arg-type]


def otlp(url: str, token: str) -> tuple[logging.Handler, Finish]:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return _otel(OTLPLogExporter(endpoint=url))


def otlp_gzip(url: str, token: str) -> tuple[logging.Handler, Finish]:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return _otel(OTLPLogExporter(endpoint=url, compression=Compression.Gzip))


def mdr_exporter(url: str, token: str) -> tuple[logging.Handler, Finish]:
    from py_mdr_otel import MDRExporter

    return _otel(MDRExporter(host=url, token=token))


def mdr_exporter_spool(url: str, token: str) -> tuple[logging.Handler, Finish]:
    from py_mdr_otel import MDRExporter

    return _otel(MDRExporter(host=url, token=token, spool_dir=_spool_dir()))


def mdr_handler(url: str, token: str) -> tuple[logging.Handler, Finish]:
    from py_mdr.handler import MDRHandler

    handler = MDRHandler(host=url, token=token, close_timeout=2.0)

    def finish() -> bool:
        return handler.flush(FLUSH_TIMEOUT)

    return handler, finish


def mdr_bare(url: str, token: str) -> tuple[logging.Handler, Finish]:
    """``MDRHandler`` without redaction and storm folding: what those two cost shows beside it."""
    from py_mdr.handler import MDRHandler

    handler = MDRHandler(host=url, token=token, close_timeout=2.0, redact=False, fold=False)
    return handler, lambda: handler.flush(FLUSH_TIMEOUT)


def mdr_default(url: str, token: str) -> tuple[logging.Handler, Finish]:
    """``MDRHandler`` with every setting at its default."""
    from py_mdr.handler import MDRHandler

    handler = MDRHandler(host=url, token=token)
    return handler, lambda: handler.flush(FLUSH_TIMEOUT)


def mdr_spool(url: str, token: str) -> tuple[logging.Handler, Finish]:
    """``MDRHandler`` with defaults plus a disk spool in ``BENCH_SPOOL_DIR``."""
    from py_mdr.handler import MDRHandler

    handler = MDRHandler(host=url, token=token, spool_dir=_spool_dir())
    return handler, lambda: handler.flush(FLUSH_TIMEOUT)


def _spool_dir() -> str:
    """A fresh directory per run, made (and removed) by the parent."""
    return os.environ["BENCH_SPOOL_DIR"]


SENDERS: dict[str, Setup] = {
    "null": null,
    "otlp": otlp,
    "otel_noop": otel_noop,
    "mdr_exporter": mdr_exporter,
    "mdr_handler": mdr_handler,
    "mdr_bare": mdr_bare,
    # bench/burst.py's senders (all defaults; the two spools in BENCH_SPOOL_DIR)
    "otlp_gzip": otlp_gzip,
    "mdr_default": mdr_default,
    "mdr_spool": mdr_spool,
    "mdr_exporter_spool": mdr_exporter_spool,
}


def peak_rss_mb() -> float:
    """This process's own high-water mark (``ru_maxrss`` can report the parent's after exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(sender: str, url: str, token: str, records: int, burst: int, pause: float) -> None:
    handler, finish = SENDERS[sender](url, token)
    logger = logging.getLogger("bench.app")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    extra = {"request_id": "r-1234", "tenant": "acme", "attempt": 2}
    for i in range(200):  # warm up imports and caches
        logger.info("user %s did %s", "alice", i, extra=extra)
    finish()
    latencies = [0] * records
    clock = time.perf_counter_ns
    cpu_start = time.process_time()
    for i in range(records):
        start = clock()
        logger.info("user %s did %s", "alice", i, extra=extra)
        latencies[i] = clock() - start
        if pause and i % burst == burst - 1:
            time.sleep(pause)
    caller_cpu = time.process_time() - cpu_start
    finish()
    cpu = time.process_time() - cpu_start
    latencies.sort()
    print(
        json.dumps(
            {
                "p50_us": latencies[records // 2] / 1000,
                "p99_us": latencies[records * 99 // 100] / 1000,
                "cpu_us_per_record": cpu / records * 1e6,
                "cpu_s": cpu,
                "exported": _Noop.exported,
                "caller_loop_cpu_us_per_record": caller_cpu / records * 1e6,
                "peak_rss_mb": peak_rss_mb(),
                "logged": records + 200,
            }
        ),
        flush=True,
    )
    handler.close()


if __name__ == "__main__":
    burst = int(sys.argv[5]) if len(sys.argv) > 5 else 200
    pause_ms = float(sys.argv[6]) if len(sys.argv) > 6 else 20.0
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), burst, pause_ms / 1000)
