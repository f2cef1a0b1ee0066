"""py-mdr for OpenTelemetry: ``MDRExporter`` for log records, ``MDRSpanExporter`` for spans.

Install with ``pip install 'py-mdr[otel]'``. Importing this package loads the OpenTelemetry SDK;
``import py_mdr`` alone never does.
"""

from __future__ import annotations

from py_mdr_otel.exporter import ExporterStats, MDRExporter
from py_mdr_otel.span_exporter import MDRSpanExporter, SpanExporterStats

__all__ = ["ExporterStats", "MDRExporter", "MDRSpanExporter", "SpanExporterStats"]
