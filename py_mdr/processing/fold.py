"""Storm folding: exact repeats of one record become one event with a count.

A retry loop logging the same error thousands of times a second would otherwise fill the
bounded queue, and the records that matter around it would be the ones dropped. So the logging
call itself (cheaply: one dict lookup) sends the first few occurrences of a record at once and
only counts the rest; when the window of the run ends, one more event goes out carrying
``count`` (the occurrences folded into it), ``start_time`` and ``end_time``.

A repeat is a record identical in logger, level, formatted message, exception text and
``extra=`` values. Records whose ``extra=`` values cannot be compared cheaply are never folded.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["DEFAULT_PASS", "DEFAULT_WINDOW", "Folder", "Summary", "fold_key"]

#: Seconds a run of repeats is gathered before its summary goes out.
DEFAULT_WINDOW = 1.0
#: Occurrences of a record sent as they are, in each window, before repeats are folded.
DEFAULT_PASS = 3
_MAX_RUNS = 4096  # records tracked at once; beyond that, the tracking starts afresh
_get_ident = threading.get_ident

T = TypeVar("T")


def fold_key(
    name: Any, level: Any, message: Any, exception: Any, extra: dict[Any, Any] | None
) -> int | None:
    """What makes two records repeats of each other, as a hash: a run keeps no reference to
    the record's values (an ``extra=`` value of megabytes must not stay alive for folding).
    None when it cannot be told cheaply."""
    try:
        if not extra:
            return hash((name, level, message, exception))
        return hash((name, level, message, exception, frozenset(extra.items())))
    except TypeError:  # a list or dict among the values: not worth the cost of comparing
        return None


@dataclass(frozen=True)
class Summary(Generic[T]):
    """A folded run: one sample record, how many repeats it stands for, and when they were."""

    sample: T
    count: int
    start: float  # seconds since the epoch
    end: float


# A run is a list, the cheapest thing to make in the logging call:
# [window opened, seen, folded, first folded, last folded, sample, hash of its message]
_OPENED, _SEEN, _FOLDED, _FIRST, _LAST, _SAMPLE, _DIGEST = range(7)


class Folder(Generic[T]):
    """Tracks runs of repeats; thread-safe (logging threads admit, the worker expires)."""

    def __init__(self, window: float = DEFAULT_WINDOW, passes: int = DEFAULT_PASS) -> None:
        """Fold repeats after the first ``passes`` in ``window`` seconds into one summary."""
        self.window = window
        self.passes = passes
        self._lock = threading.Lock()
        self._holder = 0
        self._runs: dict[Hashable, list[Any]] = {}
        # Hashes of the messages seen in this window (and of every live run's), each True while
        # the occurrence :meth:`new_message` let through is not yet counted by a run.
        self._messages: dict[int, bool] = {}
        self._messages_since = 0.0
        self.folded = 0  # occurrences counted into a summary instead of sent

    def new_message(self, message: str) -> bool:
        """True the first time ``message`` comes up in a window, and in no run: send the record
        without working out its whole key (its run, if repeats follow, counts it as its first).
        False: take the closer look of :meth:`admit`. Lock-free: a race costs at most one more
        record sent as it is."""
        digest = hash(message)
        messages = self._messages
        if digest in messages:
            return False
        if len(messages) >= _MAX_RUNS:  # many distinct messages: start afresh, runs kept
            messages = self._fresh_messages()
            if len(messages) >= _MAX_RUNS:
                return False
        messages[digest] = True
        return True

    def _fresh_messages(self) -> dict[int, bool]:
        """An empty window of seen messages but for those of the live runs (lock-free: the
        list of runs is taken in one step)."""
        live = (run[_DIGEST] for run in list(self._runs.values()))
        self._messages = messages = {digest: False for digest in live if digest is not None}
        return messages

    def admit(
        self, key: Hashable, when: float, item: T, message: str | None = None
    ) -> tuple[bool, Summary[T] | None]:
        """Whether to send ``item`` now; and a summary of the previous run, once it closed.

        ``message`` is the one given to :meth:`new_message` (if any), so that the occurrence it
        let through counts among the run's first few. A signal handler that logs while this
        thread is in here gets its record sent as it is (waiting for the lock this thread holds
        would never end).
        """
        ident = _get_ident()
        if self._holder == ident:
            return True, None
        with self._lock:
            self._holder = ident
            try:
                return self._admit(key, when, item, message)
            finally:
                self._holder = 0

    def _admit(
        self, key: Hashable, when: float, item: T, message: str | None
    ) -> tuple[bool, Summary[T] | None]:
        runs = self._runs
        run = runs.get(key)
        if run is None or when - run[_OPENED] >= self.window:
            if run is None and len(runs) >= _MAX_RUNS:
                return True, None  # too many kinds of record: no folding until expiry
            seen, digest = 1, None
            if message is not None:
                digest = hash(message)
                if self._messages.get(digest):  # new_message sent this run's first already
                    seen = 2
                self._messages[digest] = False
            runs[key] = [when, seen, 0, 0.0, 0.0, None, digest]
            return True, (_summary(run) if run is not None else None)
        run[_SEEN] += 1
        if run[_SEEN] <= self.passes:
            return True, None
        if not run[_FOLDED]:
            run[_FIRST] = when
            run[_SAMPLE] = item
        run[_FOLDED] += 1
        run[_LAST] = when
        self.folded += 1
        return False, None

    def expired(self, now: float) -> list[Summary[T]]:
        """Summaries of the runs whose window has ended (and those runs forgotten)."""
        new_window = now - self._messages_since >= self.window
        if not self._runs:
            if new_window:
                self._messages = {}  # a new window: every message is new again
                self._messages_since = now
            return []
        with self._lock:
            self._holder = _get_ident()
            try:
                runs = self._runs
                done = [key for key, run in runs.items() if now - run[_OPENED] >= self.window]
                summaries = [_summary(runs.pop(key)) for key in done]
                if new_window:  # every message is new again, but those of the live runs
                    self._fresh_messages()
                    self._messages_since = now
                return [summary for summary in summaries if summary is not None]
            finally:
                self._holder = 0

    def drain(self) -> list[Summary[T]]:
        """Every pending summary (at flush and close)."""
        with self._lock:
            self._holder = _get_ident()
            runs, self._runs = self._runs, {}
            self._holder = 0
        return [s for s in map(_summary, runs.values()) if s is not None]

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._holder = 0
        self._messages = {}
        self._runs = {}
        self.folded = 0


def _summary(run: list[Any]) -> Summary[Any] | None:
    if not run[_FOLDED] or run[_SAMPLE] is None:
        return None
    return Summary(run[_SAMPLE], run[_FOLDED], run[_FIRST], run[_LAST])
