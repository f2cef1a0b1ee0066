"""Every error py-mdr raises on purpose descends from :class:`MDRError`: one ``except`` catches all.

- :class:`ConfigError` (also a ``ValueError``): an argument or ``MDR_*`` variable is missing or
  malformed; raised by constructors, before anything is sent.
- :class:`EventError` (also a ``ValueError``): an event cannot become OCSF JSON (a model that
  contains itself, a number no JSON reader can hold); the message names the field.
- :class:`~py_mdr.hec.errors.HECError` and its kinds: what the HEC endpoint answered, or that
  nothing answered.
- :class:`~py_mdr.hec.errors.MDRDeliveryError` (a ``HECError``): ``MDRClient.send`` gave up.

The HEC errors load on first use from :mod:`py_mdr.hec.errors`, which imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from py_mdr._lazy import lazy_getattr

if TYPE_CHECKING:
    from py_mdr.hec.errors import (
        HECAuthError,
        HECClosedError,
        HECConnectionError,
        HECError,
        HECIndexError,
        HECProtocolError,
        HECRejectedError,
        HECTimeoutError,
        HECTLSError,
        MDRDeliveryError,
    )

__all__ = [
    "ConfigError",
    "EventError",
    "HECAuthError",
    "HECClosedError",
    "HECConnectionError",
    "HECError",
    "HECIndexError",
    "HECProtocolError",
    "HECRejectedError",
    "HECTLSError",
    "HECTimeoutError",
    "MDRDeliveryError",
    "MDRError",
]


class MDRError(Exception):
    """The root of py-mdr's own errors."""


class ConfigError(MDRError, ValueError):
    """A setting is missing or malformed; the message names the argument (and variable) and the fix.

    Also a ``ValueError``, so code that caught the ``ValueError`` of earlier releases still does.
    """


class EventError(MDRError, ValueError):
    """An event cannot be serialized as OCSF JSON; the message names the field and why."""


__getattr__ = lazy_getattr(
    __name__,
    {name: "py_mdr.hec.errors" for name in __all__ if name.startswith(("HEC", "MDRDelivery"))},
)
