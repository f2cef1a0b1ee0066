"""The one severity table: Python levels and OTel severity numbers to OCSF severity."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from py_mdr.severity import from_otel_severity, from_otel_text, from_python_level

SCHEMA = Path(__file__).resolve().parents[1].parent / "shared" / "ocsf" / "ocsf-1.3.0.json"


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.NOTSET, (0, "Unknown")),
        (5, (0, "Unknown")),
        (9, (0, "Unknown")),
        (logging.DEBUG, (99, "Debug")),
        (19, (99, "Debug")),
        (logging.INFO, (1, "Informational")),
        (25, (1, "Informational")),
        (logging.WARNING, (3, "Medium")),
        (39, (3, "Medium")),
        (logging.ERROR, (4, "High")),
        (45, (4, "High")),
        (logging.CRITICAL, (5, "Critical")),
        (59, (5, "Critical")),
        (60, (5, "Critical")),
        (10_000, (5, "Critical")),
        (-1, (0, "Unknown")),
    ],
)
def test_python_levels_follow_the_table(level: int, expected: tuple[int, str]) -> None:
    assert from_python_level(level) == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (0, (0, "Unknown")),
        *((n, (99, "Trace")) for n in range(1, 5)),
        *((n, (99, "Debug")) for n in range(5, 9)),
        *((n, (1, "Informational")) for n in range(9, 13)),
        *((n, (3, "Medium")) for n in range(13, 17)),
        *((n, (4, "High")) for n in range(17, 21)),
        *((n, (5, "Critical")) for n in range(21, 25)),
        (25, (5, "Critical")),
        (-3, (0, "Unknown")),
    ],
)
def test_otel_numbers_follow_the_table(number: int, expected: tuple[int, str]) -> None:
    assert from_otel_severity(number) == expected


def test_otel_severity_number_enum_is_accepted() -> None:
    from opentelemetry._logs import SeverityNumber

    assert from_otel_severity(SeverityNumber.WARN2) == (3, "Medium")  # type: ignore[arg-type]
    assert from_otel_severity(SeverityNumber.UNSPECIFIED) == (0, "Unknown")  # type: ignore[arg-type]
    assert from_otel_severity(SeverityNumber.FATAL4) == (5, "Critical")  # type: ignore[arg-type]


def test_otel_severity_text_fallback() -> None:
    assert from_otel_text("warn") == (3, "Medium")
    assert from_otel_text(" ERROR ") == (4, "High")
    assert from_otel_text("FATAL") == (5, "Critical")
    assert from_otel_text("chatty") == (0, "Unknown")


def test_a_bool_or_garbage_level_does_not_raise() -> None:
    assert from_python_level(True) == (0, "Unknown")
    assert from_python_level("loud") == (0, "Unknown")  # type: ignore[arg-type]
    assert from_otel_severity(None) == (0, "Unknown")  # type: ignore[arg-type]


def test_severity_ids_exist_in_the_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    enum = schema["classes"]["event_log"]["attributes"]["severity_id"]["enum"]
    seen = {from_python_level(level) for level in range(0, 70)}
    seen |= {from_otel_severity(number) for number in range(0, 26)}
    for severity_id, caption in seen:
        assert str(severity_id) in enum
        if severity_id != 99:  # 99 (Other) carries the source's own word: Debug / Trace
            assert enum[str(severity_id)]["caption"] == caption


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_any_integer_maps_to_a_known_severity(level: int) -> None:
    assert from_python_level(level) in {
        (0, "Unknown"),
        (99, "Debug"),
        (1, "Informational"),
        (3, "Medium"),
        (4, "High"),
        (5, "Critical"),
    }
    assert from_otel_severity(level)[0] in {0, 99, 1, 3, 4, 5}
