"""py-mdr: OCSF 1.3.0 events and Python logs to MDR over the Splunk HEC protocol.

The heavy parts (models, HTTP stack) load on first use, so ``import py_mdr`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from py_mdr._lazy import lazy_getattr

__version__ = "2.0.0"
OCSF_VERSION = "1.3.0"

if TYPE_CHECKING:
    from py_mdr.async_client import AsyncMDRClient
    from py_mdr.client import MDRClient
    from py_mdr.completion import complete_event
    from py_mdr.delivery.sigterm import drain_on_sigterm
    from py_mdr.errors import ConfigError, EventError, MDRError
    from py_mdr.handler import MDRHandler
    from py_mdr.hec.errors import HECError, MDRDeliveryError
    from py_mdr.serialize import to_dict, to_json, to_json_bytes
    from py_mdr.validate import validate

_LAZY = {
    "AsyncMDRClient": "py_mdr.async_client",
    "ConfigError": "py_mdr.errors",
    "EventError": "py_mdr.errors",
    "HECError": "py_mdr.hec.errors",
    "MDRClient": "py_mdr.client",
    "MDRDeliveryError": "py_mdr.hec.errors",
    "MDRError": "py_mdr.errors",
    "MDRHandler": "py_mdr.handler",
    "complete_event": "py_mdr.completion",
    "drain_on_sigterm": "py_mdr.delivery.sigterm",
    "to_dict": "py_mdr.serialize",
    "to_json": "py_mdr.serialize",
    "to_json_bytes": "py_mdr.serialize",
    "validate": "py_mdr.validate",
}

__all__ = [
    "OCSF_VERSION",
    "AsyncMDRClient",
    "ConfigError",
    "EventError",
    "HECError",
    "MDRClient",
    "MDRDeliveryError",
    "MDRError",
    "MDRHandler",
    "__version__",
    "complete_event",
    "drain_on_sigterm",
    "to_dict",
    "to_json",
    "to_json_bytes",
    "validate",
]


__getattr__ = lazy_getattr(__name__, _LAZY)
