"""``MDRSpanExporter``: the HTTP and RPC spans a service records, to MDR as OCSF activity.

Configured like ``MDRExporter`` and sent by the same delivery; ``export`` maps its batch on the
SDK's export thread (:mod:`py_mdr_otel.spans`), where spans of no network activity are counted
by kind and never sent, queues the envelopes and returns at once. py-mdr's own HTTP requests
never become spans: its sending runs with OpenTelemetry instrumentation suppressed
(``py_mdr.internal``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from py_mdr.plain import dumps
from py_mdr_otel._outlet import DROPPED, Encoded, ExporterStats, Outlet
from py_mdr_otel.spans import encode_span

__all__ = ["MDRSpanExporter", "SpanExporterStats"]

_SUCCESS = SpanExportResult.SUCCESS
_FAILURE = SpanExportResult.FAILURE


@dataclass(frozen=True)
class SpanExporterStats(ExporterStats):
    """``ExporterStats`` (``exported`` counts spans) plus the spans that were not sent."""

    skipped: dict[str, int] = field(default_factory=dict)  # span kind -> spans of no HTTP/RPC


class MDRSpanExporter(Outlet, SpanExporter):
    """OpenTelemetry ``SpanExporter`` sending HTTP and RPC spans to MDR.

    SERVER and CLIENT spans with an HTTP method become OCSF HTTP Activity, those with
    ``rpc.system`` API Activity; every other span is skipped and counted in ``stats().skipped``.
    Use it under ``BatchSpanProcessor``, or let ``OTEL_TRACES_EXPORTER=mdr
    opentelemetry-instrument`` create it with no arguments. Its arguments, environment variables
    and defaults are ``MDRExporter``'s; ``processors`` see each event dict, and redaction covers
    the URL's path and query and the status description besides ``unmapped``. The constructor
    never touches the network and starts no thread.
    """

    _thread_name = "py-mdr-otel-spans"
    _item_noun = "a span"

    @property
    def stats(self) -> SpanExporterStats:
        """``MDRExporter.stats`` plus ``skipped``: spans not sent, by kind (``stats()`` too)."""
        return SpanExporterStats(**self._stats_fields(), skipped=dict(self._skipped))

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Map and queue the HTTP and RPC spans of ``spans``; returns at once, never raises.

        SUCCESS means every span was accepted for delivery or skipped by design; FAILURE that
        some could not even be queued (queue full, unmappable, exporter shut down).
        """
        return _SUCCESS if self._take(spans) else _FAILURE

    def _encode_one(self, span: ReadableSpan) -> Encoded | str | object:
        if self._pipeline.processors:
            return self._processed(span)
        redactor = self._pipeline.redactor
        return encode_span(span, self._vendor_name, redactor if redactor.enabled else None)

    def _processed(self, span: ReadableSpan) -> Encoded | str | object:
        """The slower path when there are processors: the whole event as a dict for them."""
        encoded = encode_span(span, self._vendor_name)
        if isinstance(encoded, str):
            return encoded
        processed = self._pipeline(json.loads(encoded[0]))
        if processed is None:
            return DROPPED
        when = processed.get("time")
        seconds = when / 1000 if type(when) is int and when > 0 else encoded[1]
        return dumps(processed), seconds, encoded[2], encoded[3]
