"""``MDRHandler``: a ``logging.Handler`` sending each record to MDR as an OCSF Event Log Activity.

The caller's thread only freezes what may change later (the formatted message, the thread,
the time, the exception text) and appends it with the record's attributes to a bounded queue,
without a lock in the usual case; a worker thread maps, serializes and sends in batches (see
:mod:`py_mdr.delivery`). Whatever MDR does (slow, down, refusing), ``logger.info``
neither blocks nor raises; what cannot be kept is counted and reported once on stderr at close.

Override :meth:`MDRHandler.map_log_record` to change or enrich the event. It runs on the worker
thread; anything it logs is kept out of MDR (as is everything the worker and its HTTP stack log).
"""

from __future__ import annotations

import contextvars
import copy
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from py_mdr import __version__
from py_mdr.checks import log_level
from py_mdr.compat import legacy_source, with_source_format_json
from py_mdr.config import (
    ConfigError,
    count,
    flag,
    hec_config,
    mapping_keys,
    resolve_redact,
    resolve_spool,
    seconds,
    text,
)
from py_mdr.delivery import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_SIZE,
    DEFAULT_LINGER,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_RECORDS,
    DeliveryStats,
    estimate_size,
)
from py_mdr.delivery.door import open_delivery
from py_mdr.eventlog import PRODUCT_KEYS, default_product, error_text, host_name
from py_mdr.hec.envelope import envelope_head, wrap_event
from py_mdr.hec.reports import TransportStats
from py_mdr.hec.retry import RetryPolicy
from py_mdr.internal import INTERNAL_ATTRIBUTE, install_record_marker
from py_mdr.internal import thread_state as _sending
from py_mdr.logmap import (
    LogItem,
    Pending,
    capture,
    compact,
    complete,
    intake,
    item_to_event,
)
from py_mdr.logwire import LogWire
from py_mdr.plain import dumps, is_model, safe_str
from py_mdr.processing import Folder, Pipeline, Processor, Redaction, Summary, fold_key
from py_mdr.processing import check_processors as _check_processors

if TYPE_CHECKING:  # the models load when a subclass or a caller asks for one, not on import
    from py_mdr.ocsf_models.events.system_activity.event_log_activity import EventLogActivity

__all__ = ["HandlerStats", "MDRHandler"]

# Estimated memory of one queued item: a LogItem with its captured tuple and numbers (its
# message, exception text, stack and `extra=` values are added by length); a whole LogRecord
# when a subclass overrides map_log_record and so needs the record itself.
_ITEM_BASE = 512
_RECORD_BASE = 1536
_EMPTY_DICT = estimate_size({})  # the item's base counts the extras dict itself
_MAX_NAMES = 1024  # cached envelope heads; more distinct logger names reset the cache


@dataclass(frozen=True)
class HandlerStats(DeliveryStats):
    """The delivery's counters plus the handler's own (since construction, or fork in a child).

    ``dropped`` counts records lost by reason: ``queue_full``, ``oversize`` (larger than the
    whole queue), ``closed`` (logged after close), ``shutdown`` (still queued when close ran
    out of time), ``emit_error``, ``mapping_error`` (could not be turned into an event at all),
    ``spool_full``, ``spool_damaged``, and the transport's reasons (``deadline``,
    ``unreachable``, ``auth``, ``bad_event``, ``not_hec``, ...).
    ``mapping_errors`` counts records whose :meth:`MDRHandler.map_log_record` failed; they were
    sent with the default mapping instead, so they are not in ``dropped``.
    """

    mapping_errors: int = 0
    folded: int = 0  # repeats counted into a summary event instead of sent one by one
    redacted: dict[str, int] = field(default_factory=dict)  # secrets replaced, by kind
    processor_errors: int = 0  # processor calls that raised (the event went on unchanged)
    transport: TransportStats = field(default_factory=TransportStats)


