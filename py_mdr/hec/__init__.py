"""The HEC transport: envelopes, batching into bodies, the HTTP session, retries, response codes.

Names load lazily so that code needing only the envelope encoder does not pay for importing
``requests``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from py_mdr._lazy import lazy_getattr

if TYPE_CHECKING:
    from py_mdr.hec.batching import plan_bodies
    from py_mdr.hec.codes import Action, classify
    from py_mdr.hec.config import HECConfig
    from py_mdr.hec.envelope import encode_envelope
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
    from py_mdr.hec.reports import HealthReport, SendReport, TransportStats
    from py_mdr.hec.retry import RetryPolicy, parse_retry_after
    from py_mdr.hec.transport import HECTransport

_LAZY = {
    "plan_bodies": "py_mdr.hec.batching",
    "Action": "py_mdr.hec.codes",
    "classify": "py_mdr.hec.codes",
    "HECConfig": "py_mdr.hec.config",
    "encode_envelope": "py_mdr.hec.envelope",
    "HECAuthError": "py_mdr.hec.errors",
    "HECClosedError": "py_mdr.hec.errors",
    "HECConnectionError": "py_mdr.hec.errors",
    "HECError": "py_mdr.hec.errors",
    "HECIndexError": "py_mdr.hec.errors",
    "HECProtocolError": "py_mdr.hec.errors",
    "HECRejectedError": "py_mdr.hec.errors",
    "HECTimeoutError": "py_mdr.hec.errors",
    "HECTLSError": "py_mdr.hec.errors",
    "MDRDeliveryError": "py_mdr.hec.errors",
    "HealthReport": "py_mdr.hec.reports",
    "SendReport": "py_mdr.hec.reports",
    "TransportStats": "py_mdr.hec.reports",
    "RetryPolicy": "py_mdr.hec.retry",
    "parse_retry_after": "py_mdr.hec.retry",
    "HECTransport": "py_mdr.hec.transport",
}

__all__ = [
    "Action",
    "HECAuthError",
    "HECClosedError",
    "HECConfig",
    "HECConnectionError",
    "HECError",
    "HECIndexError",
    "HECProtocolError",
    "HECRejectedError",
    "HECTLSError",
    "HECTimeoutError",
    "HECTransport",
    "HealthReport",
    "MDRDeliveryError",
    "RetryPolicy",
    "SendReport",
    "TransportStats",
    "classify",
    "encode_envelope",
    "parse_retry_after",
    "plan_bodies",
]


__getattr__ = lazy_getattr(__name__, _LAZY)
