"""``MDRExporter``: OpenTelemetry log records to MDR as OCSF Event Log Activity over HEC.

``export`` maps and serializes its batch on the SDK's export thread and hands the envelopes to
py-mdr's delivery (bounded queue, worker, optional disk spool: the same as ``MDRHandler``'s),
then returns at once. So the SDK's processor never waits for MDR and never drops records
because MDR is slow, busy or down; retries, the send deadline and the spool are the delivery's.
Records created while py-mdr sends (its own lines, its HTTP stack's) carry the
``py_mdr_internal`` mark and are skipped instead of exported again; so are OpenTelemetry's own
records (scope ``opentelemetry.*``). Both are counted in ``stats().internal``.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from py_mdr.plain import dumps
from py_mdr.processing.contexts import CONTEXT_ATTRIBUTE, take_context
from py_mdr_otel._outlet import (
    DEFAULT_EXPORT_TIMEOUT,
    DROPPED,
    INTERNAL,
    Encoded,
    ExporterStats,
    Outlet,
)
from py_mdr_otel.mapping import encode_record, envelope_fields, is_internal, otel_to_event

__all__ = ["DEFAULT_EXPORT_TIMEOUT", "ExporterStats", "MDRExporter"]

_SUCCESS = LogRecordExportResult.SUCCESS
_FAILURE = LogRecordExportResult.FAILURE


class MDRExporter(Outlet, LogRecordExporter):
    """OpenTelemetry ``LogRecordExporter`` sending each record to MDR as an OCSF Event Log Activity.

    Use it under ``BatchLogRecordProcessor``, or let ``OTEL_LOGS_EXPORTER=mdr
    opentelemetry-instrument`` create it with no arguments. Every argument falls back to an
    environment variable, then to a default:

    - ``host`` / ``token``: ``MDR_HOST`` / ``MDR_TOKEN`` (required).
    - ``ssl_verify`` / ``ca_bundle``: ``MDR_SSL_VERIFY`` / ``MDR_CA_BUNDLE`` (verification on).
    - ``client_cert`` / ``client_key``: ``MDR_CLIENT_CERT`` / ``MDR_CLIENT_KEY``.
    - ``index``: ``MDR_INDEX``.
    - ``name``: the sourcetype ``pymdr::<name>`` (``MDR_NAME``, else the resource's
      ``service.name``).
    - ``vendor_name``: ``MDR_VENDOR_NAME``, used when the resource has no ``service.namespace``.
    - ``timeout``: seconds one send to MDR may take, retries included (``MDR_EXPORT_TIMEOUT``,
      else ``MDR_TIMEOUT``, else 60).
    - ``spool_dir`` / ``max_spool_bytes``: the disk spool (``MDR_SPOOL_DIR`` /
      ``MDR_MAX_SPOOL_BYTES``; default none).
    - ``max_queue_records`` / ``max_queue_bytes``: the delivery's memory bound.
    - ``close_timeout``: how long ``shutdown`` may take to send what is queued (5 s).
    - ``compress`` (``MDR_COMPRESSION``), ``use_ack`` (``MDR_USE_ACK``), ``retry`` (the backoff:
      a ``RetryPolicy`` or a dict of its fields; its deadline is replaced by ``timeout``).
    - ``processors``: callables run on each event dict before it is queued, inside the
      ``contextvars`` context of the logging call that made the record; each returns the event,
      a changed one, or None to drop it.
    - ``redact``: secrets in bodies and attributes are replaced (default on, ``MDR_REDACT``);
      False, or a :class:`~py_mdr.processing.Redaction` (or a dict of its fields).

    The constructor never touches the network and starts no thread.
    """

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Map and queue ``batch`` for delivery; returns at once, never raises.

        SUCCESS means every record was accepted for delivery (queued, or spooled), not that
        MDR has it yet: delivery goes on in the background, and what it cannot deliver is
        counted in :meth:`stats` and told on stderr. FAILURE means some records could not even
        be queued (queue full, unmappable, exporter shut down).
        """
        return _SUCCESS if self._take(batch) else _FAILURE

    def _encode_one(self, item: ReadableLogRecord) -> Encoded | object:
        if self._pipeline.processors:
            return self._processed(item)
        redactor = self._pipeline.redactor
        encoded = encode_record(
            item, self._vendor_name, redactor.event if redactor.enabled else None
        )
        return INTERNAL if encoded is None else encoded

    def _processed(self, item: ReadableLogRecord) -> Encoded | object:
        """The slower path when there are processors: the whole event as a dict for them."""
        if is_internal(item):
            return INTERNAL
        attributes = getattr(getattr(item, "log_record", item), "attributes", None) or {}
        context = take_context(attributes.get(CONTEXT_ATTRIBUTE))
        event = otel_to_event(item, vendor_name=self._vendor_name)
        processed = self._pipeline(event, context)
        if processed is None:
            return DROPPED
        seconds, host, source = envelope_fields(item, self._vendor_name)
        when = processed.get("time")
        if type(when) is int and when > 0:
            seconds = when / 1000
        return dumps(processed), seconds, host, source
