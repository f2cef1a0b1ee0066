"""``MDRClient``: send OCSF events (models or dicts) to MDR, and know synchronously they arrived.

Unlike the logging paths, ``send`` is meant to block: it returns once MDR accepted the events and
raises :class:`MDRDeliveryError` when it finally cannot deliver them (its waits are bounded by the
send deadline, ``timeout`` / ``MDR_TIMEOUT``). The constructor never touches the network.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from py_mdr._lazy import lazy_getattr
from py_mdr.compat import legacy_source, with_source_format
from py_mdr.completion import complete_event
from py_mdr.config import ConfigError, hec_config
from py_mdr.eventlog import default_product
from py_mdr.hec.envelope import encode_envelope
from py_mdr.hec.errors import HECTimeoutError
from py_mdr.hec.errors import MDRDeliveryError as MDRDeliveryError  # its 1.x home
from py_mdr.hec.reports import HealthReport, SendReport, TransportStats
from py_mdr.hec.retry import RetryPolicy
from py_mdr.hec.transport import HECTransport
from py_mdr.serialize import absurd_time, dumps, json_safe, to_dict

if TYPE_CHECKING:
    from py_mdr.async_client import AsyncMDRClient

__all__ = ["NAME_RULE", "AsyncMDRClient", "MDRClient", "MDRDeliveryError"]

# AsyncMDRClient lives in its own module (it needs asyncio); it is imported from here on first use.
__getattr__ = lazy_getattr(__name__, {"AsyncMDRClient": "py_mdr.async_client"})

# Characters a sourcetype name must not carry: separators and quoting in Splunk searches.
_NAME_FORBIDDEN = frozenset(" :\"'\\/|*?=,;`")
NAME_RULE = "1 to 100 printable ASCII characters without spaces or any of " + " ".join(
    sorted(_NAME_FORBIDDEN - {" "})
)


_live: weakref.WeakSet[MDRClient] = weakref.WeakSet()


def _renew_after_fork() -> None:
    # another thread of the parent may have held a client's lock when it forked: in the child
    # that lock would never be released (the transport renews its own state itself)
    for client in list(_live):
        client._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_after_fork)


def _valid_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and 0 < len(name) <= 100
        and name.isascii()
        and name.isprintable()
        and not _NAME_FORBIDDEN.intersection(name)
    )


class MDRClient:
    """Sends OCSF events to MDR over HEC: ``sourcetype`` ``pymdr::<name>``, ``source`` ``name``.

    ``host``/``token`` default to ``MDR_HOST``/``MDR_TOKEN``; ``ssl_verify`` is a bool or a CA
    bundle path (default true, or ``MDR_SSL_VERIFY`` / ``MDR_CA_BUNDLE``); ``client_cert`` is a
    PEM path or a (cert, key) pair for mutual TLS (or give the key with ``client_key``);
    ``timeout`` bounds one send, retries included. A dict is completed as ``py-mdr send``
    completes it (:func:`py_mdr.completion.complete_event`: derived values, ``metadata.product``
    named after ``name``, ...) unless sent ``as_given``.
    Code written for py-mdr 0.7 may give ``dataset_name`` and ``namespace`` instead of ``name``:
    events then go out as 0.7 sent them, with ``source`` and a top-level ``source_format`` of
    ``pymdr::<dataset_name>.<namespace>``.
    """

    def __init__(
        self,
        name: str | None = None,
        host: str | None = None,
        token: str | None = None,
        ssl_verify: bool | str | None = None,
        *,
        index: str | None = None,
        ca_bundle: str | None = None,
        client_cert: str | tuple[str, str] | None = None,
        client_key: str | None = None,
        timeout: float | None = None,
        use_ack: bool | None = None,
        compress: bool | None = None,
        retry: RetryPolicy | Mapping[str, float] | None = None,
        dataset_name: str | None = None,
        namespace: str | None = None,
    ) -> None:
        """Check and resolve the settings (arguments, then ``MDR_*`` variables); no network I/O.

        ``name`` is required (or 0.7's ``dataset_name``/``namespace``). ``client_key`` is the
        client certificate's key file when ``client_cert`` does not hold it (``MDR_CLIENT_KEY``).
        ``retry`` is a :class:`~py_mdr.hec.retry.RetryPolicy` or a dict of its fields; ``timeout``
        (``MDR_TIMEOUT``, 60) replaces its deadline. A host name the resolver says does not
        exist fails ``send`` at once: that answer is final for now (resolvers cache it for the
        zone's negative TTL), so retrying until the deadline would only delay the same error;
        a lookup that got no answer at all is retried like any unreachable endpoint. Raises
        :class:`~py_mdr.errors.ConfigError` naming the argument (or variable) that is wrong
        and how to fix it.
        """
        self._legacy_source: str | None = None
        if dataset_name is not None or namespace is not None:
            self._legacy_source = legacy_source(dataset_name, namespace)
            if name is None:
                name = dataset_name
        if name is None:
            raise ConfigError(
                "name is required (MDRClient(name='my-service', ...)), or dataset_name and "
                "namespace as in py-mdr 0.7"
            )
        if not _valid_name(name):
            raise ConfigError(f"name must be {NAME_RULE}; got {name!r}")
        self.name = name
        self._config = hec_config(
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
            retry_unresolved=False,
        )
        self._host = socket.gethostname()
        self._sourcetype = f"pymdr::{name}"
        self._product = default_product({"name": name})  # what `py-mdr send --name` writes
        self._transport = HECTransport(self._config)
        self._lock = threading.Lock()  # one send at a time: acks and deadlines are per send
        _live.add(self)

    def __repr__(self) -> str:
        return f"MDRClient(name={self.name!r}, url={self._config.url!r})"

    @property
    def url(self) -> str:
        """The HEC base URL events go to."""
        return self._config.url

    @property
    def timeout(self) -> float:
        """Seconds one send may take, retries and waiting behind another send included."""
        return self._config.retry.deadline

    def send(self, event: Any, *, as_given: bool = False) -> SendReport:
        """Send one OCSF model or dict; returns once MDR accepted it, else raises.

        Accepted means HEC answered success: a 2xx with anything else (a proxy's login page,
        another HEC code) raises, and so does an answer still arriving at the deadline. A dict
        is completed first (see the class docstring); ``as_given=True`` sends it only made
        JSON-safe.

        Raises :class:`MDRDeliveryError` when it could not be delivered, ``TypeError`` or
        ``ValueError`` for something that is not an event.
        """
        return self.send_batch((event,), as_given=as_given)

    def send_batch(self, events: Iterable[Any], *, as_given: bool = False) -> SendReport:
        """Send several events in as few requests as the size limits allow; all-or-raise.

        The deadline starts at the call, so time spent waiting behind another thread's send
        counts against it too.
        """
        return self._send_until(events, time.monotonic() + self.timeout, as_given)

    def _send_until(self, events: Iterable[Any], deadline: float, as_given: bool) -> SendReport:
        """``send_batch`` against a deadline set by the caller (``AsyncMDRClient`` sets it when
        the coroutine is called, not when its worker thread starts)."""
        envelopes = [self._envelope(event, as_given) for event in events]
        if not envelopes:
            return SendReport()
        total = len(envelopes)
        if not self._lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            report = SendReport()
            report.drop(
                "deadline",
                total,
                HECTimeoutError(
                    "the send deadline passed while another thread's send held this client"
                ),
            )
            report.undelivered.extend(envelopes)
            raise MDRDeliveryError(report, total) from report.error
        try:
            report = self._transport.send(envelopes, deadline)
            confirmed = report.ok and self._transport.wait_for_acks(deadline)
        finally:
            self._lock.release()
        if not report.ok:
            raise MDRDeliveryError(report, total) from report.error
        if not confirmed:
            raise MDRDeliveryError(
                report,
                total,
                f"MDR accepted {total} event(s) but did not acknowledge them before the deadline",
            )
        return report

    def health(self, timeout: float = 5.0) -> HealthReport:
        """Ask the endpoint's health check (network I/O; never raises)."""
        return self._transport.health(timeout)

    @property
    def stats(self) -> TransportStats:
        """Counters of the underlying transport, as a snapshot.

        A property, as on every py-mdr door; ``client.stats()`` (the 2.0 spelling) works too,
        since a snapshot called returns itself (see :class:`py_mdr.stats.Snapshot`).
        """
        return self._transport.stats()

    def close(self) -> None:
        """Release connections; a send blocked in a retry wait ends at once. Idempotent."""
        self._transport.close()

    def __enter__(self) -> MDRClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _envelope(self, event: Any, as_given: bool = False) -> bytes:
        if not isinstance(event, Mapping):
            data = to_dict(event)
        elif as_given:
            data = json_safe(event)
        else:
            data = complete_event(event, name=self.name, product=self._product)
        if not isinstance(data, dict) or not data:
            raise ValueError("an empty event cannot be sent (HEC refuses a blank event)")
        stamp = data.get("time")
        if type(stamp) is int and stamp.bit_length() > 63:  # math.isfinite would overflow
            raise absurd_time("time", stamp)
        if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) and math.isfinite(stamp):
            seconds = stamp / 1000
        else:
            seconds = time.time()
        legacy = self._legacy_source
        if legacy is not None:
            data = with_source_format(data, legacy)
        return encode_envelope(
            dumps(data),
            time=seconds,
            host=self._host,
            source=legacy or self.name,
            sourcetype=self._sourcetype,
            index=self._config.index,
        )
