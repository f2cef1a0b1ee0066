"""The HTTP side of HEC: one pooled session, bounded retries, and the response table applied.

``HECTransport.send`` is used by one sending thread at a time; ``stats`` and ``close`` may be
called from any thread. It never raises for HTTP or network outcomes: it reports them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import requests
import requests.auth
import urllib3.util

from py_mdr import __version__
from py_mdr.hec.ack import AckTracker
from py_mdr.hec.batching import join_body, plan_bodies
from py_mdr.hec.codes import Action, classify, drop_reason, resendable
from py_mdr.hec.compression import gzip_body
from py_mdr.hec.config import HECConfig
from py_mdr.hec.errors import HECClosedError, HECError, HECRejectedError, HECTimeoutError
from py_mdr.hec.failures import (
    DEADLINE_PASSED,
    Failure,
    answer_error,
    connect_failed,
    failure_of,
    not_hec_error,
)
from py_mdr.hec.reports import Counters, HealthReport, SendReport, TransportStats
from py_mdr.hec.response import HECAnswer, parse_answer
from py_mdr.hec.retry import parse_retry_after
from py_mdr.hec.session import new_session
from py_mdr.hec.tls_names import certificate_names
from py_mdr.hec.watchdog import Deadline
from py_mdr.internal import sending

log = logging.getLogger("py_mdr.hec")

EVENT_PATH = "/services/collector/event"
ACK_PATH = "/services/collector/ack"
HEALTH_PATH = "/services/collector/health"
_ACK_CHUNK = 1_000  # ackIds per poll request
_NO_ANSWER = HECAnswer()
HEALTHY_CODE = 17

#: Called once per kind ("auth", "index", "tls", "dns", "not_hec") with the error, which says
#: what to fix; meant for telling a person right away (stderr), not for ``logging``.
Notify = Callable[[str, HECError], None]

_live: weakref.WeakSet[HECTransport] = weakref.WeakSet()


def _renew_after_fork() -> None:
    for transport in list(_live):
        transport.reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_after_fork)


_MIN_SCRUB_LENGTH = 6


class _SplunkAuth(requests.auth.AuthBase):
    """Sets ``Authorization: Splunk <token>``; as session auth it also keeps ~/.netrc out."""

    def __init__(self, token: str) -> None:
        self._value = f"Splunk {token}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._value
        return request

    def __repr__(self) -> str:
        return "<SplunkAuth>"


@dataclass(frozen=True)
class _Outcome:
    """One HTTP attempt: an answer (status set) or a failure (``failure`` set, status None)."""

    status: int | None = None
    answer: HECAnswer = _NO_ANSWER
    reason: str = ""
    retry_after: float | None = None
    location: str | None = None
    failure: Failure | None = None


def _timeout(connect: float, read: float, total: float) -> Any:
    """Socket timeouts for each single wait, none longer than ``total``.

    They end a silent wait early; the whole request (a trickled answer included) is bounded by
    the :class:`Deadline` around it. ``requests`` accepts this object although its type hints
    only list floats and pairs.
    """
    return cast(Any, urllib3.util.Timeout(connect=min(connect, total), read=read, total=total))


class HECTransport:
    """Sends envelopes to one HEC endpoint, following HEC's response codes.

    ``notify`` (optional) hears once per kind about what waiting will not fix: ``auth`` (token
    refused), ``index``, ``tls`` (certificate not trusted), ``dns`` (host name does not
    resolve), ``not_hec`` (something else answered). The error says what to fix; an exception
    from ``notify`` is logged at debug level and otherwise ignored.
    """

    def __init__(self, config: HECConfig, *, notify: Notify | None = None) -> None:
        """``config`` is already resolved (see :func:`py_mdr.config.hec_config`); ``notify`` hears
        about what waiting will not fix. No network I/O until the first send."""
        self.config = config
        self._auth = _SplunkAuth(config.token)
        token = config.token
        # Very short tokens (test values) would mangle ordinary words if scrubbed everywhere.
        forms = {token, repr(token)[1:-1], json.dumps(token)[1:-1]}
        self._token_forms = {form for form in forms if len(form) >= _MIN_SCRUB_LENGTH}
        self._event_url = config.url + EVENT_PATH
        self._host = urlsplit(config.url).hostname or config.url
        self._policy = config.retry
        self._counters = Counters()
        self._closed = False
        # A wait (backoff, ack poll) ends early when the transport closes; a backoff also when
        # its owner hurries it (``hurry``: closing, what is left must go now, by its deadline).
        self._nudge = threading.Condition()
        self._hurries = 0
        self._hurry_by = math.inf
        self._fatal: HECError | None = None
        self._fatal_reason = ""
        self._warned: set[str] = set()
        self._notify = notify
        self._told: set[str] = set()
        self._told_lock = threading.Lock()
        self._use_ack = config.use_ack
        self._acks = AckTracker(config.max_pending_acks)
        self._last_poll = time.monotonic()
        self._pooled = False  # a kept-alive connection may be waiting in the pool
        self._channel = str(uuid.uuid4())
        self._session = self._new_session()
        self._settings: tuple[requests.Session, dict[str, Any]] | None = None
        _live.add(self)

    def __repr__(self) -> str:
        return f"HECTransport(url={self.config.url!r})"

    # ---------------------------------------------------------------- public
    @property
    def channel(self) -> str:
        """The ``X-Splunk-Request-Channel`` value (renewed after fork)."""
        return self._channel

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def acks_enabled(self) -> bool:
        return self._use_ack

    def send(self, envelopes: Sequence[bytes], deadline: float | None = None) -> SendReport:
        """Deliver ``envelopes`` (blocking) until accepted, refused, or ``deadline`` passes.

        ``deadline`` is a ``time.monotonic()`` value; by default now + the policy's deadline.
        It bounds everything, a receiver that trickles its answer included. Everything logged
        meanwhile (our warnings, the HTTP stack's lines) is marked as py-mdr's own, so a py-mdr
        handler on the same loggers never ships it back, whoever called.
        """
        with sending():
            return self._send(envelopes, deadline)

    def _send(self, envelopes: Sequence[bytes], deadline: float | None) -> SendReport:
        report = SendReport()
        if not envelopes:
            return report
        if deadline is None:
            deadline = time.monotonic() + self._policy.deadline
        if self._stopped(report, [list(envelopes)]):
            return report
        cfg = self.config
        bodies, oversize = plan_bodies(
            envelopes,
            max_body_bytes=cfg.max_body_bytes,
            max_batch_events=cfg.max_batch_events,
            max_event_bytes=cfg.max_event_bytes,
        )
        if oversize:  # max_event_bytes alone decides: a larger-than-body envelope travels alone
            self._drop(
                report,
                "oversize",
                HECRejectedError(
                    f"{oversize} envelope(s) larger than max_event_bytes "
                    f"({cfg.max_event_bytes} bytes) were not sent"
                ),
                count=oversize,
            )
        self._deliver(deque(bodies), report, deadline)
        if (
            self._use_ack
            and not self._closed
            and time.monotonic() - self._last_poll >= cfg.ack_poll_interval
        ):
            self._poll_acks(deadline)
        return report

    def wait_for_acks(self, deadline: float) -> bool:
        """Poll until every pending ackId is confirmed (True) or ``deadline`` passes (False)."""
        with sending():
            return self._wait_for_acks(deadline)

    def _wait_for_acks(self, deadline: float) -> bool:
        interval = 0.05
        while True:
            if not self._use_ack or not self._acks:
                return True
            if self._closed:
                return False
            self._poll_acks(deadline)
            if not self._use_ack or not self._acks:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._pause_until_closed(min(interval, remaining)):
                return False
            interval = min(interval * 2, self.config.ack_poll_interval)

    def health(self, timeout: float = 5.0) -> HealthReport:
        """Ask ``/services/collector/health``, all within ``timeout``; never raises.

        A 2xx that is not HEC's "healthy" (code 17) is not healthy: something else answered.
        """
        if self._closed:
            return HealthReport(False, None, None, "", "the transport is closed")
        cfg = self.config
        url = cfg.url + HEALTH_PATH
        scope = Deadline(time.monotonic() + timeout)
        response = None
        try:
            with sending(), scope:
                response = self._session.get(
                    url,
                    timeout=_timeout(cfg.connect_timeout, timeout, timeout),
                    verify=cfg.verify,
                    cert=cfg.cert,
                    allow_redirects=False,
                )
        except Exception as exc:  # a health probe reports; it does not raise
            if not scope.fired:
                failure = self._failure(exc, timeout, scope)
                self._tell(failure.kind, failure.error)
                return HealthReport(False, None, None, "", str(failure.error))
        if response is None or scope.fired:  # cut off, maybe after the status line
            return HealthReport(
                False,
                None,
                None,
                "",
                f"no complete answer from {url} in time: the {timeout:g} s timeout passed "
                "while it was still answering",
            )
        answer = parse_answer(response.content)
        text = self._scrub(answer.text or response.reason or "")
        status = response.status_code
        if 200 <= status < 400 and answer.hec_code != HEALTHY_CODE:
            error = not_hec_error(
                url,
                status,
                answer,
                location=response.headers.get("Location"),
                scrub=self._scrub,
                expected=HEALTHY_CODE,
            )
            return HealthReport(False, status, answer.hec_code, text, str(error))
        return HealthReport(status == 200, status, answer.hec_code, text)

    def hurry(self, deadline: float) -> None:
        """Cut a pending backoff short and end every send by ``deadline`` (a monotonic instant):
        the owner is closing, and a retry now may still deliver what a long backoff would not."""
        with self._nudge:
            self._hurry_by = min(self._hurry_by, deadline)
            self._hurries += 1
            self._nudge.notify_all()

    def close(self) -> None:
        """Stop: interrupt a pending backoff at once, refuse later sends, release the pool."""
        self._closed = True
        with self._nudge:
            self._nudge.notify_all()
        try:
            with sending():
                self._session.close()
        except Exception:  # closing must not fail the caller
            log.debug("closing the HTTP session failed", exc_info=True)

    def stats(self) -> TransportStats:
        acks = self._acks
        return self._counters.snapshot(acks_pending=len(acks), events_awaiting_ack=acks.events())

    def reset_after_fork(self) -> None:
        """In a forked child: own session (sockets belong to the parent), new channel, new locks."""
        self._counters.reset_lock()
        self._told_lock = threading.Lock()
        self._nudge = threading.Condition()
        self._hurry_by = math.inf  # the parent's closing is not the child's
        self._acks.clear()  # the parent owns those acknowledgements
        self._channel = str(uuid.uuid4())
        self._pooled = False
        self._session = self._new_session()  # the parent's session is abandoned, not closed

    # -------------------------------------------------------------- delivery
    def _new_session(self) -> requests.Session:
        session = new_session(pool_maxsize=2)
        session.auth = self._auth
        session.headers.update(
            {
                "Content-Type": "application/json",
                "User-Agent": f"py-mdr/{__version__}",
                "X-Splunk-Request-Channel": self._channel,
            }
        )
        return session

    def _stopped(self, report: SendReport, pieces: list[list[bytes]]) -> bool:
        """Refuse at once when closed or after a permanent error."""
        if self._closed:
            self._drop(report, "closed", HECClosedError("the HEC transport is closed"), *pieces)
            return True
        if self._fatal is not None:
            self._drop(report, self._fatal_reason, self._fatal, *pieces)
            return True
        return False

    def _deliver(self, queue: deque[list[bytes]], report: SendReport, deadline: float) -> None:
        attempt = 0
        while queue:
            piece = queue.popleft()
            if self._stopped(report, [piece, *queue]):
                return
            deadline = min(deadline, self._hurry_by)
            hurries = self._hurries  # a hurry from here on cuts this attempt's backoff short
            if deadline - time.monotonic() <= 0:
                self._give_up(report, [piece, *queue], report.error)
                return
            outcome = self._post(piece, deadline, report)
            answer = outcome.answer
            bad = answer.invalid_event_number
            if bad is not None and not 0 <= bad < len(piece):
                bad = None  # an index outside the body cannot be trusted
            action = classify(outcome.status, answer.hec_code, bad)
            if action is Action.OK:
                self._accepted(piece, answer, report)
                attempt = 0
                continue
            failure = outcome.failure
            error = failure.error if failure is not None else self._answer_error(outcome, action)
            earlier = report.error
            if (
                isinstance(error, HECTimeoutError)
                and earlier is not None
                and not isinstance(earlier, HECTimeoutError)
                and deadline - time.monotonic() <= 0
            ):
                error = earlier  # the deadline cut the last try short: the tries before say why
            report.error = error
            self._counters.error(str(error))
            if failure is not None:
                self._tell(failure.kind, error)
            if failure is not None and failure.unresolved and not self.config.retry_unresolved:
                self._drop(report, "unresolved", error, piece, *queue)
                return
            if failure is not None and not failure.retryable:
                self._drop(
                    report, "tls" if failure.kind == "tls" else "request_error", error, piece
                )
            elif action is Action.RETRY:
                wait = self._policy.backoff(attempt, outcome.retry_after)
                if time.monotonic() + wait >= deadline:
                    self._give_up(report, [piece, *queue], error)
                    return
                log.debug("HEC send failed (%s); retrying in %.3f s", error, wait)
                if self._pause(wait, hurries):
                    closed = HECClosedError("the HEC transport was closed while waiting to retry")
                    self._drop(report, "closed", closed, piece, *queue)
                    return
                attempt += 1
                self._resend(queue, report, piece)
            elif action is Action.SPLIT or action is Action.BISECT:  # each half on its own
                if len(piece) == 1:  # the one too large, or the bad one
                    reason = "oversize" if action is Action.SPLIT else "bad_event"
                    self._drop(report, reason, error, piece)
                else:
                    half = len(piece) // 2
                    self._resend(queue, report, piece[:half], piece[half:])
            elif action is Action.PARTIAL and bad is not None:
                self._accepted(piece[:bad], _NO_ANSWER, report)
                self._drop(report, "bad_event", error, piece[bad : bad + 1])
                if bad + 1 < len(piece):
                    self._resend(queue, report, piece[bad + 1 :])
            elif action is Action.PERMANENT:
                if bad:  # within the body (checked above): the envelopes before it were taken
                    self._accepted(piece[:bad], _NO_ANSWER, report)
                    piece = piece[bad:]
                reason = drop_reason(outcome.status, answer.hec_code)
                self._set_fatal(error, reason)
                self._tell(reason, error)
                self._drop(report, reason, error, piece, *queue)
                return
            elif action is Action.NOT_HEC:
                self._tell("not_hec", error)
                self._drop(report, "not_hec", error, piece)
            elif action is Action.ACK_DISABLED and self._use_ack:
                self._disable_acks(error)
                self._resend(queue, report, piece)
            else:
                self._drop(report, drop_reason(outcome.status, answer.hec_code), error, piece)

    def _pause_until_closed(self, seconds: float) -> bool:
        """Wait ``seconds``, less if the transport closes (then True)."""
        with self._nudge:
            return self._nudge.wait_for(lambda: self._closed, seconds)

    def _pause(self, seconds: float, hurries: int) -> bool:
        """Back off for ``seconds``, less if closed (then True) or hurried since the attempt
        that failed (``hurries`` is the count it saw)."""
        with self._nudge:
            self._nudge.wait_for(lambda: self._closed or self._hurries != hurries, seconds)
        return self._closed

    def _resend(self, queue: deque[list[bytes]], report: SendReport, *pieces: list[bytes]) -> None:
        """Put ``pieces`` (in order) at the front of the queue; one retry, every event counted."""
        queue.extendleft(reversed(pieces))
        report.retries += 1
        self._counters.retried(sum(map(len, pieces)))

    def _give_up(
        self, report: SendReport, pieces: list[list[bytes]], error: HECError | None
    ) -> None:
        if error is None:
            error = HECTimeoutError(f"{DEADLINE_PASSED} before the events could be sent")
        elif not error.text.startswith(DEADLINE_PASSED):
            error = HECTimeoutError(
                f"{DEADLINE_PASSED}; last error: {error}",
                status=error.status,
                hec_code=error.hec_code,
            )
        self._drop(report, "deadline", error, *pieces)

    def _accepted(self, piece: list[bytes], answer: HECAnswer, report: SendReport) -> None:
        count = len(piece)
        if not count:
            return
        report.delivered += count
        self._counters.sent(count)
        if not self._use_ack:
            return
        if answer is _NO_ANSWER:  # taken before a bad event: that answer carries no ackId
            self._counters.unconfirmed(count)
            return
        if answer.ack_id is None:
            self._warn_once(
                "no-ack-id",
                "acknowledgements are on, but the receiver's answer "
                "had no ackId; its events count as delivered without confirmation",
            )
            self._counters.unconfirmed(count)
            return
        forgotten = self._acks.add(answer.ack_id, piece, time.monotonic())
        if forgotten:
            self._counters.unconfirmed(forgotten)
            self._warn_once(
                "ack-overflow",
                f"more than {self.config.max_pending_acks} bodies "
                "await acknowledgement; the oldest count as delivered unconfirmed",
            )

    def _send_settings(self, session: requests.Session) -> dict[str, Any]:
        """What ``Session.request`` works out from the environment (proxies, CA bundle) on
        every call, worked out once per session: ``os.environ`` is walked per request else."""
        settings = self._settings
        if settings is None or settings[0] is not session:
            cfg = self.config
            merged: dict[str, Any] = dict(
                session.merge_environment_settings(self._event_url, {}, None, cfg.verify, cfg.cert)
            )
            settings = (session, merged)
            self._settings = settings
        return settings[1]

    def _post(self, piece: list[bytes], deadline: float, report: SendReport) -> _Outcome:
        """One POST of ``piece``, plus one immediate retry if a pooled connection was dead.

        Each attempt runs inside the send's :class:`Deadline`, so neither a trickled answer
        nor the retry on a fresh connection can run past it.
        """
        cfg = self.config
        data = join_body(piece)
        headers = None
        if cfg.compress:
            data = gzip_body(data, cfg.compress_level)
            headers = {"Content-Encoding": "gzip"}
        outcome = _Outcome(
            failure=Failure(HECTimeoutError(f"{DEADLINE_PASSED} before the request"))
        )
        for fresh in (False, True):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return outcome
            wait = min(cfg.read_timeout, remaining)
            self._counters.request(len(data))
            scope = Deadline(deadline)
            try:
                with scope:
                    session = self._session
                    request = requests.Request("POST", self._event_url, data=data, headers=headers)
                    response = session.send(
                        session.prepare_request(request),
                        timeout=_timeout(cfg.connect_timeout, cfg.read_timeout, remaining),
                        allow_redirects=False,
                        **self._send_settings(session),
                    )
            except requests.exceptions.ConnectionError as exc:
                stale = (
                    not fresh
                    and self._pooled
                    and not self._closed
                    and not scope.fired
                    and not isinstance(
                        exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)
                    )
                    and not connect_failed(exc)
                )
                self._pooled = False
                outcome = _Outcome(
                    failure=self._failure(exc, min(cfg.read_timeout, remaining), scope)
                )
                if stale:
                    log.debug("a pooled HEC connection was dead; retrying on a fresh one")
                    self._session.close()  # drop every pooled connection
                    report.retries += 1
                    self._counters.retried(len(piece))
                    continue
                return outcome
            except Exception as exc:  # anything else is reported, never raised
                self._pooled = False
                return _Outcome(failure=self._failure(exc, wait, scope))
            if scope.fired:  # the deadline cut the answer short: no answer, a timeout
                self._pooled = False
                return _Outcome(failure=self._failure(TimeoutError(), wait, scope))
            self._pooled = True
            return _Outcome(
                status=response.status_code,
                answer=parse_answer(response.content),
                reason=response.reason or "",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                location=response.headers.get("Location"),
            )
        return outcome  # the fresh connection failed too

    def _failure(self, exc: BaseException, read_timeout: float, scope: Deadline) -> Failure:
        """A failure without an answer, as a typed error in our own words (never the token)."""
        return failure_of(
            exc,
            url=self.config.url,
            host=self._host,
            read_timeout=read_timeout,
            cut=scope.fired,
            scrub=self._scrub,
            verify=self.config.verify,
            names=lambda: certificate_names(
                self.config.url,
                self.config.verify,
                min(scope.remaining(), self.config.connect_timeout),
            ),
        )

    def _answer_error(self, outcome: _Outcome, action: Action) -> HECError:
        status = outcome.status
        if action is Action.NOT_HEC and status is not None:
            return not_hec_error(
                self.config.url,
                status,
                outcome.answer,
                location=outcome.location,
                scrub=self._scrub,
            )
        return answer_error(
            status, outcome.answer, outcome.reason, index=self.config.index, scrub=self._scrub
        )

    # ----------------------------------------------------------------- acks
    def _poll_acks(self, deadline: float) -> None:
        cfg = self.config
        ids = self._acks.ids()
        url = f"{cfg.url}{ACK_PATH}?channel={self._channel}"
        for start in range(0, len(ids), _ACK_CHUNK):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                return
            body = json.dumps({"acks": ids[start : start + _ACK_CHUNK]}).encode()
            scope = Deadline(deadline)
            try:
                with scope:
                    response = self._session.post(
                        url,
                        data=body,
                        timeout=_timeout(cfg.connect_timeout, cfg.read_timeout, remaining),
                        verify=cfg.verify,
                        cert=cfg.cert,
                        allow_redirects=False,
                    )
            except Exception as exc:  # polling failures only delay confirmation
                self._pooled = False
                failure = self._failure(exc, remaining, scope)
                log.debug("acknowledgement poll failed: %s", failure.error)
                return
            answer = parse_answer(response.content)
            if response.status_code == 200 and answer.acks is not None:
                self._acks.confirm(answer.acks)
            elif classify(response.status_code, answer.hec_code) is Action.ACK_DISABLED:
                self._disable_acks(
                    HECError(
                        self._scrub(answer.text),
                        status=response.status_code,
                        hec_code=answer.hec_code,
                    )
                )
                return
            else:
                log.debug("acknowledgement poll answered HTTP %s", response.status_code)
                return
        self._last_poll = time.monotonic()
        for envelopes in self._acks.expired(self._last_poll, cfg.ack_timeout):
            self._warn_once(
                "ack-resend",
                "a body stayed unacknowledged past ack_timeout; "
                "resending it (the receiver may get duplicates)",
            )
            bodies, _ = plan_bodies(
                envelopes,
                max_body_bytes=cfg.max_body_bytes,
                max_batch_events=cfg.max_batch_events,
                max_event_bytes=cfg.max_event_bytes,
            )
            self._counters.retried(len(envelopes))
            self._deliver(deque(bodies), SendReport(), deadline)

    def _disable_acks(self, error: HECError) -> None:
        self._use_ack = False
        self._counters.unconfirmed(self._acks.clear())
        self._warn_once(
            "ack-disabled",
            f"the receiver does not do acknowledgements ({error}); "
            "acknowledgement polling is off for this endpoint",
        )

    # ------------------------------------------------------------ reporting
    def _drop(
        self,
        report: SendReport,
        reason: str,
        error: HECError | None,
        *pieces: Sequence[bytes],
        count: int = 0,
    ) -> None:
        """Count ``pieces`` (and ``count`` more) as dropped; keep them if they may pass later."""
        count += sum(map(len, pieces))
        if count <= 0:
            return
        report.drop(reason, count, error)
        if resendable(reason):
            for piece in pieces:
                report.undelivered.extend(piece)
        self._counters.dropped(reason, count)
        if error is not None:
            self._counters.error(str(error))
        # Debug only: losses reach the user through the report and ``notify`` (the doors tell
        # them on stderr), never through ``logging``, which may lead back into py-mdr.
        log.debug("dropped %d event(s) (%s): %s", count, reason, error or "no detail")

    def _set_fatal(self, error: HECError, reason: str) -> None:
        if self._fatal is None:
            self._fatal, self._fatal_reason = error, reason
            log.debug("refused for good (%s): %s", reason, error)  # ``notify`` hears of it

    def _tell(self, kind: str | None, error: HECError) -> None:
        """Call ``notify`` the first time ``kind`` comes up; it may not break the transport."""
        notify = self._notify
        if kind is None or notify is None:
            return
        with self._told_lock:
            if kind in self._told:
                return
            self._told.add(kind)
        try:
            notify(kind, error)
        except Exception:
            log.debug("the notify callback failed", exc_info=True)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    def _scrub(self, text: str) -> str:
        """Remove the token (also as repr or JSON would escape it) from foreign text."""
        for form in self._token_forms:
            if form in text:
                text = text.replace(form, "<token>")
        return text
