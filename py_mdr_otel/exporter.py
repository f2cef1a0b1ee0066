"""``MDRExporter``: OpenTelemetry log records to MDR as OCSF Event Log Activity over HEC.

``export`` hands its batch's records to py-mdr's delivery (bounded queue, worker, optional disk
spool: the same as ``MDRHandler``'s) and returns at once; the worker maps, serializes and sends
them. So the SDK's processor never waits for MDR, nor for the mapping, and never drops records
because MDR is slow, busy or down; retries, the send deadline and the spool are the delivery's.

Records created while py-mdr sends (its own lines, its HTTP stack's) carry the
``py_mdr_internal`` mark and are skipped instead of exported again; so are OpenTelemetry's own
records (scope ``opentelemetry.*``). Both are counted in ``stats().internal``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from py_mdr import internal
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
from py_mdr_otel.mapping import (
    encode_record,
    envelope_fields,
    is_internal,
    otel_to_event,
    queued_size,
)

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
    - ``processors``: callables run on each event dict (on py-mdr's worker), inside the
      ``contextvars`` context of the logging call that made the record; each returns the event,
      a changed one, or None to drop it.
    - ``redact``: secrets in bodies and attributes are replaced (default on, ``MDR_REDACT``);
      False, or a :class:`~py_mdr.processing.Redaction` (or a dict of its fields).

    The constructor never touches the network and starts no thread.
    """

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Queue ``batch`` for delivery (mapped on py-mdr's worker); returns at once, never raises.

        SUCCESS means every record was accepted for delivery (queued), not that MDR has it
        yet: delivery goes on in the background, and what it cannot deliver is counted in
        :meth:`stats` and told on stderr. FAILURE means some records could not even be queued
        (queue full, not a log record, exporter shut down).
        """
        return _SUCCESS if self._take(batch) else _FAILURE

    def _hand_over(self, batch: Sequence[Any]) -> tuple[int, int]:
        """Queue the records themselves: py-mdr's worker maps them (:meth:`_encode_queued`).

        ``export`` then costs the SDK's thread a look per record and one put per batch, so its
        queue keeps up with a burst however long mapping takes (mapped here, a tight logging
        loop outran the SDK's export thread, and the SDK dropped what its queue could not
        hold). Records of the telemetry pipeline itself are counted here and never queued.
        """
        entries = []
        ours = unmappable = 0
        for item in batch:
            try:
                size = queued_size(item)
            except Exception:
                unmappable += 1
                continue
            if size is None:
                ours += 1
            else:
                entries.append((item, size))
        refused = self._delivery.put_many(entries)  # one lock for the whole batch
        self._internal += ours
        if unmappable:
            self._delivery.count("unmappable", unmappable)
            with internal.sending():
                self._warn_once(
                    "unmappable", "an object that is not a log record was skipped and counted"
                )
        return refused, unmappable

    def _encode_queued(self, items: list[Any]) -> tuple[list[bytes], dict[str, int]]:
        envelopes, ours, lost = self._encode(items)
        self._internal += ours  # none, unless a record was changed after export
        return envelopes, lost

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
