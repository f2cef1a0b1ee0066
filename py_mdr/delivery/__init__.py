"""The one delivery every door shares: bounded memory queue -> worker -> [disk spool] -> HEC.

- :mod:`~py_mdr.delivery.worker`: the queue, its worker and the spool's sender thread.
- :mod:`~py_mdr.delivery.spool`: the optional disk spool, shared safely by several processes.
- :mod:`~py_mdr.delivery.lifecycle`: exit, fork, multiprocessing children.
- :mod:`~py_mdr.delivery.sigterm`: the SIGTERM opt-in, :func:`drain_on_sigterm`.
- :mod:`~py_mdr.delivery.report`: what could not be delivered, told on stderr.
- :mod:`~py_mdr.delivery.sizing`: the memory estimate behind the queue's byte bound.
"""

from py_mdr.delivery.sigterm import drain_on_sigterm
from py_mdr.delivery.sizing import estimate_size
from py_mdr.delivery.spool import DEFAULT_MAX_SPOOL_BYTES, Spool, SpoolStats
from py_mdr.delivery.worker import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_SIZE,
    DEFAULT_LINGER,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_RECORDS,
    Delivery,
    DeliveryStats,
    Encode,
    Send,
)

__all__ = [
    "DEFAULT_BATCH_BYTES",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LINGER",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_RECORDS",
    "DEFAULT_MAX_SPOOL_BYTES",
    "Delivery",
    "DeliveryStats",
    "Encode",
    "Send",
    "Spool",
    "SpoolStats",
    "drain_on_sigterm",
    "estimate_size",
]
