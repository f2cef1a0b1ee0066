"""What the OpenTelemetry exporters share: settings, the delivery, counters, flush and shutdown.

Both exporters are configured the same way (arguments, then ``MDR_*`` variables, then defaults)
and hand their batch to py-mdr's delivery (bounded queue, worker, optional disk spool), then
return at once: the span exporter as finished HEC envelopes, the log exporter as the records
themselves, mapped on the worker. Only the mapping differs: a subclass supplies ``_encode_one``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, cast

from py_mdr import internal
from py_mdr.config import (
    ConfigError,
    count,
    env_str,
    hec_config,
    resolve_export_timeout,
    resolve_redact,
    resolve_spool,
    resolve_vendor_name,
    seconds,
    text,
)
from py_mdr.delivery import DEFAULT_MAX_BYTES, DEFAULT_MAX_RECORDS, DeliveryStats
from py_mdr.delivery.door import open_delivery
from py_mdr.eventlog import error_text, program_name
from py_mdr.hec.config import HECConfig
from py_mdr.hec.envelope import envelope_head, wrap_event
from py_mdr.hec.reports import TransportStats
from py_mdr.hec.retry import RetryPolicy
from py_mdr.processing import Pipeline, Processor, Redaction, check_processors
from py_mdr.processing.contexts import capture_contexts
from py_mdr_otel._sdk_flush import chain_sdk_flush

__all__ = ["DEFAULT_EXPORT_TIMEOUT", "DROPPED", "INTERNAL", "Encoded", "ExporterStats", "Outlet"]

#: One item encoded: ``(event JSON, envelope time, host, source)``.
Encoded = tuple[bytes, float, str, str]
#: What ``_encode_one`` gives for an item py-mdr itself caused (skipped by design).
INTERNAL = object()
#: What ``_encode_one`` gives for an item a processor dropped.
DROPPED = object()

log = logging.getLogger("py_mdr_otel")

#: Seconds one send to MDR may take, retries included, when neither an argument nor
#: ``MDR_EXPORT_TIMEOUT`` / ``MDR_TIMEOUT`` says otherwise: as for ``MDRHandler``, since the
#: send happens on py-mdr's worker, never in the SDK's ``export()`` call.
DEFAULT_EXPORT_TIMEOUT = 60.0
#: Estimated memory of one queued envelope beyond its bytes.
_ENVELOPE_OVERHEAD = 64


@dataclass(frozen=True)
class ExporterStats(DeliveryStats):
    """The delivery's counters plus what ``export`` saw (since construction, or fork)."""

    exported: int = 0  # records handed to export()
    internal: int = 0  # of those, py-mdr's own (or its HTTP stack's) records, skipped by design
    failures: int = 0  # export() calls that returned FAILURE
    last_error: str | None = None
    redacted: dict[str, int] = field(default_factory=dict)  # secrets replaced, by kind
    processor_errors: int = 0  # processor calls that raised (the event went on unchanged)
    transport: TransportStats = field(default_factory=TransportStats)


def _require_endpoint(who: str, host: str | None, token: str | None) -> None:
    """One error naming every missing variable (auto-instrumentation can pass no arguments)."""
    missing = []  # a value of another type is not missing: resolve_url/_token name it
    for argument, value, variable in (("host", host, "MDR_HOST"), ("token", token, "MDR_TOKEN")):
        blank = value is None or (isinstance(value, str) and not value.strip())
        if blank and env_str(variable) is None:
            missing.append((argument, variable))
    if missing:
        variables = " and ".join(variable for _, variable in missing)
        arguments = ", ".join(f"{argument}=..." for argument, _ in missing)
        raise ConfigError(
            f"{who} is not configured: set the environment variable(s) {variables} "
            f"(or pass {arguments} to {who})"
        )


