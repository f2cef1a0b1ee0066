"""The HEC response table as one function: what the sender does next for each answer."""

from __future__ import annotations

import enum

#: HEC codes that mean "the token is not accepted": nothing will get through until someone acts.
AUTH_CODES = frozenset({1, 2, 3, 4})
#: HEC codes worth retrying: internal error, busy, unhealthy queues.
RETRY_CODES = frozenset({8, 9, 18, 19, 20})
#: HTTP statuses worth retrying: throttled, gateway trouble, server error.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: HEC codes that blame an event of the body (bad format, no or blank event, nested fields).
BAD_EVENT_CODES = frozenset({6, 12, 13, 15})
SUCCESS_CODE = 0
INDEX_CODE = 7
ACK_DISABLED_CODE = 14


class Action(enum.Enum):
    """The sender's move for one answer."""

    OK = "ok"  # accepted
    NOT_HEC = "not_hec"  # a 2xx without HEC's success, or a redirect: not HEC that answered
    RETRY = "retry"  # back off, then send the same body again
    PERMANENT = "permanent"  # stop: auth or index problem, later sends fail fast
    SPLIT = "split"  # body too large: send each half
    PARTIAL = "partial"  # envelopes before N accepted, N is bad, resend the rest
    BISECT = "bisect"  # a bad event somewhere, not said which: send each half to find it
    DROP_BATCH = "drop_batch"  # the body was refused as it is; resending would not help
    ACK_DISABLED = "ack_disabled"  # the endpoint does not do acknowledgements


def classify(
    status: int | None, hec_code: int | None, invalid_event_number: int | None = None
) -> Action:
    """Map (HTTP status, HEC code) to an :class:`Action`; ``status`` None means no answer."""
    if status is None:
        return Action.RETRY  # connection error or timeout: "unknown", not "lost"
    if 200 <= status < 300:
        return Action.OK if hec_code == SUCCESS_CODE else Action.NOT_HEC
    if 300 <= status < 400:
        return Action.NOT_HEC  # HEC never redirects; a proxy's login does
    if status in (401, 403) or hec_code in AUTH_CODES:
        return Action.PERMANENT
    if hec_code == INDEX_CODE:
        return Action.PERMANENT
    if status == 413:
        return Action.SPLIT
    if hec_code == ACK_DISABLED_CODE:
        return Action.ACK_DISABLED
    if status in RETRY_STATUSES or hec_code in RETRY_CODES:
        return Action.RETRY
    if status == 400 and invalid_event_number is not None:
        return Action.PARTIAL
    if status == 400 and hec_code in BAD_EVENT_CODES:
        return Action.BISECT  # one bad event must not cost the others
    return Action.DROP_BATCH


def drop_reason(status: int | None, hec_code: int | None) -> str:
    """The counter name for events dropped on this answer."""
    if status is None:
        return "unreachable"
    if 200 <= status < 400:
        return "not_hec"
    if status in (401, 403) or hec_code in AUTH_CODES:
        return "auth"
    if hec_code == INDEX_CODE:
        return "index"
    return f"rejected_{status}"


#: Drop reasons that say nothing against the envelopes themselves: time or a fix of the
#: configuration (token, index, CA bundle, host) may let them through, so they are kept.
RESENDABLE_REASONS = frozenset(
    {
        "deadline",
        "closed",
        "unreachable",
        "unresolved",
        "request_error",
        "tls",
        "auth",
        "index",
        "not_hec",
    }
)


def resendable(reason: str) -> bool:
    """Whether envelopes dropped for ``reason`` belong in ``SendReport.undelivered``.

    A 5xx other than the retried ones (501, 507, ...) is the server's trouble, not the body's.
    """
    return reason in RESENDABLE_REASONS or reason.startswith("rejected_5")
