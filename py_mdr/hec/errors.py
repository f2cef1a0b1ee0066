"""Typed HEC errors. Messages carry the HTTP status, the HEC code and its text, never the token."""

from __future__ import annotations

from typing import TYPE_CHECKING

from py_mdr.errors import MDRError

if TYPE_CHECKING:
    from py_mdr.hec.reports import SendReport


class HECError(MDRError):
    """A HEC request failed; ``permanent`` means retrying will not help until someone acts."""

    permanent_default = False

    def __init__(
        self,
        text: str,
        *,
        status: int | None = None,
        hec_code: int | None = None,
        permanent: bool | None = None,
    ) -> None:
        """``text`` says what went wrong and what to do, in our words; ``status`` and ``hec_code``
        are the answer's, when there was one; ``permanent`` defaults to the class's."""
        self.status = status
        self.hec_code = hec_code
        self.text = text
        self.permanent = self.permanent_default if permanent is None else permanent
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.status is not None:
            where.append(f"HTTP {self.status}")
        if self.hec_code is not None:
            where.append(f"HEC code {self.hec_code}")
        prefix = ", ".join(where)
        text = self.text or "(no text)"
        return f"{prefix}: {text}" if prefix else text

    def __reduce__(self) -> tuple[object, ...]:
        # keyword-only arguments: rebuild explicitly so errors survive pickling (e.g. to a worker)
        return (_rebuild, (type(self), self.text, self.status, self.hec_code, self.permanent))


def _rebuild(
    cls: type[HECError], text: str, status: int | None, hec_code: int | None, permanent: bool
) -> HECError:
    return cls(text, status=status, hec_code=hec_code, permanent=permanent)


class HECAuthError(HECError):
    """The token was refused (HTTP 401/403, HEC codes 1-4)."""

    permanent_default = True


class HECIndexError(HECError):
    """The configured index is not allowed for this token (HEC code 7)."""

    permanent_default = True


class HECRejectedError(HECError):
    """The receiver refused the data as sent (a 400, an oversize event, ...)."""


class HECProtocolError(HECError):
    """Something answered that is not HEC: a proxy's page, a redirect, a 2xx without success.

    Permanent in the sense that retrying the same request will not help until someone acts;
    the transport still tries later sends, since a proxy may be fixed at any time.
    """

    permanent_default = True


class HECConnectionError(HECError):
    """No answer: the connection could not be made or broke."""


class HECTLSError(HECConnectionError):
    """The TLS handshake failed, usually certificate verification."""


class HECTimeoutError(HECError):
    """The receiver did not answer in time, or the send deadline passed."""


class HECClosedError(HECError):
    """The transport was closed before the events could be sent."""


class MDRDeliveryError(HECError):
    """Events were not delivered; ``report`` says how many and why, ``__cause__`` the last error.

    ``status``, ``hec_code`` and ``permanent`` are those of the underlying HEC error;
    ``report.undelivered`` holds the envelopes that may get through later (after the outage, or
    once the token, index, CA bundle or host is fixed).
    """

    def __init__(self, report: SendReport, total: int, detail: str | None = None) -> None:
        """``report`` of the send that gave up, ``total`` events it was given; ``detail``
        replaces the summary "MDR did not accept N of M event(s) (reason: count)"."""
        self.report = report
        self.total = total
        cause = report.error
        if detail is None:
            reasons = ", ".join(f"{reason}: {count}" for reason, count in report.dropped.items())
            detail = f"MDR did not accept {report.dropped_total} of {total} event(s) ({reasons})"
        text = f"{detail}: {cause}" if cause is not None else detail
        super().__init__(
            text,
            status=cause.status if cause else None,
            hec_code=cause.hec_code if cause else None,
            permanent=cause.permanent if cause else False,
        )

    def _message(self) -> str:
        return self.text

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_delivery_error, (self.report, self.total, self.text))


def _rebuild_delivery_error(report: SendReport, total: int, text: str) -> MDRDeliveryError:
    error = MDRDeliveryError(report, total)
    error.text = text
    error.args = (text,)
    return error
