"""Which unit an OCSF ``timestamp_t`` looks like it was written in, when not milliseconds.

OCSF times are milliseconds since the epoch. Seconds (``time.time()``), microseconds and
nanoseconds (OpenTelemetry, ``time.time_ns()``) are common mistakes that no type check catches:
they are whole numbers too, but land in January 1970 or far in the future. Each unit is judged
by the span it would cover for the dates 1973 to 5138, which never overlap.
"""

from __future__ import annotations

__all__ = ["MILLISECONDS", "advice", "suspect_unit"]

#: Milliseconds for the dates 1973-03-03 to 5138-11-16: what a plausible ``timestamp_t`` is.
MILLISECONDS = (10**11, 10**14)

_UNITS = (
    (10**8, 10**11, "seconds", "multiply it by 1000"),
    (10**14, 10**17, "microseconds", "divide it by 1000"),
    (10**17, 10**20, "nanoseconds", "divide it by 1000000"),
)


def suspect_unit(value: int) -> str | None:
    """``"seconds"``, ``"microseconds"`` or ``"nanoseconds"`` when ``value`` reads as a date
    in that unit and not in milliseconds; ``None`` otherwise (also for values of no unit)."""
    if MILLISECONDS[0] <= value < MILLISECONDS[1]:
        return None
    for low, high, unit, _ in _UNITS:
        if low <= value < high:
            return unit
    return None


def advice(value: int, unit: str) -> str:
    """The message for a value that looks like ``unit``: what it is and how to fix it."""
    fix = next(text for _, _, name, text in _UNITS if name == unit)
    return f"{value} looks like {unit} since the epoch, but OCSF timestamp_t is milliseconds: {fix}"
