"""Outcomes in our own words: each error says what went wrong and what to fix, never the token.

Exceptions of the HTTP stack become typed :class:`HECError` s, and so do answers that refuse
the events or are not HEC's at all. ``kind`` marks what a user must hear about at once
(``auth``, ``index``, ``tls``, ``dns``, ``not_hec``): waiting will not fix it.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import requests
import urllib3.exceptions

from py_mdr.hec.codes import AUTH_CODES, INDEX_CODE, SUCCESS_CODE
from py_mdr.hec.errors import (
    HECAuthError,
    HECConnectionError,
    HECError,
    HECIndexError,
    HECProtocolError,
    HECRejectedError,
    HECTimeoutError,
    HECTLSError,
)
from py_mdr.hec.response import HECAnswer
from py_mdr.hec.session import NameLookupTimeout

__all__ = [
    "DEADLINE_PASSED",
    "Failure",
    "answer_error",
    "chain",
    "connect_failed",
    "failure_of",
    "not_hec_error",
]

DEADLINE_PASSED = "the send deadline passed"

Scrub = Callable[[str], str]
#: Reads the names the server's certificate is issued for (None: could not).
Names = Callable[[], "list[str] | None"]

_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH

_TOKEN_FIX = "check MDR_TOKEN or the token argument"
_INDEX_FIX = "check MDR_INDEX or the index argument"
_HOST_FIX = "check MDR_HOST or the host argument"
# Resolver answers that the name (or any address of it) does not exist: in DNS terms NXDOMAIN or
# no data, which resolvers cache as final. EAI_AGAIN (SERVFAIL, no answer) is worth retrying.
_NO_SUCH_NAME = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)
_PROXY_HINT = (
    "a proxy may be in the way (a login page, for example), or the URL is not the HEC endpoint"
)


@dataclass(frozen=True)
class Failure:
    """A request that got no answer: the error, whether to retry, what to tell at once."""

    error: HECError
    retryable: bool = True
    kind: str | None = None  # "tls" or "dns"
    # the resolver answered that the name does not exist: retrying soon gets the same answer
    unresolved: bool = False


def chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes, and the ``reason`` urllib3 wraps inside MaxRetryError."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 20:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend((item.__cause__, item.__context__))
        reason = getattr(item, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo.extend(arg for arg in item.args if isinstance(arg, BaseException))
    return seen


def connect_failed(exc: BaseException) -> bool:
    """True when no connection could be made (so the failure was not a stale pooled socket)."""
    return any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain(exc))


def _verify_failed(exc: BaseException) -> bool:
    return any(
        isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(e)
        for e in chain(exc)
    )


def _name_mismatch(exc: BaseException) -> bool:
    for item in chain(exc):
        if isinstance(item, ssl.SSLCertVerificationError) and item.verify_code in _MISMATCH:
            return True
        if any(text in str(item) for text in ("Hostname mismatch", "IP address mismatch")):
            return True
    return False


def _tls_error(
    exc: BaseException, url: str, host: str, verify: bool | str, names: Names | None
) -> HECTLSError:
    """Why the server's certificate was refused, and the fix that fits what was configured."""
    if _name_mismatch(exc):
        found = names() if names is not None else None
        if found:
            issued = "it is issued for " + ", ".join(found[:10])
            if len(found) > 10:
                issued += f" and {len(found) - 10} more"
        else:
            issued = "it is issued for other names (they could not be read)"
        return HECTLSError(
            f"the TLS certificate of {url} does not match the host name {host}: {issued}; "
            f"connect with one of its names ({_HOST_FIX}), or have the server's certificate "
            f"issued for {host}"
        )
    if isinstance(verify, str):
        return HECTLSError(
            f"TLS certificate verification failed for {url}: the CA bundle {verify} given "
            "does not vouch for the server's certificate; give the bundle of the CA that issued "
            "it (ssl_verify= / ca_bundle= / MDR_CA_BUNDLE)"
        )
    return HECTLSError(
        f"TLS certificate verification failed for {url}: give the CA bundle "
        "(ssl_verify='/path/ca.pem', ca_bundle= or MDR_CA_BUNDLE), or ssl_verify=False "
        "for testing only"
    )


def _lookup_error(exc: BaseException) -> BaseException | None:
    for item in chain(exc):
        if isinstance(item, (socket.gaierror, NameLookupTimeout)):
            return item
    return None


