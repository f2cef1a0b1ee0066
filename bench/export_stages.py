"""Per-record cost of each stage inside ``MDRExporter.export``, on real OpenTelemetry SDK records.

Run: ``.venv/bin/python bench/export_stages.py [--records 2000] [--repeat 5]``. Records come from
OpenTelemetry's logging handler (with code attributes) fed the same call as ``bench/run.py``
(``logger.info`` with 2 %-args and 3 ``extra`` fields), so their attributes (code location,
extras) are the real ones.
Each stage runs over the whole batch on one thread; the best of ``--repeat`` rounds is shown in
CPU microseconds per record of that thread (the best round is the least disturbed by other load;
the local receiver's threads are not counted). ``export`` is what the SDK's export thread
pays: it sizes each record and queues it; py-mdr's worker then does ``encode`` (mapping,
redaction and JSON, in one pass per record), gzip at the default level, and the HTTP request.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import time
import timeit
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from py_mdr.hec.batching import join_body
from py_mdr.hec.config import HECConfig
from py_mdr.hec.envelope import encode_envelope
from py_mdr.serialize import dumps
from py_mdr.sink import HECSink
from py_mdr_otel import MDRExporter, mapping
from py_mdr_otel.mapping import queued_size

TOKEN = "bench-token"


def sdk_records(count: int) -> Sequence[ReadableLogRecord]:
    """``count`` records made by the SDK's logging bridge, as BatchLogRecordProcessor sees them."""
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = logging.getLogger("bench.app")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider, log_code_attributes=True)
    logger.addHandler(handler)
    extra = {"request_id": "r-1234", "tenant": "acme", "attempt": 2}
    try:
        for i in range(count):
            logger.info("user %s did %s", "alice", i, extra=extra)
    finally:
        logger.removeHandler(handler)
    records: Sequence[ReadableLogRecord] = memory.get_finished_logs()
    return records


def best_us(stage: Callable[[], Any], records: int, repeat: int) -> float:
    """CPU microseconds per record of this thread (the receiver's threads are not counted)."""
    rounds = timeit.repeat(stage, number=1, repeat=repeat, timer=time.thread_time)
    return min(rounds) / records * 1e6


def stages(
    batch: Sequence[ReadableLogRecord], exporter: MDRExporter
) -> dict[str, Callable[[], Any]]:
    events = [mapping.otel_to_event(item) for item in batch]
    encoded = [dumps(event) for event in events]
    fields = [mapping.envelope_fields(item) for item in batch]
    envelopes = [
        encode_envelope(body, time=t, host=h, source=s, sourcetype="pymdr::bench")
        for body, (t, h, s) in zip(encoded, fields, strict=True)
    ]
    body = join_body(envelopes)
    level = HECConfig(url="http://127.0.0.1", token=TOKEN).compress_level
    result: dict[str, Callable[[], Any]] = {
        "is_internal": lambda: [mapping.is_internal(item) for item in batch],
        "otel_to_event": lambda: [mapping.otel_to_event(item) for item in batch],
        "serialize.dumps": lambda: [dumps(event) for event in events],
        "envelope_fields": lambda: [mapping.envelope_fields(item) for item in batch],
        "encode_envelope": lambda: [
            encode_envelope(b, time=t, host=h, source=s, sourcetype="pymdr::bench")
            for b, (t, h, s) in zip(encoded, fields, strict=True)
        ],
        "encode_record (one pass)": lambda: [mapping.encode_record(item) for item in batch],
        f"gzip (level {level})": lambda: gzip.compress(body, compresslevel=level, mtime=0),
        "encode (the worker's step, without gzip)": lambda: exporter._encode(batch),
        "queued_size (in export)": lambda: [queued_size(item) for item in batch],
        "export (the SDK thread's share)": lambda: exporter.export(batch),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    batch = sdk_records(args.records)
    with HECSink(token=TOKEN, validate=False) as sink:
        exporter = MDRExporter(host=sink.url, token=TOKEN, compress=True)
        try:
            plan = stages(batch, exporter)
            for stage in plan.values():  # warm caches, connection pool and the sink
                stage()
            sink.clear()
            print(f"{len(batch)} SDK records, best of {args.repeat}, pid {os.getpid()}")
            for name, stage in plan.items():
                print(f"  {name:42} {best_us(stage, len(batch), args.repeat):7.2f} us/record")
        finally:
            exporter.shutdown()


if __name__ == "__main__":
    main()
