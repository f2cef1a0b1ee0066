"""One ``stats`` shape on every door: a property, whose snapshot called returns itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from py_mdr.async_client import AsyncMDRClient
from py_mdr.client import MDRClient
from py_mdr.handler import HandlerStats, MDRHandler
from py_mdr.hec.reports import TransportStats
from py_mdr.sink import HECSink
from py_mdr.stats import Snapshot
from py_mdr_otel import MDRExporter, MDRSpanExporter
from py_mdr_otel._outlet import ExporterStats
from py_mdr_otel.span_exporter import SpanExporterStats


def both_spellings_agree(stats: Snapshot, kind: type[Snapshot]) -> None:
    assert isinstance(stats, kind)
    assert stats() is stats  # `door.stats()` (2.0's method spelling) gives the same snapshot


def test_handler_stats_property_and_call(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = MDRHandler(host=sink.url, token=sink.token)
    attach(handler, "stats.handler").warning("counted")
    assert handler.flush(5)
    both_spellings_agree(handler.stats, HandlerStats)
    assert handler.stats.sent == handler.stats().sent == 1
    assert handler.stats().transport() is not None


def test_client_stats_property_and_call(sink: HECSink) -> None:
    with MDRClient("stats", host=sink.url, token=sink.token) as client:
        client.send({"class_uid": 1008, "message": "counted"})
        both_spellings_agree(client.stats, TransportStats)
        assert client.stats.events_sent == client.stats().events_sent == 1


def test_async_client_stats_property_and_call(sink: HECSink) -> None:
    async def main() -> TransportStats:
        async with AsyncMDRClient("stats", host=sink.url, token=sink.token) as client:
            await client.send({"class_uid": 1008, "message": "counted"})
            assert client.stats().events_sent == 1
            return client.stats

    stats = asyncio.run(main())
    both_spellings_agree(stats, TransportStats)
    assert stats.events_sent == 1


def test_log_exporter_stats_property_and_call(sink: HECSink) -> None:
    exporter = MDRExporter(host=sink.url, token=sink.token)
    try:
        both_spellings_agree(exporter.stats, ExporterStats)
        assert exporter.stats.exported == exporter.stats().exported == 0
    finally:
        exporter.shutdown()


def test_span_exporter_stats_property_and_call(sink: HECSink) -> None:
    exporter = MDRSpanExporter(host=sink.url, token=sink.token)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        with provider.get_tracer("stats").start_as_current_span("no network"):
            pass
        both_spellings_agree(exporter.stats, SpanExporterStats)
        assert exporter.stats.skipped == exporter.stats().skipped == {"internal": 1}
    finally:
        provider.shutdown()