def failure_of(
    exc: BaseException,
    *,
    url: str,
    host: str,
    read_timeout: float,
    cut: bool,
    scrub: Scrub,
    verify: bool | str = True,
    names: Names | None = None,
) -> Failure:
    """What ``exc`` from a request to ``url`` means; ``cut``: the deadline ended the request.

    ``verify`` is what the server was verified with; ``names`` reads the names the server's
    certificate is issued for, asked only when it does not match ``host``.
    """
    detail = type(exc).__name__
    if cut:
        return Failure(
            HECTimeoutError(
                f"{DEADLINE_PASSED} while {url} was still answering (the events may have arrived)"
            )
        )
    if isinstance(exc, requests.exceptions.SSLError) and _verify_failed(exc):
        return Failure(_tls_error(exc, url, host, verify, names), retryable=False, kind="tls")
    if isinstance(exc, requests.exceptions.SSLError):
        return Failure(HECTLSError(f"TLS handshake with {url} failed ({detail})"))
    lookup = _lookup_error(exc)
    if isinstance(lookup, NameLookupTimeout):
        return Failure(
            HECConnectionError(
                f"looking up the host name {host} did not finish in time: check this "
                f"machine's DNS, and {_HOST_FIX}"
            )
        )
    if lookup is not None:
        why = scrub(str(getattr(lookup, "strerror", None) or lookup))[:200]
        if getattr(lookup, "errno", None) in _NO_SUCH_NAME:
            return Failure(
                HECConnectionError(
                    f"the host name {host} does not resolve ({why}): {_HOST_FIX}, "
                    "and this machine's DNS"
                ),
                kind="dns",
                unresolved=True,
            )
        return Failure(
            HECConnectionError(
                f"the host name {host} could not be looked up ({why}): the DNS server did not "
                f"answer usefully; check this machine's DNS, and {_HOST_FIX}"
            ),
            kind="dns",
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Failure(HECTimeoutError(f"could not connect to {url} in time"))
    if isinstance(exc, requests.exceptions.Timeout):
        return Failure(
            HECTimeoutError(
                f"no answer from {url} within {read_timeout:.3g} s (the events may have arrived)"
            )
        )
    if isinstance(
        exc,
        (
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ),
    ):
        what = "could not connect to" if connect_failed(exc) else "connection broke with"
        return Failure(HECConnectionError(f"{what} {url} ({detail})"))
    return Failure(
        HECConnectionError(
            f"the request to {url} could not be made ({detail}: {scrub(str(exc))[:200]})"
        ),
        retryable=False,
    )


def answer_error(
    status: int | None, answer: HECAnswer, reason: str, *, index: str | None, scrub: Scrub
) -> HECError:
    """The error for an answer that refused the events (not for a 2xx or 3xx: see below)."""
    code = answer.hec_code
    text = scrub(answer.text or reason or "")
    if status in (401, 403) or code in AUTH_CODES:
        return HECAuthError(
            f"{text or 'refused'}: MDR refused the token; {_TOKEN_FIX}",
            status=status,
            hec_code=code,
        )
    if code == INDEX_CODE:
        which = f"the index {index!r} is" if index else "the receiver's default index is"
        return HECIndexError(
            f"{text or 'refused'}: {which} not allowed for this token; {_INDEX_FIX}",
            status=status,
            hec_code=code,
        )
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return HECRejectedError(text, status=status, hec_code=code)
    return HECError(text, status=status, hec_code=code)


def not_hec_error(
    url: str,
    status: int,
    answer: HECAnswer,
    *,
    location: str | None,
    scrub: Scrub,
    expected: int = SUCCESS_CODE,
) -> HECProtocolError:
    """A 2xx without the HEC code ``expected``, or a redirect: something else answered."""
    quoted = scrub(answer.text)[:80]
    hint = _PROXY_HINT
    if 300 <= status < 400:
        got = f"a redirect to {scrub(location)[:200]}" if location else "a redirect"
    elif answer.html:
        got = f'an HTML page ("{quoted}")' if quoted else "an HTML page"
    elif answer.hec_code is not None:
        got = f"HEC code {answer.hec_code}" + (f' ("{quoted}")' if quoted else "")
        got += f" where HEC answers code {expected}"
        hint = "the receiver is not a working HEC endpoint"
    elif quoted:
        got = f'"{quoted}"'
    else:
        got = "JSON without a HEC code" if answer.is_json else "an empty body"
    return HECProtocolError(
        f"{url} did not answer like HEC ({got}): {hint}; {_HOST_FIX}",
        status=status,
        hec_code=answer.hec_code,
    )
