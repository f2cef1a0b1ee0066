"""When to try again and how long to wait: pure arithmetic, so it is testable without a network."""

from __future__ import annotations

import datetime
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from py_mdr.checks import seconds
from py_mdr.errors import ConfigError
from py_mdr.hec.codes import Action, classify


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by an overall deadline per send.

    Full jitter (a uniform wait between 0 and the exponential cap) keeps many senders that failed
    together from retrying together.
    """

    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    multiplier: float = 2.0
    deadline: float = 60.0  # overall seconds for one send, retries included

    def __post_init__(self) -> None:
        for name in ("initial_backoff", "max_backoff"):
            seconds(f"RetryPolicy.{name}", getattr(self, name), zero_ok=True)
        seconds("RetryPolicy.deadline", self.deadline)
        multiplier = self.multiplier
        if not (
            isinstance(multiplier, (int, float))
            and not isinstance(multiplier, bool)
            and math.isfinite(multiplier)
            and multiplier >= 1
        ):
            raise ConfigError(
                f"RetryPolicy.multiplier must be a finite number >= 1, got {multiplier!r}"
            )

    def cap(self, attempt: int) -> float:
        """The upper bound of the jittered wait before retry number ``attempt`` (0-based)."""
        try:
            grown = self.initial_backoff * self.multiplier ** max(attempt, 0)
        except OverflowError:
            return self.max_backoff
        return min(self.max_backoff, grown)

    def backoff(
        self,
        attempt: int,
        retry_after: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry ``attempt``; a server's Retry-After is a floor we honour."""
        wait = rng() * self.cap(attempt)
        if retry_after is not None and retry_after > wait:
            return retry_after
        return wait

    def retryable(self, status: int | None, hec_code: int | None) -> bool:
        """Whether this answer is worth sending again after a wait.

        Yes for no answer at all (``status`` None), HTTP 408, 429, 500, 502, 503, 504 and the HEC
        codes of a busy or unhealthy receiver (8, 9, 18, 19, 20); no for a refused token, index
        or event, which need someone to act first.
        """
        return classify(status, hec_code) is Action.RETRY


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); None if unusable.

    A date in the past means "now" (0). Garbage is ignored rather than trusted, and never raises:
    the header comes from the network.
    """
    if not value:
        return None
    text = value.strip()
    try:
        # float(), not int(): int() refuses digit runs over 4,300 long and non-ASCII digits
        # such as a Latin-1 "\u00b2", which str.isdigit() accepts
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        import email.utils  # rare (a Retry-After date); not loaded on import

        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        # HTTP dates are always GMT; the asctime form (and "-0000") carry no zone of their own
        when = when.replace(tzinfo=datetime.timezone.utc)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