class Outlet:
    """The part of an exporter that is not its mapping (see the module docstring).

    A subclass also derives from the SDK's exporter class (after this one, so these methods
    win) and implements ``_encode_one``. The constructor never touches the network and starts no
    thread.
    """

    #: The delivery's worker thread name.
    _thread_name = "py-mdr-otel-delivery"
    #: What one exported item is, in the warning about one that could not be encoded.
    _item_noun = "a log record"

    def __init__(
        self,
        host: str | None = None,
        token: str | None = None,
        ssl_verify: bool | str | None = None,
        *,
        ca_bundle: str | None = None,
        client_cert: str | tuple[str, str] | None = None,
        client_key: str | None = None,
        index: str | None = None,
        name: str | None = None,
        vendor_name: str | None = None,
        timeout: float | None = None,
        compress: bool | None = None,
        use_ack: bool | None = None,
        retry: RetryPolicy | Mapping[str, float] | None = None,
        spool_dir: str | None = None,
        max_spool_bytes: int | None = None,
        max_queue_records: int = DEFAULT_MAX_RECORDS,
        max_queue_bytes: int = DEFAULT_MAX_BYTES,
        close_timeout: float = 5.0,
        processors: list[Processor] | tuple[Processor, ...] | None = None,
        redact: bool | Redaction | dict[str, Any] | None = None,
    ) -> None:
        """Check every setting (arguments, then ``MDR_*`` variables) and open the queue.

        The arguments are described in the class docstring. No network I/O and no thread yet;
        raises :class:`~py_mdr.errors.ConfigError` naming what is wrong and how to fix it.
        """
        who = type(self).__name__
        _require_endpoint(who, host, token)
        count("max_queue_records", max_queue_records)
        count("max_queue_bytes", max_queue_bytes)
        self._timeout = resolve_export_timeout(timeout, DEFAULT_EXPORT_TIMEOUT)
        self._config = hec_config(
            host,
            token,
            ssl_verify,
            index=index,
            ca_bundle=ca_bundle,
            client_cert=client_cert,
            client_key=client_key,
            timeout=self._timeout,
            compress=compress,
            use_ack=use_ack,
            retry=retry,
        )
        fixed_name = text("name", name) if name is not None else env_str("MDR_NAME")
        self._fixed_sourcetype = f"pymdr::{fixed_name}" if fixed_name else None
        self._vendor_name = resolve_vendor_name(vendor_name)
        self._close_timeout = seconds("close_timeout", close_timeout, zero_ok=True)
        self._pipeline = Pipeline(
            check_processors(processors),
            Redaction.of(resolve_redact(redact)),
            secrets=(self._config.token,),
        )
        if self._pipeline.processors:
            capture_contexts()  # so processors see the logging call's context variables
        spool_path, spool_bound = resolve_spool(spool_dir, max_spool_bytes)
        self._delivery, self._transport = open_delivery(
            self._config,
            self._encode_queued,
            who=who,
            spool_dir=spool_path,
            max_spool_bytes=spool_bound,
            max_records=max_queue_records,
            max_bytes=max_queue_bytes,
            name=self._thread_name,
        )
        self._index = self._config.index
        self._sourcetypes: tuple[object, str] = (object(), "")
        self._exported = 0
        self._internal = 0
        self._failures = 0
        self._skipped: dict[str, int] = {}  # items MDR does not take, by reason (spans: kind)
        self._last_error: str | None = None
        self._warned: set[str] = set()
        self._flush_chained = False
        internal.install_record_marker()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self._config.url!r}, timeout={self._timeout:g})"

    # ------------------------------------------------------------ public
    @property
    def config(self) -> HECConfig:
        """The resolved transport settings (the token stays out of its ``repr``)."""
        return self._config

    @property
    def timeout(self) -> float:
        """Seconds one send to MDR may take, retries included."""
        return self._timeout

    @property
    def stats(self) -> ExporterStats:
        """Counters: exported, internal (skipped), queued, sent, dropped by reason, spool.

        A property, as on every py-mdr door; ``exporter.stats()`` works too (a snapshot called
        returns itself, :class:`py_mdr.stats.Snapshot`).
        """
        return ExporterStats(**self._stats_fields())

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait (at most ``timeout_millis``) until everything exported so far was delivered."""
        return self._delivery.flush(max(timeout_millis, 0) / 1000)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Send what is queued within ``close_timeout`` (or ``timeout_millis``, if shorter).

        What could not be sent is counted and told on stderr; with a spool, what is left there
        waits for the next process. Idempotent.
        """
        limit = self._close_timeout
        if timeout_millis is not None:
            limit = min(limit, max(timeout_millis, 0) / 1000)
        self._delivery.close(limit)

    # ---------------------------------------------------------- for subclasses
    def _encode_one(self, item: Any) -> Encoded | str | object:
        """One item's ``(event JSON, envelope time, host, source)``; or :data:`INTERNAL` (py-mdr's
        own), :data:`DROPPED` (by a processor), or the name of a kind MDR does not take."""
        raise NotImplementedError

    def _encode_queued(self, items: list[Any]) -> tuple[list[bytes], dict[str, int]]:
        """The worker's step: what :meth:`_queue` queued, as envelopes, and what was lost."""
        return items, {}  # finished envelopes: nothing left to do

    def _encode(self, batch: Sequence[Any]) -> tuple[list[bytes], int, dict[str, int]]:
        """Envelopes for the batch; also how many items were py-mdr's own, and what was lost
        (``unmappable``, and ``processor`` for the ones a processor dropped).

        Kinds MDR does not take are counted in ``_skipped``.
        """
        envelopes: list[bytes] = []
        internal = unmappable = dropped = 0
        skipped = self._skipped
        index = self._index
        for item in batch:
            try:
                encoded = self._encode_one(item)
                if encoded is INTERNAL:
                    internal += 1
                elif encoded is DROPPED:
                    dropped += 1
                elif isinstance(encoded, str):
                    skipped[encoded] = skipped.get(encoded, 0) + 1
                else:
                    event, seconds, host, source = cast(Encoded, encoded)
                    sourcetype = self._sourcetype(item.resource)
                    head = envelope_head(host, source, sourcetype, index)
                    envelopes.append(wrap_event(event, seconds, head))
            except Exception:
                unmappable += 1
                self._warn_once(
                    "unmappable",
                    f"{self._item_noun} could not be encoded for MDR; it was skipped and counted",
                    exc_info=True,
                )
        lost = {}
        if unmappable:
            lost["unmappable"] = unmappable
        if dropped:
            lost["processor"] = dropped
        return envelopes, internal, lost

    def _stats_fields(self) -> dict[str, Any]:
        queue = self._delivery.stats()
        return {
            **{f.name: getattr(queue, f.name) for f in fields(DeliveryStats)},
            "exported": self._exported,
            "internal": self._internal,
            "failures": self._failures,
            "last_error": self._last_error,
            "redacted": self._pipeline.redactor.counts(),
            "processor_errors": self._pipeline.errors,
            "transport": self._transport.stats(),
        }

    def _take(self, batch: Sequence[Any]) -> bool:
        """Map and queue ``batch``; False when some items could not even be queued. Never raises.

        True means every item was accepted for delivery (queued, or spooled), not that MDR has
        it yet: delivery goes on in the background, and what it cannot deliver is counted in
        :meth:`stats` and told on stderr.
        """
        try:
            if not self._flush_chained:  # the first export: find the SDK's processor
                self._flush_chained = True
                chain_sdk_flush(self, sys._getframe(1))
            return self._queue(batch)
        except Exception as error:  # the SDK must never see an exception from us
            count = _length(batch)
            self._delivery.count("error", count)
            self._exported += count
            self._failures += 1
            self._last_error = error_text(error)
            with internal.sending():
                self._warn_once("error", "exporting to MDR failed unexpectedly", exc_info=True)
            return False

    def _queue(self, batch: Sequence[Any]) -> bool:
        count = len(batch)
        if not count:
            return True
        self._exported += count
        if internal.is_sending():
            # Re-entered from our own send (a simple processor on the sending thread): whatever
            # was made here is ours by definition.
            self._internal += count
            return True
        refused, unmappable = self._hand_over(batch)
        if refused or unmappable:
            self._failures += 1
            return False
        return True

    def _hand_over(self, batch: Sequence[Any]) -> tuple[int, int]:
        """Queue ``batch`` for the worker; (items refused by the queue, items unmappable).

        Here: mapped and encoded on the calling thread, the envelopes queued. A subclass may
        queue the items themselves and map them in :meth:`_encode_queued` instead.
        """
        with internal.sending():
            envelopes, skipped, lost = self._encode(batch)
        self._internal += skipped
        for reason, number in lost.items():
            self._delivery.count(reason, number)
        put = self._delivery.put
        refused = 0
        for envelope in envelopes:
            if not put(envelope, len(envelope) + _ENVELOPE_OVERHEAD):
                refused += 1
        return refused, lost.get("unmappable", 0)

    def _sourcetype(self, resource: Any) -> str:
        """``pymdr::<name>``: the configured name, else the resource's ``service.name``."""
        if self._fixed_sourcetype is not None:
            return self._fixed_sourcetype
        cached, sourcetype = self._sourcetypes
        if cached is resource:
            return sourcetype
        attributes = getattr(resource, "attributes", None) or {}
        service = attributes.get("service.name")
        name = service.strip() if isinstance(service, str) else ""
        sourcetype = f"pymdr::{name or program_name()}"
        self._sourcetypes = (resource, sourcetype)
        return sourcetype

    def _warn_once(self, key: str, message: str, *, exc_info: bool = False) -> None:
        """Call inside ``sending()``, so the line is marked as ours and never exported."""
        level = logging.DEBUG if key in self._warned else logging.WARNING
        self._warned.add(key)
        log.log(level, message, exc_info=exc_info)


def _length(batch: Any) -> int:
    try:
        return len(batch)
    except Exception:
        return 0