class MDRHandler(logging.Handler):
    """Sends log records to MDR (HEC) as OCSF Event Log Activity events, without ever blocking.

    The logging call only freezes the record into a small item and queues it; a worker maps,
    serializes and sends in batches. Arguments (all plain keywords, so
    ``logging.config.dictConfig`` can build it):

    - ``host`` / ``token``: the HEC endpoint and token (``MDR_HOST`` / ``MDR_TOKEN``).
    - ``ssl_verify``: verify the server (default true, ``MDR_SSL_VERIFY``), or a CA bundle path;
      ``ca_bundle`` / ``client_cert`` / ``client_key`` likewise (``MDR_CA_BUNDLE``,
      ``MDR_CLIENT_CERT``, ``MDR_CLIENT_KEY``).
    - ``product``: an OCSF ``Product`` or a dict of its attributes for ``metadata.product``
      (an unknown key is refused); without a name, ``MDR_PRODUCT_NAME`` or the program's name.
    - ``source_type``: the sourcetype is ``pymdr::<source_type>`` (default: the logger's name).
    - ``index``: written on every envelope (``MDR_INDEX``).
    - ``spool_dir``: a directory for the disk spool (``MDR_SPOOL_DIR``; default none): records
      are written there before they are sent, so an outage costs disk and a killed process
      loses almost nothing; ``max_spool_bytes`` bounds it (``MDR_MAX_SPOOL_BYTES``, 256 MiB).
    - ``max_queue_records`` (100,000) / ``max_queue_bytes`` (32 MiB): the memory bound;
      overflow is dropped and counted, unless ``block`` is set (then the caller waits for room,
      at most one send's timeout).
    - ``batch_size`` (800) / ``batch_bytes`` (1 MiB) / ``linger`` (0.5 s): when a batch goes.
    - ``close_timeout`` (5 s): bounds ``close`` and draining at interpreter exit.
    - ``processors``: callables run on the worker on each event dict (after mapping, before
      sending), inside the logging call's ``contextvars`` context; each returns the event, a
      changed one, or None to drop it.
    - ``redact``: secrets in what the application logged are replaced (default on,
      ``MDR_REDACT``); False, or a :class:`~py_mdr.processing.Redaction` (or a dict of its
      fields) to change the rules.
    - ``fold`` (on): exact repeats beyond the first few in a second become one event with a
      count.
    - ``dataset_name`` / ``namespace``: py-mdr 0.7's routing; every event then goes out with
      ``source`` and a top-level ``source_format`` of ``pymdr::<dataset_name>.<namespace>``.
    - ``retry``: a :class:`RetryPolicy` or a dict of its fields; ``timeout``: seconds one send
      may take, retries included (``MDR_TIMEOUT``, 60); ``compress`` (gzip, ``MDR_COMPRESSION``);
      ``use_ack`` (``MDR_USE_ACK``, off).

    The constructor does no network I/O and starts no thread; an unusable ``spool_dir`` raises
    :class:`~py_mdr.config.ConfigError` naming it.
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
        client_key: str | None = None,
        level: int | str = logging.NOTSET,
        spool_dir: str | None = None,
        max_spool_bytes: int | None = None,
        max_queue_records: int = DEFAULT_MAX_RECORDS,
        max_queue_bytes: int = DEFAULT_MAX_BYTES,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        linger: float = DEFAULT_LINGER,
        block: bool = False,
        close_timeout: float = 5.0,
        retry: RetryPolicy | Mapping[str, float] | None = None,
        timeout: float | None = None,
        compress: bool | None = None,
        use_ack: bool | None = None,
        processors: list[Processor] | tuple[Processor, ...] | None = None,
        redact: bool | Redaction | Mapping[str, Any] | None = None,
        fold: bool = True,
        dataset_name: str | None = None,
        namespace: str | None = None,
    ) -> None:
        """Check every setting and open the queue; no network I/O, no thread yet.

        The arguments are described in the class docstring. Raises
        :class:`~py_mdr.errors.ConfigError` naming the argument (or ``MDR_*`` variable) that is
        wrong and what it accepts; the token never appears in it.
        """
        for name, number in (
            ("max_queue_records", max_queue_records),
            ("max_queue_bytes", max_queue_bytes),
            ("batch_size", batch_size),
            ("batch_bytes", batch_bytes),
        ):
            count(name, number)
        seconds("linger", linger, zero_ok=True)
        close_timeout = seconds("close_timeout", close_timeout, zero_ok=True)
        level = log_level("level", level)
        flag("block", block)
        flag("fold", fold)
        if source_type is not None:
            text("source_type", source_type)
        settings = hec_config(
            host,
            token,
            ssl_verify,
            index=index,
            ca_bundle=ca_bundle,
            client_cert=client_cert,
            client_key=client_key,
            timeout=timeout,
            compress=compress,
            use_ack=use_ack,
            retry=retry,
        )
        product_fields = _product(product)
        legacy = None
        if dataset_name is not None or namespace is not None:
            legacy = legacy_source(dataset_name, namespace)
        pipeline = Pipeline(
            _check_processors(processors),
            Redaction.of(resolve_redact(redact)),
            secrets=(settings.token,),
        )
        spool_path, spool_bound = resolve_spool(spool_dir, max_spool_bytes)
        self._custom_mapping = type(self).map_log_record is not MDRHandler.map_log_record
        delivery, transport = open_delivery(
            settings,
            self._encode_batch,
            who=type(self).__name__,
            spool_dir=spool_path,
            max_spool_bytes=spool_bound,
            max_records=max_queue_records,
            max_bytes=max_queue_bytes,
            batch_size=batch_size,
            batch_bytes=batch_bytes,
            linger=linger,
            block=block,
            name="py-mdr-delivery",
        )
        # Registered with logging only once the settings are good: a failed constructor leaves
        # no half-built handler behind for logging.shutdown to trip over.
        super().__init__(level)
        install_record_marker()  # marks records made while py-mdr sends, on any thread
        self._config = settings
        self.product = product_fields
        self.source_type = source_type
        self.close_timeout = float(close_timeout)
        self._transport = transport
        self._host = host_name()
        self._index = self._config.index
        self._heads: dict[str, bytes] = {}  # per logger name, see _head
        self._mapping_errors = 0
        self._mapping_error_shown = False
        self._closed = False
        self._close_lock = threading.Lock()
        self._legacy_source = legacy
        self._pipeline = pipeline
        self._capture_context = bool(pipeline.processors)
        # Without processors of the caller's, events need no dict: the wire encoder writes them.
        redactor = pipeline.redactor if pipeline.redactor.enabled else None
        self._wire = None if pipeline.processors else LogWire(product_fields, __version__, redactor)
        self._folder: Folder[Any] | None = Folder() if fold else None
        self._delivery = delivery
        self._put = delivery.put
        self._append = delivery.append
        delivery.exit_hook = self.close
        delivery.fork_hook = self._after_fork
        delivery.tick = self._tick

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
        if not self.filters:
            self.emit(record)
            return True
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
        if _sending.active or INTERNAL_ATTRIBUTE in record.__dict__:  # is_sending(), inlined
            return
        try:
            if self._custom_mapping:
                self._put_record(record)
                return
            context = contextvars.copy_context() if self._capture_context else None
            if self.formatter is None:
                pending = intake(record, context)
                if pending is not None:  # the usual record: queued as it is, frozen in part
                    folder = self._folder
                    if folder is None or folder.new_message(pending[1]):
                        self._append(pending, pending[6])
                    else:  # a repeat, maybe: look closer
                        item = complete(pending)
                        if self._unfolded(folder, item):
                            self._put_item(item)
                    return
            item = compact(record, context)
            if self.formatter is not None:
                item = item._replace(message=self._formatted(record, item.message))
            folder = self._folder
            if folder is None or folder.new_message(item.message) or self._unfolded(folder, item):
                self._put_item(item)
        except Exception:
            self._delivery.count("emit_error")
            self.handleError(record)

    def _unfolded(self, folder: Folder[Any], item: LogItem) -> bool:
        """For a message ``folder`` saw lately: False when it counts ``item`` as a repeat
        instead of queueing it (a summary of the run goes out once it ends)."""
        key = fold_key(item.name, item.levelno, item.message, item.exc_text, item.extra)
        if key is None:
            return True
        created = item.created
        when = created if type(created) is float else time.time()
        send, summary = folder.admit(key, when, item, item.message)
        if summary is not None:
            self._put_summary(summary)
        return send

    def _put_item(self, item: LogItem) -> None:
        """Queue a frozen item, sized for the queue's byte bound."""
        size = _ITEM_BASE + len(item.message)
        text = item.exc_text
        if text:
            size += 2 * len(text)  # the text, and the exception summary that repeats it
        stack = item.stack_info
        if stack and type(stack) is str:
            size += len(stack)
        extra = item.extra
        if extra:
            size += estimate_size(extra) - _EMPTY_DICT
        self._put(item, size)

    def _put_record(self, record: logging.LogRecord) -> None:
        """A subclass's map_log_record needs the record itself: queue a frozen copy."""
        if record.exc_info is not None or self.formatter is not None:
            # capture() drops exc_info so the queue holds no frames, and a formatter changes
            # the message; other handlers (and those of parent loggers) still need the record
            # as it was, so ours keeps a copy.
            record = copy.copy(record)
        capture(record)
        if self.formatter is not None:
            record.message = self._formatted(record, record.message)
        data = record.__dict__
        size = _RECORD_BASE + len(data["message"]) + estimate_size(data)
        text = record.exc_text
        if text and type(text) is str:
            size += len(text)
        context = contextvars.copy_context() if self._capture_context else None
        self._put((record, context), size)

    def _formatted(self, record: logging.LogRecord, message: str) -> str:
        """The text of ``setFormatter``'s formatter: the event's ``message`` when one is set.

        A formatter that fails leaves the plain message, so the record is still sent.
        """
        try:
            text = self.format(record)
        except Exception:
            return message
        return text if type(text) is str else safe_str(text)

    def _put_summary(self, summary: Summary[Any]) -> None:
        """One event for a folded run: the run's first folded record, with its count."""
        item: LogItem = summary.sample._replace(repeat=(summary.count, summary.start, summary.end))
        self._put(item, _ITEM_BASE + len(item.message))

    def _send_folded(self) -> None:
        if self._folder is not None:
            for summary in self._folder.drain():
                self._put_summary(summary)

    def _tick(self) -> None:
        """On the worker, now and then: send the summaries of runs whose window ended."""
        folder = self._folder
        if folder is not None:
            for summary in folder.expired(time.time()):
                self._put_summary(summary)

    def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Wait until every record queued so far was handed to MDR (or given up on).

        Bounded by ``timeout`` seconds (default ``close_timeout``); True when all were done.
        With a spool, files left by processes that are gone are picked up now too. Repeats
        being folded go out now, as one event per run so far.
        """
        self._send_folded()
        return self._delivery.flush(self.close_timeout if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued within ``timeout`` (default ``close_timeout``), then stop.

        What could not be sent is counted and told in one line on stderr (with a spool, what
        is left there is named too: the next process using the directory sends it).
        Idempotent; also run at interpreter exit and by ``logging.shutdown``.
        """
        try:
            with self._close_lock:  # only the first close drains and reports
                first, self._closed = not self._closed, True
            if first:
                limit = self.close_timeout if timeout is None else max(0.0, float(timeout))
                self._send_folded()
                self._delivery.close(limit)
            else:
                self._delivery.report_late()
        finally:
            super().close()

    @property
    def stats(self) -> HandlerStats:
        """Counters: queued, sent, dropped by reason, spool, queue depth, the transport's.

        ``handler.stats()`` reads the same (a snapshot called returns itself, as on every door:
        :class:`py_mdr.stats.Snapshot`).
        """
        queue = self._delivery.stats()
        return HandlerStats(
            **{f.name: getattr(queue, f.name) for f in fields(DeliveryStats)},
            mapping_errors=self._mapping_errors,
            folded=self._folder.folded if self._folder is not None else 0,
            redacted=self._pipeline.redactor.counts(),
            processor_errors=self._pipeline.errors,
            transport=self._transport.stats(),
        )

    # ------------------------------------------------------------------ mapping
    def map_log_record(self, record: logging.LogRecord) -> EventLogActivity:
        """The OCSF Event Log Activity for ``record``; override to change or enrich it.

        Runs on the worker thread. ``record.message`` already holds the formatted message and
        ``record.exc_text`` the exception text; call ``super().map_log_record(record)`` and
        modify the model it returns. If an override raises, the record is sent with the default
        mapping instead (and the error is counted and shown once). Building the model costs
        far more than the default path, which skips it when this method is not overridden.
        """
        from py_mdr.ocsf_models.events.system_activity.event_log_activity import (
            EventLogActivity,
        )

        return EventLogActivity(**self._event(record))

    def _event(self, record: logging.LogRecord | LogItem | Pending) -> dict[str, Any]:
        if isinstance(record, LogItem):
            item = record
        elif isinstance(record, tuple):
            item = complete(record)
        else:
            item = compact(record)
        return item_to_event(item, self.product, log_version=__version__)

    # ------------------------------------------------------------------ worker thread
    def _encode_batch(self, items: list[Any]) -> tuple[list[bytes], dict[str, int]]:
        envelopes: list[bytes] = []
        append = envelopes.append
        encode = self._encode_custom if self._custom_mapping else self._encode
        failed = dropped = 0
        for item in items:
            try:
                envelope = encode(item)
            except Exception as error:
                envelope = self._rescue(item, error)
                if envelope is None:
                    failed += 1
                    continue
            if envelope is None:
                dropped += 1  # a processor dropped it
            else:
                append(envelope)
        lost = {}
        if failed:
            lost["mapping_error"] = failed
        if dropped:
            lost["processor"] = dropped
        return envelopes, lost

    def _encode(self, queued: LogItem | Pending) -> bytes | None:
        """The default mapping: straight to JSON bytes, else (processors, an unusual item) by
        way of the event dict; the two give the same event."""
        # intake()'s pending tuple: the rest of the record is read now
        item = queued if isinstance(queued, LogItem) else complete(queued)
        wire = self._wire
        if wire is not None:
            body = wire.encode(item, self.product)
            if body is not None:
                if self._legacy_source is not None:
                    body = with_source_format_json(body, self._legacy_source)
                return self._envelope(item.name, body, int(item.created * 1000) / 1000)
        event = item_to_event(item, self.product, log_version=__version__)
        pipeline = self._pipeline
        if pipeline.active:
            processed = pipeline(event, item.context)
            if processed is None:
                return None
            event = processed
        body = dumps(event)
        if self._legacy_source is not None:
            body = with_source_format_json(body, self._legacy_source)
        return self._envelope(item.name, body, _seconds(event, item.created))

    def _encode_custom(self, queued: tuple[logging.LogRecord, Any]) -> bytes | None:
        """A subclass's :meth:`map_log_record`, serialized by the one serializer."""
        record, context = queued
        from py_mdr.serialize import to_dict

        event: dict[str, Any] | None = to_dict(self.map_log_record(record))
        if not event:
            raise ValueError("map_log_record returned an empty event")
        pipeline = self._pipeline
        if pipeline.active:
            event = pipeline(event, context)
            if event is None:
                return None
        body = dumps(event)
        if self._legacy_source is not None:
            body = with_source_format_json(body, self._legacy_source)
        return self._envelope(record.name, body, _seconds(event, record.created))

    def _envelope(self, name: Any, body: bytes, seconds: float) -> bytes:
        """The HEC envelope around an encoded event, as
        :func:`~py_mdr.hec.envelope.encode_envelope` writes it."""
        head = self._heads.get(name) if type(name) is str else None
        return wrap_event(body, seconds, head or self._head(name))

    def _head(self, name: Any) -> bytes:
        """``,"host":..,"source":..,"sourcetype":..[,"index":..],"event":`` for a logger name:
        the envelope's metadata depends on nothing else, so it is encoded once per name."""
        source = name if type(name) is str and name else (safe_str(name) or "root")
        head = envelope_head(
            self._host,
            self._legacy_source or source,
            f"pymdr::{self.source_type or source}",
            self._index,
        )
        if type(name) is str:
            if len(self._heads) >= _MAX_NAMES:
                self._heads.clear()
            self._heads[name] = head
        return head

    def _rescue(self, item: Any, error: Exception) -> bytes | None:
        """A failed mapping: show it once, then send the default mapping noting the error."""
        self._mapping_errors += 1
        source = item
        if isinstance(item, LogItem) or not isinstance(item, tuple):
            record = item
        elif self._custom_mapping:  # (record, context)
            record = source = item[0]
        else:  # intake()'s pending tuple: the record's dict
            record = logging.makeLogRecord(item[0])
        if not self._mapping_error_shown and isinstance(record, logging.LogRecord):
            self._mapping_error_shown = True
            self.handleError(record)  # still inside the except block: shows the traceback
        try:
            event = self._event(source)
            unmapped = event.setdefault("unmapped", {})
            unmapped["mapping_error"] = error_text(error)
            self._pipeline.redactor.event(event)
            body = dumps(event)
            if self._legacy_source is not None:
                body = with_source_format_json(body, self._legacy_source)
            return self._envelope(record.name, body, event["time"] / 1000)
        except Exception:
            return None

    def _after_fork(self) -> None:
        # The transport renews its own session at fork; the lock and folding are the handler's.
        self._close_lock = threading.Lock()
        if self._folder is not None:
            self._folder.after_fork_in_child()


def _product(product: Any) -> dict[str, Any]:
    """``metadata.product`` once, completed with the documented defaults (name, vendor)."""
    if product is not None and not (is_model(product) or isinstance(product, Mapping)):
        raise ConfigError(
            "product must be an OCSF Product (py_mdr.ocsf_models.objects.product.Product) "
            f"or a dict of its attributes, got {type(product).__name__}"
        )
    if isinstance(product, Mapping):
        mapping_keys("product", product, PRODUCT_KEYS)
    return default_product(product)


def _seconds(event: Mapping[str, Any], created: Any) -> float:
    """The envelope time: the event's ``time`` (ms), else when the record was made."""
    when = event.get("time")
    if isinstance(when, (int, float)) and not isinstance(when, bool) and math.isfinite(when):
        return when / 1000
    return created if type(created) is float else time.time()
