"""What ``py-mdr send`` tells: the tally behind its summary line and exit code, and the
messages and progress line it writes to stderr while sending."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TextIO

from py_mdr.cli.prepare import Noted, Rejected

_SHOWN_REJECTIONS = 20  # messages printed; the rest are only counted
PROGRESS_EVERY = 0.5  # seconds between progress updates on a terminal


@dataclass
class Tally:
    """What happened, for the summary line and the exit code."""

    sent: int = 0
    rejected: int = 0
    coerced: int = 0  # values changed to fit their OCSF type
    odd_times: int = 0  # events with a time that looks like another unit than milliseconds
    places: list[str] = field(default_factory=list)  # the first few rejected places
    dropped: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None  # why sending ended before the input did
    interrupted: bool = False
    kept: int = 0  # left in the spool for the next run
    unconfirmed: int = 0  # being sent when interrupted: MDR may or may not have them
    spool_dir: str | None = None
    paused: str | None = None  # with a spool: why sending stopped while the input is kept

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def all_sent(self) -> bool:
        return not (self.rejected or self.dropped or self.stopped or self.interrupted or self.kept)

    def summary(self) -> str:
        text = f"{self.sent} sent, {self.rejected} rejected"
        if self.places:
            more = self.rejected - len(self.places)
            listed = ", ".join(self.places) + (f" and {more} more" if more > 0 else "")
            text += f" ({listed})"
        text += f", {self.dropped_total} dropped"
        if self.dropped:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(self.dropped.items())) + ")"
        if self.unconfirmed:
            text += f", {self.unconfirmed} not confirmed (interrupted while being sent)"
        if self.kept:
            text += f", {self.kept} kept in the spool {self.spool_dir} for the next run"
        if self.coerced:
            text += (
                f"; {self.coerced} value(s) changed to fit their OCSF type "
                "(`py-mdr validate` names them, --strict refuses them)"
            )
        if self.odd_times:
            text += f"; {self.odd_times} event(s) with a time that is not in milliseconds"
        return text


class Console:
    """Messages and, on a terminal, a throttled progress line on stderr."""

    def __init__(self, stream: TextIO, progress: bool) -> None:
        self.stream = stream
        self.progress = progress
        self.shown = 0
        self.noted = 0
        self._line = False
        self._next = time.monotonic() + PROGRESS_EVERY
        self._started = time.monotonic()

    def say(self, text: str) -> None:
        self._clear()
        print(f"py-mdr send: {text}", file=self.stream, flush=True)

    def reject(self, rejected: Rejected) -> None:
        if self.shown < _SHOWN_REJECTIONS:
            self.shown += 1
            self.say(f"{rejected.where}: {rejected.reason}")
        elif self.shown == _SHOWN_REJECTIONS:
            self.shown += 1
            self.say("further rejections are counted but not shown")

    def note(self, noted: Noted) -> None:
        """Say what was odd about an event that is sent anyway (the first few only)."""
        for warning in noted.warnings:
            if self.noted < _SHOWN_REJECTIONS:
                self.say(f"{noted.where}: {warning} (sent as written)")
            self.noted += 1

    def tick(self, tally: Tally) -> None:
        if not self.progress:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + PROGRESS_EVERY
        rate = tally.sent / max(now - self._started, 1e-9)
        text = (
            f"{tally.sent} sent, {tally.rejected} rejected, {tally.dropped_total} dropped "
            f"({rate:.0f}/s)"
        )
        self.stream.write(f"\r{text}\x1b[K")
        self.stream.flush()
        self._line = True

    def finish(self) -> None:
        self._clear()

    def _clear(self) -> None:
        if self._line:
            self.stream.write("\r\x1b[K")
            self._line = False
