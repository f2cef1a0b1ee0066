"""Wiring a door (the handler, the OpenTelemetry exporters) to the one delivery and transport."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TypeVar

from py_mdr.checks import count, path
from py_mdr.delivery.report import Reporter
from py_mdr.delivery.spool import DEFAULT_MAX_SPOOL_BYTES, Spool
from py_mdr.delivery.worker import Delivery, Encode
from py_mdr.hec.config import HECConfig
from py_mdr.hec.errors import HECError
from py_mdr.hec.reports import SendReport
from py_mdr.internal import sending

if TYPE_CHECKING:  # requests loads when the first door opens, not on import
    from py_mdr.hec.transport import HECTransport

__all__ = ["open_delivery"]

T = TypeVar("T")


def open_delivery(
    config: HECConfig,
    encode: Encode[T],
    *,
    who: str,
    spool_dir: str | None = None,
    max_spool_bytes: int | None = None,
    **queue: Any,
) -> tuple[Delivery[T], HECTransport]:
    """A delivery sending through its own transport; refusals and losses told on stderr.

    ``spool_dir`` opens the disk spool (checked now: an unusable directory raises
    :class:`~py_mdr.config.ConfigError` naming it). ``queue`` holds the queue's settings
    (``max_records``, ``batch_size``, ``linger``, ...), which :class:`Delivery` checks by the
    same rules as the doors' arguments. Nothing here touches the network.
    """
    if max_spool_bytes is not None:
        count("max_spool_bytes", max_spool_bytes)
    spool = None
    if spool_dir is not None:
        spool_dir = path("spool_dir", spool_dir)
        spool = Spool(spool_dir, max_bytes=max_spool_bytes or DEFAULT_MAX_SPOOL_BYTES)
    reporter = Reporter(f"{who} to {config.url}", spooled=spool is not None)

    def refused(kind: str, error: HECError) -> None:
        reporter.refused(kind, error)

    from py_mdr.hec.transport import HECTransport

    transport = HECTransport(config, notify=refused)

    def unconfirmed() -> int:
        stats = transport.stats()
        return stats.events_unconfirmed + stats.events_awaiting_ack

    def close_transport() -> None:
        with sending():  # what the HTTP stack logs while closing stays out of MDR
            transport.close()

    policy_deadline = config.retry.deadline

    def send(envelopes: list[bytes], deadline: float | None) -> SendReport:
        # closing shortens a send, never lengthens it beyond the configured timeout
        if deadline is not None:
            deadline = min(deadline, time.monotonic() + policy_deadline)
        return transport.send(envelopes, deadline)

    acks = config.use_ack
    delivery: Delivery[T] = Delivery(
        send,
        encode=encode,
        reporter=reporter,
        spool=spool,
        block_timeout=config.retry.deadline,
        finish=transport.wait_for_acks if acks and spool is None else None,
        confirm=transport.wait_for_acks if acks and spool is not None else None,
        unconfirmed=unconfirmed if acks else None,
        interrupt=close_transport,
        hurry=transport.hurry,
        **queue,
    )
    return delivery, transport
