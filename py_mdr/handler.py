"""``MDRHandler``: a ``logging.Handler`` sending each record to MDR as an OCSF Event Log Activity.

The caller's thread only freezes what may change later (the formatted message, the exception
text) and appends the record to a bounded queue; a worker thread maps, serializes and sends in
batches (see :mod:`py_mdr.delivery`). Whatever MDR does (slow, down, refusing), ``logger.info``
neither blocks nor raises; what cannot be kept is counted and reported once on stderr at close.

Override :meth:`MDRHandler.map_log_record` to change or enrich the event. It runs on the worker
thread; anything it logs is kept out of MDR (as is everything the worker and its HTTP stack log).
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from py_mdr import __version__
from py_mdr.config import ConfigError, hec_config
from py_mdr.delivery import Delivery, DeliveryStats
from py_mdr.eventlog import default_product, error_text, host_name
from py_mdr.hec.envelope import encode_envelope
from py_mdr.hec.reports import SendReport, TransportStats
from py_mdr.hec.retry import RetryPolicy
from py_mdr.hec.transport import HECTransport
from py_mdr.internal import INTERNAL_ATTRIBUTE, install_record_marker, is_sending, sending
from py_mdr.logmap import PLAIN_RECORD_SIZE, capture, record_to_event
from py_mdr.ocsf_models._base import OCSFModel
from py_mdr.ocsf_models.events.system_activity.event_log_activity import EventLogActivity
from py_mdr.serialize import dumps, safe_str, to_dict

__all__ = ["HandlerStats", "MDRHandler"]

# Estimated memory of one queued record (measured with tracemalloc, rounded): the LogRecord with
# its standard attributes and what capture() adds; each further (`extra=`) attribute; the text of
# an exception (stored once) plus its captured summary. Arbitrary extra values are not sized.
_RECORD_BASE = 1024
_PER_EXTRA = 160
_PER_EXCEPTION = 256
_MAX_NAMES = 1024  # cached (source, sourcetype) pairs; more distinct logger names reset the cache


@dataclass(frozen=True)
class HandlerStats:
    """A snapshot of the handler's counters (since construction, or since fork in a child).

    ``dropped`` counts records lost by reason: ``queue_full``, ``oversize`` (larger than the
    whole queue), ``closed`` (logged after close), ``shutdown`` (still queued when close ran
    out of time), ``emit_error``, ``mapping_error`` (could not be turned into an event at all),
    and the transport's reasons (``deadline``, ``closed``, ``auth``, ``bad_event``, ...).
    ``mapping_errors`` counts records whose :meth:`MDRHandler.map_log_record` failed; they were
    sent with the default mapping instead, so they are not in ``dropped``.
    """

    queued: int = 0
    sent: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    retried: int = 0
    queue_depth: int = 0
    queue_bytes: int = 0
    queue_peak: int = 0
    queue_bytes_peak: int = 0
    in_flight: int = 0
    mapping_errors: int = 0
    transport: TransportStats = field(default_factory=TransportStats)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class MDRHandler(logging.Handler):
    """Sends log records to MDR (HEC) as OCSF Event Log Activity events, without ever blocking.

    ``host``/``token`` default to ``MDR_HOST``/``MDR_TOKEN``; ``ssl_verify`` (bool or CA bundle
    path), ``compress``, ``use_ack`` and ``timeout`` (one send, retries included) default to
    their ``MDR_*`` variables, then to verification on, gzip, no acks and 60 s. ``product`` (an
    OCSF ``Product`` or a dict) goes to ``metadata.product``; ``source_type`` names the
    sourcetype ``pymdr::<source_type>`` (default: the logger's name).

    Memory is bounded by ``max_queue_records`` and ``max_queue_bytes`` (estimated); overflow is
    dropped and counted, unless ``block`` is set: then the caller waits for room, at most one
    send's timeout. Batches go out when ``batch_size`` records or ``batch_bytes`` are waiting,
    or ``linger`` seconds after the first one arrived.
    ``close_timeout`` bounds ``close`` (and draining at interpreter exit). Every argument is a
    plain keyword, so ``logging.config.dictConfig`` can build it (``retry`` may be a dict of
    :class:`RetryPolicy` fields there). The constructor does no network I/O and starts no thread.
    """

    def __init__(
        self,
        host: str | None = None,
        token: str | None = None,
        ssl_verify: bool | str | None = None,
        product: Any = None,
        source_type: str | None = None,
        *,
        index: str | None = None,
        ca_bundle: str | None = None,
        client_cert: str | tuple[str, str] | None = None,
        level: int | str = logging.NOTSET,
        max_queue_records: int = 10_000,
        max_queue_bytes: int = 16 * 1024 * 1024,
        batch_size: int = 500,
        batch_bytes: int = 1024 * 1024,
        linger: float = 0.5,
        block: bool = False,
        close_timeout: float = 5.0,
        retry: RetryPolicy | Mapping[str, float] | None = None,
        timeout: float | None = None,
        compress: bool | None = None,
        use_ack: bool | None = None,
    ) -> None:
        for name, number in (
            ("max_queue_records", max_queue_records),
            ("max_queue_bytes", max_queue_bytes),
            ("batch_size", batch_size),
            ("batch_bytes", batch_bytes),
        ):
            if type(number) is not int or number < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {number!r}")
        for name, seconds in (("linger", linger), ("close_timeout", close_timeout)):
            if not (
                isinstance(seconds, (int, float))
                and not isinstance(seconds, bool)
                and math.isfinite(seconds)
                and seconds >= 0
            ):
                raise ConfigError(f"{name} must be a number of seconds >= 0, got {seconds!r}")
        if source_type is not None and not (isinstance(source_type, str) and source_type):
            raise ConfigError(f"source_type must be a non-empty string, got {source_type!r}")
        settings = hec_config(
            host,
            token,
            ssl_verify,
            index=index,
            ca_bundle=ca_bundle,
            client_cert=client_cert,
            timeout=timeout,
            compress=compress,
            use_ack=use_ack,
            retry=_retry_policy(retry),
        )
        product_fields = _product(product)
        # Registered with logging only once the settings are good: a failed constructor leaves
        # no half-built handler behind for logging.shutdown to trip over.
        super().__init__(level)
        install_record_marker()  # marks records made while py-mdr sends, on any thread
        self._config = settings
        self.product = product_fields
        self.source_type = source_type
        self.close_timeout = float(close_timeout)
        self._transport = HECTransport(self._config)
        self._host = host_name()
        self._index = self._config.index
        self._names: dict[str, tuple[str, str]] = {}
        self._custom_mapping = type(self).map_log_record is not MDRHandler.map_log_record
        self._mapping_errors = 0
        self._mapping_error_shown = False
        self._closed = False
        self._close_lock = threading.Lock()
        self._delivery: Delivery[logging.LogRecord] = Delivery(
            self._send_batch,
            max_records=max_queue_records,
            max_bytes=max_queue_bytes,
            batch_size=batch_size,
            batch_bytes=batch_bytes,
            linger=linger,
            block=block,
            block_timeout=self._config.retry.deadline,
            name="py-mdr-delivery",
            finish=self._await_acks if self._config.use_ack else None,
        )
        self._put = self._delivery.put
        self._delivery.exit_hook = self.close
        self._delivery.fork_hook = self._after_fork

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} {self._config.url} ({level})>"

    @property
    def url(self) -> str:
        """The HEC base URL records go to."""
        return self._config.url

    # ------------------------------------------------------------------ caller's thread
    def handle(self, record: logging.LogRecord) -> Any:
        """Filter, then emit, without the handler lock: the queue is thread-safe on its own."""
        rv = self.filter(record)
        if rv:
            if isinstance(rv, logging.LogRecord):  # Python 3.12+: a filter may swap the record
                record = rv
            self.emit(record)
        return rv

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record; never blocks (unless ``block``), never raises."""
        # Our worker's own records and its HTTP stack's never loop back: caught here on the
        # worker's thread, or by their mark when a QueueHandler/QueueListener relays them.
        if is_sending() or INTERNAL_ATTRIBUTE in record.__dict__:
            return
        try:
            if record.exc_info is not None:
                # capture() drops exc_info so the queue holds no frames; other handlers (and
                # those of parent loggers) still need it, so ours keeps a copy of the record.
                record = copy.copy(record)
            capture(record)
            data = record.__dict__
            size = _RECORD_BASE + len(data["message"])
            extra = len(data) - PLAIN_RECORD_SIZE
            if extra > 0:
                size += _PER_EXTRA * extra
            text = record.exc_text
            if text and type(text) is str:
                size += _PER_EXCEPTION + len(text)
            stack = record.stack_info
            if stack and type(stack) is str:
                size += len(stack)
            self._put(record, size)
        except Exception:
            self._delivery.count("emit_error")
            self.handleError(record)

    def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Wait until every record queued so far was handed to MDR (or given up on).

        Bounded by ``timeout`` seconds (default ``close_timeout``); True when all were done.
        """
        return self._delivery.flush(self.close_timeout if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued within ``timeout`` (default ``close_timeout``), then stop.

        Records that could not be sent are counted and reported in one line on stderr.
        Idempotent; also run at interpreter exit and by ``logging.shutdown``.
        """
        try:
            with self._close_lock:  # only the first close drains and reports
                first, self._closed = not self._closed, True
            if first:
                limit = self.close_timeout if timeout is None else max(0.0, float(timeout))
                final = self._delivery.close(limit, interrupt=self._close_transport)
                self._close_transport()
                self._report_losses(final)
        finally:
            super().close()

    @property
    def stats(self) -> HandlerStats:
        """Counters: queued, sent, dropped by reason, retries, queue depth, the transport's."""
        return _handler_stats(self._delivery.stats(), self._mapping_errors, self._transport.stats())

    # ------------------------------------------------------------------ mapping
    def map_log_record(self, record: logging.LogRecord) -> EventLogActivity:
        """The OCSF Event Log Activity for ``record``; override to change or enrich it.

        Runs on the worker thread. ``record.message`` already holds the formatted message and
        ``record.exc_text`` the exception text; call ``super().map_log_record(record)`` and
        modify the model it returns. If an override raises, the record is sent with the default
        mapping instead (and the error is counted and shown once). Building the model costs
        far more than the default path, which skips it when this method is not overridden.
        """
        return EventLogActivity(**self._event(record))

    def _event(self, record: logging.LogRecord) -> dict[str, Any]:
        return record_to_event(record, self.product, log_version=__version__)

    # ------------------------------------------------------------------ worker thread
    def _send_batch(self, records: list[logging.LogRecord], deadline: float | None) -> SendReport:
        envelopes: list[bytes] = []
        append = envelopes.append
        encode = self._encode_custom if self._custom_mapping else self._encode
        failed = 0
        for record in records:
            try:
                append(encode(record))
            except Exception as error:
                envelope = self._rescue(record, error)
                if envelope is None:
                    failed += 1
                else:
                    append(envelope)
        report = self._transport.send(envelopes, deadline) if envelopes else SendReport()
        if failed:
            report.drop("mapping_error", failed)
        return report

    def _encode(self, record: logging.LogRecord) -> bytes:
        """The fast path: the default mapping straight to a dict, then to JSON bytes."""
        event = self._event(record)
        return self._envelope(record, dumps(event), event["time"] / 1000)

    def _encode_custom(self, record: logging.LogRecord) -> bytes:
        """A subclass's :meth:`map_log_record`, serialized by the one serializer."""
        event = to_dict(self.map_log_record(record))
        if not event:
            raise ValueError("map_log_record returned an empty event")
        when = event.get("time")
        if isinstance(when, (int, float)) and not isinstance(when, bool) and math.isfinite(when):
            seconds = when / 1000
        else:
            seconds = record.created
        return self._envelope(record, dumps(event), seconds)

    def _envelope(self, record: logging.LogRecord, body: bytes, seconds: float) -> bytes:
        name = record.name
        names = self._names.get(name) if type(name) is str else None
        if names is None:
            names = self._source_names(name)
        return encode_envelope(
            body,
            time=seconds,
            host=self._host,
            source=names[0],
            sourcetype=names[1],
            index=self._index,
        )

    def _source_names(self, name: Any) -> tuple[str, str]:
        source = name if type(name) is str and name else (safe_str(name) or "root")
        pair = (source, f"pymdr::{self.source_type or source}")
        if type(name) is str:
            if len(self._names) >= _MAX_NAMES:
                self._names.clear()
            self._names[name] = pair
        return pair

    def _rescue(self, record: logging.LogRecord, error: Exception) -> bytes | None:
        """A failed mapping: show it once, then send the default mapping noting the error."""
        self._mapping_errors += 1
        if not self._mapping_error_shown:
            self._mapping_error_shown = True
            self.handleError(record)  # still inside the except block: shows the traceback
        try:
            event = self._event(record)
            unmapped = event.setdefault("unmapped", {})
            unmapped["mapping_error"] = error_text(error)
            return self._envelope(record, dumps(event), event["time"] / 1000)
        except Exception:
            return None

    def _close_transport(self) -> None:
        with sending():  # on the closing thread: what the HTTP stack logs now stays out of MDR
            self._transport.close()

    def _await_acks(self, deadline: float) -> None:
        self._transport.wait_for_acks(deadline)

    def _after_fork(self) -> None:
        # The transport renews its own session at fork; only this lock is the handler's.
        self._close_lock = threading.Lock()

    # ------------------------------------------------------------------ reporting
    def _report_losses(self, final: DeliveryStats) -> None:
        """One line on stderr when anything was lost (or left unconfirmed); never the token."""
        lost = final.dropped_total
        if not lost and not final.in_flight:
            return
        what = []
        if lost:
            reasons = ", ".join(f"{why}={count}" for why, count in sorted(final.dropped.items()))
            what.append(f"could not deliver {lost} log record(s) ({reasons})")
        if final.in_flight:
            what.append(f"{final.in_flight} still being sent at close (outcome unknown)")
        line = (
            f"py-mdr: {type(self).__name__} to {self._config.url}: {'; '.join(what)}; "
            f"sent {final.sent}\n"
        )
        stream = sys.stderr
        if stream is None:
            return
        try:
            stream.write(line)
            stream.flush()
        except Exception:  # stderr closed at interpreter exit: nothing left to tell
            pass


def _retry_policy(retry: RetryPolicy | Mapping[str, float] | None) -> RetryPolicy | None:
    if retry is None or isinstance(retry, RetryPolicy):
        return retry
    if isinstance(retry, Mapping):
        try:
            return RetryPolicy(**retry)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"retry: {error}") from None
    raise ConfigError(f"retry must be a RetryPolicy or a dict of its fields, got {retry!r}")


def _product(product: Any) -> dict[str, Any]:
    """``metadata.product`` once, completed with the documented defaults (name, vendor)."""
    if product is not None and not isinstance(product, (OCSFModel, Mapping)):
        raise ConfigError(
            "product must be an OCSF Product (py_mdr.ocsf_models.objects.product.Product) "
            f"or a dict of its attributes, got {type(product).__name__}"
        )
    return default_product(product)


def _handler_stats(
    queue: DeliveryStats, mapping_errors: int, transport: TransportStats
) -> HandlerStats:
    return HandlerStats(
        queued=queue.queued,
        sent=queue.sent,
        dropped=queue.dropped,
        retried=queue.retried,
        queue_depth=queue.queue_depth,
        queue_bytes=queue.queue_bytes,
        queue_peak=queue.queue_peak,
        queue_bytes_peak=queue.queue_bytes_peak,
        in_flight=queue.in_flight,
        mapping_errors=mapping_errors,
        transport=transport,
    )
