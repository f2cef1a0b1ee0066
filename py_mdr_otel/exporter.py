"""``MDRExporter``: OpenTelemetry log records to MDR as OCSF Event Log Activity over HEC.

The SDK's ``BatchLogRecordProcessor`` already is the queue, so the exporter holds nothing: each
``export`` maps, serializes and sends its batch, and returns within its own deadline (the
processor neither enforces a timeout nor looks at the result, so retries and the deadline are
ours). Everything an export does runs inside ``py_mdr.internal.sending()``: log records created
meanwhile (ours, or the HTTP stack's) carry the ``py_mdr_internal`` mark, and the next export
drops them instead of sending them again, which is what keeps a root logger captured at DEBUG
from feeding on itself.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from py_mdr import internal
from py_mdr.config import ConfigError, env_float, env_str, hec_config, resolve_timeout
from py_mdr.eventlog import error_text, program_name
from py_mdr.hec.config import HECConfig
from py_mdr.hec.envelope import encode_envelope
from py_mdr.hec.reports import SendReport
from py_mdr.hec.retry import RetryPolicy
from py_mdr.hec.transport import HECTransport
from py_mdr_otel.mapping import encode_record

__all__ = ["DEFAULT_EXPORT_TIMEOUT", "ExporterStats", "MDRExporter"]

log = logging.getLogger("py_mdr_otel")

#: Seconds one export may take, retries included, when neither an argument nor
#: ``MDR_EXPORT_TIMEOUT`` / ``MDR_TIMEOUT`` says otherwise (the OTLP exporter's default too).
DEFAULT_EXPORT_TIMEOUT = 10.0

_SUCCESS = LogRecordExportResult.SUCCESS
_FAILURE = LogRecordExportResult.FAILURE

_live: weakref.WeakSet[MDRExporter] = weakref.WeakSet()


def _renew_after_fork() -> None:
    for exporter in list(_live):
        exporter._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_after_fork)


@dataclass(frozen=True)
class ExporterStats:
    """A snapshot of what the exporter did since it was made."""

    exported: int = 0  # records handed to export()
    internal: int = 0  # of those, py-mdr's own (or its HTTP stack's) records, skipped by design
    sent: int = 0  # records MDR accepted
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> records not delivered
    retried: int = 0  # retry attempts the transport made
    failures: int = 0  # export() calls that returned FAILURE
    last_error: str | None = None

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class _Counters:
    """Thread-safe counters behind :class:`ExporterStats` (exports may run on several threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.exported = 0
        self.internal = 0
        self.sent = 0
        self.dropped: dict[str, int] = {}
        self.retried = 0
        self.failures = 0
        self.last_error: str | None = None

    def add(
        self,
        *,
        exported: int = 0,
        internal: int = 0,
        sent: int = 0,
        dropped: Mapping[str, int] | None = None,
        retried: int = 0,
        failed: bool = False,
        error: str | None = None,
    ) -> None:
        with self.lock:
            self.exported += exported
            self.internal += internal
            self.sent += sent
            self.retried += retried
            if dropped:
                for reason, count in dropped.items():
                    if count > 0:
                        self.dropped[reason] = self.dropped.get(reason, 0) + count
            if failed:
                self.failures += 1
            if error is not None:
                self.last_error = error

    def snapshot(self) -> ExporterStats:
        with self.lock:
            return ExporterStats(
                self.exported,
                self.internal,
                self.sent,
                dict(self.dropped),
                self.retried,
                self.failures,
                self.last_error,
            )


def _export_timeout(timeout: float | None) -> float:
    """Argument, else ``MDR_EXPORT_TIMEOUT``, else ``MDR_TIMEOUT``, else the default."""
    if timeout is not None:
        return cast(float, resolve_timeout(timeout))  # validates; None only for None
    value = env_float("MDR_EXPORT_TIMEOUT") or env_float("MDR_TIMEOUT")
    return value if value is not None else DEFAULT_EXPORT_TIMEOUT


def _require_endpoint(host: str | None, token: str | None) -> None:
    """One error naming every missing variable (auto-instrumentation can pass no arguments)."""
    missing = []
    if not (isinstance(host, str) and host.strip()) and env_str("MDR_HOST") is None:
        missing.append(("host", "MDR_HOST"))
    if not (isinstance(token, str) and token.strip()) and env_str("MDR_TOKEN") is None:
        missing.append(("token", "MDR_TOKEN"))
    if missing:
        variables = " and ".join(variable for _, variable in missing)
        arguments = ", ".join(f"{argument}=..." for argument, _ in missing)
        raise ConfigError(
            f"MDRExporter is not configured: set the environment variable(s) {variables} "
            f"(or pass {arguments} to MDRExporter)"
        )


class MDRExporter(LogRecordExporter):
    """OpenTelemetry ``LogRecordExporter`` sending each record to MDR as an OCSF Event Log Activity.

    Use it under ``BatchLogRecordProcessor`` (or ``SimpleLogRecordProcessor``), or let
    ``OTEL_LOGS_EXPORTER=mdr opentelemetry-instrument`` create it with no arguments. Every
    argument falls back to an environment variable, then to a default: ``host``/``token``
    (``MDR_HOST``/``MDR_TOKEN``, required), ``ssl_verify`` / ``ca_bundle`` (``MDR_SSL_VERIFY`` /
    ``MDR_CA_BUNDLE``), ``client_cert`` / ``client_key`` (``MDR_CLIENT_CERT`` /
    ``MDR_CLIENT_KEY``), ``index`` (``MDR_INDEX``), ``name`` for the sourcetype
    ``pymdr::<name>`` (``MDR_NAME``, else the resource's ``service.name``), ``vendor_name``
    (``MDR_VENDOR_NAME``, used when the resource has no ``service.namespace``), ``timeout``, the
    seconds one export may take with its retries (``MDR_EXPORT_TIMEOUT``, else ``MDR_TIMEOUT``,
    else 10), ``compress`` (``MDR_COMPRESSION``), ``use_ack`` (``MDR_USE_ACK``). ``retry`` sets
    the backoff; its deadline is replaced by ``timeout``. The constructor never touches the
    network.
    """

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
        retry: RetryPolicy | None = None,
    ) -> None:
        _require_endpoint(host, token)
        self._timeout = _export_timeout(timeout)
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
        fixed_name = name.strip() if isinstance(name, str) else env_str("MDR_NAME")
        if name is not None and not fixed_name:
            raise ConfigError("name must not be empty (argument `name` / MDR_NAME)")
        self._fixed_sourcetype = f"pymdr::{fixed_name}" if fixed_name else None
        vendor = vendor_name.strip() if isinstance(vendor_name, str) else None
        self._vendor_name = vendor or env_str("MDR_VENDOR_NAME")
        self._index = self._config.index
        self._transport = HECTransport(self._config)
        self._send_lock = threading.Lock()
        self._counters = _Counters()
        self._sourcetypes: tuple[object, str] = (object(), "")
        self._closed = False
        self._exit_deadline: float | None = None
        self._warned: set[str] = set()
        self._exit_hook = _exit_hook(weakref.ref(self))
        atexit.register(self._exit_hook)
        _live.add(self)
        internal.install_record_marker()

    def __repr__(self) -> str:
        return f"MDRExporter(url={self._config.url!r}, timeout={self._timeout:g})"

    # ------------------------------------------------------------ public
    @property
    def config(self) -> HECConfig:
        """The resolved transport settings (the token stays out of its ``repr``)."""
        return self._config

    @property
    def timeout(self) -> float:
        """Seconds one ``export`` may take, retries included."""
        return self._timeout

    def stats(self) -> ExporterStats:
        """Counters: exported, internal (skipped), sent, dropped by reason, retries, failures."""
        return self._counters.snapshot()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Map, serialize and send ``batch``; SUCCESS only when every record was delivered.

        Never raises, and returns within ``timeout`` seconds (or at once after ``shutdown``).
        """
        try:
            return self._export(batch)
        except Exception as error:  # the SDK must never see an exception from us
            count = _length(batch)
            self._counters.add(
                exported=count, dropped={"error": count}, failed=True, error=error_text(error)
            )
            with internal.sending():
                self._warn_once("error", "exporting to MDR failed unexpectedly", exc_info=True)
            return _FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is held between exports; with acknowledgements on, wait for pending ones."""
        if self._closed or not self._transport.acks_enabled:
            return True
        return self._wait_for_acks(time.monotonic() + max(timeout_millis, 0) / 1000)

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Close the transport (a pending retry wait ends at once); idempotent.

        With acknowledgements on, pending ones are awaited first, for at most ``timeout_millis``
        and the export timeout.
        """
        if self._closed:
            return
        if self._transport.acks_enabled:
            wait = min(max(timeout_millis, 0) / 1000, self._timeout)
            self._wait_for_acks(time.monotonic() + wait)
        self._closed = True
        with internal.sending():
            self._transport.close()
        atexit.unregister(self._exit_hook)

    # ---------------------------------------------------------- internals
    def _export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        count = len(batch)
        if not count:
            return _SUCCESS
        if internal.is_sending():
            # Re-entered from our own send (SimpleLogRecordProcessor on the sending thread):
            # whatever was logged here is ours by definition.
            self._counters.add(exported=count, internal=count)
            return _SUCCESS
        if self._closed:
            self._counters.add(exported=count, dropped={"closed": count}, failed=True)
            return _FAILURE
        deadline = time.monotonic() + self._timeout
        if self._exit_deadline is not None:
            deadline = min(deadline, self._exit_deadline)
        with internal.sending():
            envelopes, skipped, unmappable = self._encode(batch)
            report = self._send(envelopes, deadline) if envelopes else SendReport()
        dropped = dict(report.dropped)
        if unmappable:
            dropped["unmappable"] = unmappable
        failed = bool(dropped)
        error = report.error
        self._counters.add(
            exported=count,
            internal=skipped,
            sent=report.delivered,
            dropped=dropped,
            retried=report.retries,
            failed=failed,
            error=str(error) if error is not None else None,
        )
        return _FAILURE if failed else _SUCCESS

    def _encode(self, batch: Sequence[ReadableLogRecord]) -> tuple[list[bytes], int, int]:
        """Envelopes for the records that are not ours; also (skipped internal, unmappable)."""
        envelopes: list[bytes] = []
        skipped = unmappable = 0
        vendor = self._vendor_name
        index = self._index
        for item in batch:
            try:
                encoded = encode_record(item, vendor)
                if encoded is None:
                    skipped += 1
                    continue
                event, seconds, host, source = encoded
                envelopes.append(
                    encode_envelope(
                        event,
                        time=seconds,
                        host=host,
                        source=source,
                        sourcetype=self._sourcetype(item),
                        index=index,
                    )
                )
            except Exception:
                unmappable += 1
                self._warn_once(
                    "unmappable",
                    "a log record could not be encoded for MDR; it was skipped and counted",
                    exc_info=True,
                )
        return envelopes, skipped, unmappable

    def _sourcetype(self, item: ReadableLogRecord) -> str:
        """``pymdr::<name>``: the configured name, else the resource's ``service.name``."""
        if self._fixed_sourcetype is not None:
            return self._fixed_sourcetype
        resource = item.resource
        cached, sourcetype = self._sourcetypes
        if cached is resource:
            return sourcetype
        attributes = getattr(resource, "attributes", None) or {}
        service = attributes.get("service.name")
        name = service.strip() if isinstance(service, str) else ""
        sourcetype = f"pymdr::{name or program_name()}"
        self._sourcetypes = (resource, sourcetype)
        return sourcetype

    def _send(self, envelopes: list[bytes], deadline: float) -> SendReport:
        """One transport send at a time (the SimpleLogRecordProcessor exports on any thread)."""
        if not self._send_lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            report = SendReport()
            report.drop("deadline", len(envelopes))
            return report
        try:
            return self._transport.send(envelopes, deadline)
        finally:
            self._send_lock.release()

    def _wait_for_acks(self, deadline: float) -> bool:
        if not self._send_lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            return False
        try:
            with internal.sending():
                return self._transport.wait_for_acks(deadline)
        finally:
            self._send_lock.release()

    def _warn_once(self, key: str, message: str, *, exc_info: bool = False) -> None:
        """Call inside ``sending()``, so the line is marked as ours and never exported."""
        level = logging.DEBUG if key in self._warned else logging.WARNING
        self._warned.add(key)
        log.log(level, message, exc_info=exc_info)

    def _begin_exit(self) -> None:
        """At interpreter exit: what is still exported shares one deadline, not one each."""
        if self._exit_deadline is None:
            self._exit_deadline = time.monotonic() + self._timeout

    def _reset_after_fork(self) -> None:
        """In a forked child: the parent's threads may have held our locks."""
        self._send_lock = threading.Lock()
        self._counters.lock = threading.Lock()


def _exit_hook(ref: weakref.ReferenceType[MDRExporter]) -> Callable[[], None]:
    def hook() -> None:
        exporter = ref()
        if exporter is not None:
            exporter._begin_exit()

    return hook


def _length(batch: Any) -> int:
    try:
        return len(batch)
    except Exception:
        return 0
