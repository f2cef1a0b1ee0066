"""py-mdr for OpenTelemetry: ``MDRExporter`` for log records, ``MDRSpanExporter`` for spans.

Install with ``pip install 'py-mdr[otel]'``. Each exporter loads on first use, with the part of
the OpenTelemetry SDK it needs (logs or traces); ``import py_mdr`` alone never loads OTel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from py_mdr._lazy import lazy_getattr

if TYPE_CHECKING:
    from py_mdr_otel.exporter import ExporterStats, MDRExporter
    from py_mdr_otel.span_exporter import MDRSpanExporter, SpanExporterStats

__all__ = ["ExporterStats", "MDRExporter", "MDRSpanExporter", "SpanExporterStats"]

__getattr__ = lazy_getattr(
    __name__,
    {
        "ExporterStats": "py_mdr_otel.exporter",
        "MDRExporter": "py_mdr_otel.exporter",
        "MDRSpanExporter": "py_mdr_otel.span_exporter",
        "SpanExporterStats": "py_mdr_otel.span_exporter",
    },
)
