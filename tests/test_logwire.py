"""The wire encoder writes exactly the event the dict path builds (then redacts), for any record."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_processing import LOOK_ALIKES, SECRETS, TOKEN

from py_mdr import __version__
from py_mdr.logmap import EVENT_TIME, compact, item_to_event
from py_mdr.logwire import LogWire
from py_mdr.processing import Redaction, Redactor

PRODUCT = {"name": "shop", "vendor_name": "acme.team", "version": 2}
_logger = logging.getLogger("test_logwire")


def _record(message: str, args: Any = (), **options: Any) -> logging.LogRecord:
    extra = options.pop("extra", None)
    exc_info = options.pop("exc_info", None)
    record = _logger.makeRecord(
        options.pop("name", "test_logwire"),
        options.pop("level", logging.INFO),
        options.pop("path", __file__),
        options.pop("line", 10),
        message,
        args,
        exc_info,
        func=options.pop("func", "here"),
        extra=extra,
        sinfo=options.pop("sinfo", None),
    )
    for key, value in options.items():
        setattr(record, key, value)
    return record


def _both(record: logging.LogRecord, redact: bool = True) -> tuple[Any, Any]:
    item = compact(record)
    wire = LogWire(PRODUCT, __version__, Redactor(Redaction(), [TOKEN]) if redact else None)
    body = wire.encode(item, PRODUCT)
    expected = item_to_event(item, PRODUCT, log_version=__version__)
    if redact:
        expected = Redactor(Redaction(), [TOKEN]).event(expected)
    return (json.loads(body) if body is not None else None), expected


def test_a_usual_record_is_written_as_the_dict_path_builds_it() -> None:
    record = _record("user %s did %s", ("alice", 3), extra={"order": 7, "tenant": "acme"})
    written, expected = _both(record)
    assert written == expected
    assert written["unmapped"]["extra"] == {"order": 7, "tenant": "acme"}


def test_exception_stack_and_odd_extra_values_too() -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        record = _record(
            "failed",
            exc_info=sys.exc_info(),
            sinfo="Stack (most recent call last):\n  here",
            extra={"blob": b"\x00\xff", "items": [1, {"a": None}], "empty": "", "n": 2.5},
            level=logging.ERROR,
        )
    written, expected = _both(record)
    assert written == expected and written["unmapped"]["exception"]["type"] == "KeyError"


def test_every_secret_of_the_corpus_is_redacted_and_labelled_alike() -> None:
    for kind, text, secret in SECRETS:
        record = _record(f"got {text} here", extra={"note": f"x {text}"})
        written, expected = _both(record)
        assert written == expected, kind
        assert secret not in json.dumps(written, ensure_ascii=False), kind
        assert "metadata" in written and written["metadata"].get("labels"), kind


def test_look_alikes_arrive_unchanged_either_way() -> None:
    for text in LOOK_ALIKES:
        written, expected = _both(_record(f"value {text}", extra={"v": text}))
        assert written == expected and written["unmapped"]["extra"]["v"] == text


def test_items_that_need_care_take_the_dict_path() -> None:
    wire = LogWire(PRODUCT, __version__, None)
    odd = [
        _record("x", name=""),  # no logger name
        _record("x", extra={EVENT_TIME: 1_700_000_000.5}),  # a time given by structlog
        _record("x", levelno="INFO"),  # a level that is not a number
        _record("x", created=float("nan")),
    ]
    for record in odd:
        assert wire.encode(compact(record), PRODUCT) is None
    folded = compact(_record("x"))._replace(repeat=(5, 1.0, 2.0))
    assert wire.encode(folded, PRODUCT) is None


def test_a_changed_product_is_used_from_the_next_record_on() -> None:
    wire = LogWire(PRODUCT, __version__, None)
    item = compact(_record("x"))
    first = json.loads(wire.encode(item, PRODUCT) or b"{}")
    second = json.loads(wire.encode(item, {"name": "other"}) or b"{}")
    assert first["metadata"]["product"]["name"] == "shop"
    assert second["metadata"]["product"] == {"name": "other", "vendor_name": "unknown"}


_text = st.text(st.characters(codec="utf-8"), max_size=40)
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    _text,
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(_text, st.integers(), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    message=_text,
    name=_text,
    extra=st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), _values, max_size=4),
    level=st.sampled_from([5, 10, 20, 25, 30, 40, 50, 60]),
    line=st.integers(0, 10**6),
    redact=st.booleans(),
    surrogate=st.booleans(),
)
def test_any_record_is_written_as_the_dict_path_builds_it(
    message: str,
    name: str,
    extra: dict[str, Any],
    level: int,
    line: int,
    redact: bool,
    surrogate: bool,
) -> None:
    reserved = {"message", "asctime"} | set(vars(_record("x")))
    extra = {k: v for k, v in extra.items() if k not in reserved}
    if surrogate:
        message += "\udcff"  # a file name decoded with surrogateescape
    record = _record(message, name=name, extra=extra, level=level, line=line)
    written, expected = _both(record, redact)
    if written is not None:
        assert written == expected
