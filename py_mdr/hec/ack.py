"""Indexer-acknowledgement bookkeeping: which accepted bodies still await their ``ackId``."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class PendingBody:
    envelopes: list[bytes]
    sent_at: float  # time.monotonic() when the receiver accepted it


class AckTracker:
    """Pending ackIds in the order they were issued, bounded by ``max_pending``.

    Beyond the bound the oldest are forgotten and counted as delivered but unconfirmed, so a
    receiver that never confirms cannot make memory grow without end.
    """

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self._pending: OrderedDict[int, PendingBody] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, ack_id: int, envelopes: list[bytes], now: float) -> int:
        """Remember one accepted body; returns how many events were forgotten to stay bounded."""
        self._pending.pop(ack_id, None)
        self._pending[ack_id] = PendingBody(envelopes, now)
        forgotten = 0
        while len(self._pending) > self.max_pending:
            _, oldest = self._pending.popitem(last=False)
            forgotten += len(oldest.envelopes)
        return forgotten

    def events(self) -> int:
        """How many events the pending bodies hold."""
        return sum(len(body.envelopes) for body in self._pending.values())

    def ids(self) -> list[int]:
        return list(self._pending)

    def confirm(self, acks: dict[int, bool]) -> int:
        """Forget the ids answered ``true``; returns how many events they covered."""
        done = 0
        for ack_id, ok in acks.items():
            if ok:
                body = self._pending.pop(ack_id, None)
                if body is not None:
                    done += len(body.envelopes)
        return done

    def expired(self, now: float, ack_timeout: float) -> list[list[bytes]]:
        """Remove and return the bodies unconfirmed for longer than ``ack_timeout`` seconds."""
        due = [i for i, body in self._pending.items() if now - body.sent_at >= ack_timeout]
        return [self._pending.pop(i).envelopes for i in due]

    def clear(self) -> int:
        """Forget everything; returns how many events were pending."""
        count = self.events()
        self._pending.clear()
        return count
