"""Telling the user what could not be delivered: on stderr, never through ``logging``.

``logging`` may lead straight back into py-mdr (the handler is often the only root handler, and
OpenTelemetry's logging handler may be the only way out of the process), so every line goes to
stderr. A permanent refusal (token, index, TLS trust, an unknown host name) is told once, at
once, with its fix; losses are told when they start, then summarized at most once a minute while
they go on; what is left at close is told once more, in words.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping

__all__ = ["SUMMARY_INTERVAL", "Reporter", "describe", "reason_words"]

#: Seconds between two summaries of ongoing losses.
SUMMARY_INTERVAL = 60.0

_WORDS = {
    "queue_full": "the memory queue was full",
    "oversize": "larger than the whole queue or than one HEC event may be",
    "closed": "logged or sent after close",
    "shutdown": "still queued when close ran out of time",
    "emit_error": "could not be captured in the logging call",
    "mapping_error": "could not be turned into an OCSF event",
    "unmappable": "could not be turned into an OCSF event",
    "error": "a failure inside py-mdr (traceback shown once)",
    "deadline": "not accepted by MDR before the send deadline",
    "unreachable": "MDR could not be reached",
    "request_error": "the HTTP request could not be made",
    "auth": "MDR refused the token",
    "index": "MDR refused the index",
    "tls": "the TLS connection to MDR failed",
    "dns": "the host name of MDR does not resolve",
    "bad_event": "MDR refused them as malformed",
    "not_hec": "the endpoint did not answer like HEC",
    "spool_full": "the spool was full (the oldest were dropped)",
    "spool_damaged": "damaged on disk in the spool",
}

_PERMANENT_EFFECT = {
    True: "records are kept in the spool until this is fixed (or the spool is full)",
    False: "records are dropped until this is fixed",
}


def reason_words(reason: str) -> str:
    """A drop reason (``queue_full``, ``rejected_400``, ...) in words."""
    words = _WORDS.get(reason)
    if words is not None:
        return words
    if reason.startswith("rejected_"):
        return f"refused by MDR with HTTP {reason[len('rejected_') :]}"
    return reason.replace("_", " ")


def describe(dropped: Mapping[str, int]) -> str:
    """``12 queue_full (the memory queue was full), 3 deadline (...)``, largest first."""
    parts = sorted(dropped.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count} {reason} ({reason_words(reason)})" for reason, count in parts)


def _write(line: str) -> None:
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(line if line.endswith("\n") else line + "\n")
        stream.flush()
    except Exception:  # stderr closed (interpreter exit): nothing left to tell
        pass


class Reporter:
    """The stderr voice of one delivery; ``who`` names the door and the endpoint."""

    def __init__(
        self,
        who: str,
        *,
        spooled: bool = False,
        clock: Callable[[], float] = time.monotonic,
        write: Callable[[str], None] = _write,
    ) -> None:
        self.who = who
        self.spooled = spooled
        self._clock = clock
        self._write = write
        self._lock = threading.Lock()
        self._told: set[str] = set()
        self._reported: dict[str, int] = {}
        self._last_line: float | None = None

    def say(self, text: str) -> None:
        """One line, prefixed with who is speaking."""
        self._write(f"py-mdr: {self.who}: {text}")

    def once(self, key: str, text: str) -> bool:
        """Say ``text`` the first time ``key`` comes up; True when it was said now."""
        with self._lock:
            if key in self._told:
                return False
            self._told.add(key)
        self.say(text)
        return True

    def refused(self, kind: str, error: BaseException) -> None:
        """A permanent refusal or misconfiguration: once per kind, with its consequence."""
        self.once(f"refused:{kind}", f"{error}; {_PERMANENT_EFFECT[self.spooled]}")

    def losses(self, dropped: Mapping[str, int], last_error: str | None = None) -> None:
        """Given the running totals: tell new losses when they start, else once a minute."""
        now = self._clock()
        with self._lock:
            new = {
                reason: count - self._reported.get(reason, 0)
                for reason, count in dropped.items()
                if count > self._reported.get(reason, 0)
            }
            if not new:
                return
            if self._last_line is not None and now - self._last_line < SUMMARY_INTERVAL:
                return
            starting = self._last_line is None or not self._reported
            self._reported = dict(dropped)
            self._last_line = now
        total = sum(new.values())
        what = "started losing records" if starting else f"lost {total} more record(s)"
        line = f"{what}: {describe(new)}"
        if last_error:
            line += f"; most recent error: {last_error}"
        self.say(line)

    def final(
        self,
        *,
        sent: int,
        dropped: Mapping[str, int],
        in_flight: int = 0,
        left_in_spool: int = 0,
        spool_dir: str | None = None,
        unconfirmed: int = 0,
        last_error: str | None = None,
    ) -> None:
        """The closing summary, when anything was lost, left behind or left unconfirmed."""
        parts = []
        lost = sum(dropped.values())
        if lost:
            parts.append(f"{lost} record(s) not delivered: {describe(dropped)}")
        if in_flight:
            parts.append(f"{in_flight} still being sent at close (outcome unknown)")
        if unconfirmed:
            parts.append(f"{unconfirmed} accepted by MDR but not acknowledged before close")
        if left_in_spool:
            parts.append(
                f"{left_in_spool} left in the spool {spool_dir} for the next process using it"
            )
        if not parts:
            return
        line = f"at close: {'; '.join(parts)}; {sent} sent"
        if last_error and lost:
            line += f"; most recent error: {last_error}"
        self.say(line)
