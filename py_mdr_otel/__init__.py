"""py-mdr for OpenTelemetry: ``MDRExporter``, a log record exporter sending to MDR.

Install with ``pip install 'py-mdr[otel]'``. Importing this package loads the OpenTelemetry SDK;
``import py_mdr`` alone never does.
"""

from __future__ import annotations

from py_mdr_otel.exporter import ExporterStats, MDRExporter

__all__ = ["ExporterStats", "MDRExporter"]
