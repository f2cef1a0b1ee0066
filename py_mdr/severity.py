"""The one severity table: Python logging levels and OTel severity numbers to OCSF severity.

Both front doors use it, so a WARNING line has the same ``severity_id`` whether it came through
``MDRHandler`` or through OpenTelemetry. Lookups are tuple indexing into precomputed tables
because they run for every record.
"""

from __future__ import annotations

UNKNOWN = (0, "Unknown")
TRACE = (99, "Trace")
DEBUG = (99, "Debug")
INFORMATIONAL = (1, "Informational")
MEDIUM = (3, "Medium")
HIGH = (4, "High")
CRITICAL = (5, "Critical")

# Python levels in steps of ten: below DEBUG, DEBUG, INFO, WARNING, ERROR, CRITICAL and above.
_PYTHON_BANDS = (UNKNOWN, DEBUG, INFORMATIONAL, MEDIUM, HIGH, CRITICAL)
_PYTHON_TABLE = tuple(_PYTHON_BANDS[min(level // 10, 5)] for level in range(60))

# OTel SeverityNumber 0..24: UNSPECIFIED, TRACE 1-4, DEBUG 5-8, INFO 9-12, WARN 13-16,
# ERROR 17-20, FATAL 21-24.
_OTEL_TABLE = (
    UNKNOWN,
    *(TRACE,) * 4,
    *(DEBUG,) * 4,
    *(INFORMATIONAL,) * 4,
    *(MEDIUM,) * 4,
    *(HIGH,) * 4,
    *(CRITICAL,) * 4,
)

# Severity texts, for OTel records that carry a text but no number.
_OTEL_TEXT = {
    "TRACE": TRACE,
    "DEBUG": DEBUG,
    "INFO": INFORMATIONAL,
    "INFORMATION": INFORMATIONAL,
    "NOTICE": INFORMATIONAL,
    "WARN": MEDIUM,
    "WARNING": MEDIUM,
    "ERROR": HIGH,
    "FATAL": CRITICAL,
    "CRITICAL": CRITICAL,
}


def from_python_level(levelno: int) -> tuple[int, str]:
    """``(severity_id, severity)`` for a ``logging`` level number; custom levels fall in a band."""
    if type(levelno) is int and 0 <= levelno < 60:
        return _PYTHON_TABLE[levelno]
    try:
        level = int(levelno)
    except (TypeError, ValueError, OverflowError):
        return UNKNOWN
    return CRITICAL if level >= 60 else _PYTHON_TABLE[level] if level >= 0 else UNKNOWN


def from_otel_severity(number: int) -> tuple[int, str]:
    """``(severity_id, severity)`` for an OTel ``SeverityNumber`` value (the enum or its int).

    Numbers above 24 count as FATAL; negative or unreadable ones as unknown.
    """
    if type(number) is not int:
        number = getattr(number, "value", number)  # SeverityNumber is a plain Enum, no IntEnum
    if type(number) is int and 0 <= number <= 24:
        return _OTEL_TABLE[number]
    value = number
    try:
        level = int(value)
    except (TypeError, ValueError, OverflowError):
        return UNKNOWN
    if level > 24:
        return CRITICAL
    return _OTEL_TABLE[level] if level >= 0 else UNKNOWN


def from_otel_text(text: str) -> tuple[int, str]:
    """Severity for an OTel severity text alone (``WARN``, ``error``, ...); unknown otherwise."""
    return _OTEL_TEXT.get(text.strip().upper(), UNKNOWN) if isinstance(text, str) else UNKNOWN
