"""What leaves the process: redaction, storm folding and the user's own processors.

Through the real handler to the receiver on loopback; the redaction rules also on their own.
"""

from __future__ import annotations

import contextvars
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from py_mdr.config import ConfigError
from py_mdr.handler import MDRHandler
from py_mdr.processing import Folder, Redaction, Redactor, fold_key
from py_mdr.processing.redact import DEFAULT_RULES, luhn_valid, trie_pattern
from py_mdr.sink import HECSink

pytestmark = pytest.mark.timeout(60)

TOKEN = "test-token-value"

#: One secret of every kind redacted by default: (kind, text containing it, the secret itself).
SECRETS: list[tuple[str, str, str]] = [
    (
        "private_key",
        "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq9\nq8Yz+/x=\n"
        "-----END RSA PRIVATE KEY----- loaded",
        "MIIEowIBAAKCAQEA7bq9",
    ),
    (
        "jwt",
        "session eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c expired",
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ),
    ("aws_access_key_id", "using AKIAIOSFODNN7EXAMPLE for s3", "AKIAIOSFODNN7EXAMPLE"),
    (
        "aws_secret_access_key",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "github_token",
        "clone with ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 failed",
        "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    ),
    ("gitlab_token", "GITLAB glpat-xY9zAb3CdEfGh1JkLmN0 denied", "glpat-xY9zAb3CdEfGh1JkLmN0"),
    ("slack_token", "slack xoxb-123456789012-abcdefABCDEF rejected", "xoxb-123456789012-abcdef"),
    (
        "stripe_key",
        "charge with sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    ),
    ("bearer_token", "Authorization: Bearer 9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706"),
    ("basic_auth", "Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "YWxhZGRpbjpvcGVuc2VzYW1l"),
    ("url_password", "connect postgres://app:Hunter2-pass@db.internal:5432/orders", "Hunter2-pass"),
    ("secret_pair", "retrying with password=CorrectHorse99 now", "CorrectHorse99"),
    ("secret_pair", 'config {"api_key": "k3y-v4lue-001"} loaded', "k3y-v4lue-001"),
    ("card_number", "card 4111 1111 1111 1111 was declined", "4111 1111 1111 1111"),
    ("card_number", "card 5500-0000-0000-0004 was declined", "5500-0000-0000-0004"),
    ("hec_token", f"token {TOKEN} leaked", TOKEN),
]

#: Things that look like secrets and are not: they must arrive as they were.
LOOK_ALIKES = [
    "request 3f2b8c1e-9d4a-4b6c-8e2f-0a1b2c3d4e5f done",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 matched",
    "at 1722513600000 ms, or 1722513600 s, or 1722513600123456789 ns",
    "version 1.24.3-rc.1+build.5 and 2024.06.01",
    "order 4111111111111112 (16 digits, not Luhn valid) and 1234567890123456",
    "blob U29tZSBwbGFpbiBiYXNlNjQgdGV4dCwgbm90IGEgdG9rZW4= attached",
    "the key was rotated; tokens remain valid; pass the salt",
    "uid 0c8a2f1e-5b7d-4e9a-a3c1-7f6e5d4c3b2a and sequence 123456789012345",
]


@pytest.fixture
def sink() -> Iterator[HECSink]:
    """A receiver accepting this file's token (which the HEC-token rule then looks for)."""
    with HECSink(token=TOKEN) as receiver:
        yield receiver


def handler_for(sink: HECSink, **options: Any) -> MDRHandler:
    options.setdefault("linger", 0.02)
    options.setdefault("close_timeout", 2.0)
    return MDRHandler(host=sink.url, token=TOKEN, **options)


# ---------------------------------------------------------------- redaction


@pytest.mark.parametrize(("kind", "text", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_each_kind_of_secret_is_redacted_wherever_the_application_put_it(
    sink: HECSink,
    attach: Callable[[logging.Handler, str], logging.Logger],
    kind: str,
    text: str,
    secret: str,
) -> None:
    handler = handler_for(sink)
    log = attach(handler, f"secrets.{kind}")
    log.warning(text)  # in the message
    try:
        raise RuntimeError(text)
    except RuntimeError:
        log.exception("it failed")  # in the exception message and the stack text
    log.info("with extras", extra={"detail": text, "nested": {"list": [text]}})
    assert handler.flush(5)
    events = sink.events
    assert len(events) == 3
    for event in events:
        assert secret not in str(event), event
        assert f"redacted:{kind}" in event["metadata"]["labels"]
    assert f"[REDACTED:{kind}]" in events[0]["message"]
    assert handler.stats.redacted[kind] >= 4  # message, exception text and stack, two extras
    assert sink.problems == [], sink.problems[:3]


def test_values_under_secret_key_names_are_redacted_whole(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = handler_for(sink)
    log = attach(handler, "secrets.keys")
    log.info(
        "login", extra={"password": "plain", "db_password": 12345, "api-key": "x", "user": "u"}
    )
    assert handler.flush(5)
    (event,) = sink.events
    assert event["unmapped"]["extra"] == {
        "password": "[REDACTED:secret_field]",
        "db_password": "[REDACTED:secret_field]",
        "api-key": "[REDACTED:secret_field]",
        "user": "u",
    }
    assert event["metadata"]["labels"] == ["redacted:secret_field"]


def test_look_alikes_arrive_unchanged(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = handler_for(sink)
    log = attach(handler, "secrets.lookalikes")
    for text in LOOK_ALIKES:
        log.info(text, extra={"value": text})
    assert handler.flush(5)
    events = sink.events
    assert [e["message"] for e in events] == LOOK_ALIKES
    assert [e["unmapped"]["extra"]["value"] for e in events] == LOOK_ALIKES
    assert all("labels" not in e["metadata"] for e in events)
    assert handler.stats.redacted == {}


def test_structural_fields_are_never_touched() -> None:
    redactor = Redactor(Redaction(patterns={"digits": r"[0-9]{6,}"}))
    event: dict[str, Any] = {
        "message": "id 1234567",
        "time": 1722513600000,
        "metadata": {"uid": "123456789", "correlation_uid": "4111111111111111"},
        "unmapped": {"trace": {"trace_id": "12345678901234567890"}, "note": "1234567"},
    }
    redactor.event(event)
    assert event["message"] == "id [REDACTED:digits]"
    assert event["unmapped"]["note"] == "[REDACTED:digits]"
    assert event["metadata"]["uid"] == "123456789"
    assert event["metadata"]["correlation_uid"] == "4111111111111111"
    assert event["unmapped"]["trace"]["trace_id"] == "12345678901234567890"


def test_redaction_can_be_turned_off_extended_and_allow_listed(
    sink: HECSink,
    attach: Callable[[logging.Handler, str], logging.Logger],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    off = handler_for(sink, redact=False)
    attach(off, "redact.off").warning("password=visible")
    assert off.flush(5)
    custom = handler_for(
        sink,
        redact={
            "patterns": {"employee_id": r"\bEMP-[0-9]{6}\b"},
            "keys": ["pin"],
            "allow": ["password=public-demo"],
        },
    )
    log = attach(custom, "redact.custom")
    log.warning("EMP-123456 and password=public-demo", extra={"pin": "0000"})
    assert custom.flush(5)
    monkeypatch.setenv("MDR_REDACT", "false")
    from_env = handler_for(sink)
    attach(from_env, "redact.env").warning("password=also-visible")
    assert from_env.flush(5)
    messages = [e["message"] for e in sink.events]
    assert messages == [
        "password=visible",
        "[REDACTED:employee_id] and password=public-demo",
        "password=also-visible",
    ]
    assert sink.events[1]["unmapped"]["extra"]["pin"] == "[REDACTED:secret_field]"


def test_a_bad_redact_argument_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="redact"):
        MDRHandler(host="127.0.0.1:1", token=TOKEN, redact="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pattern 'broken'"):
        MDRHandler(host="127.0.0.1:1", token=TOKEN, redact={"patterns": {"broken": "(["}})
    with pytest.raises(ConfigError, match=r"processors\[1\]"):
        bad: Any = [dict, "not callable"]
        MDRHandler(host="127.0.0.1:1", token=TOKEN, processors=bad)


@pytest.mark.parametrize(
    "text",
    [
        "x" * 10_000_000,
        "4111 " * 2_000_000,
        "password=" * 1_100_000,
        "eyJaaaaaaa." * 900_000,
        ("http://" + "a" * 200 + ":") * 45_000,
        "-----BEGIN RSA PRIVATE KEY-----" * 300_000,
        "Bearer " * 1_400_000,
    ],
    ids=["letters", "digits", "pairs", "jwt-like", "urls", "key-headers", "bearers"],
)
def test_a_ten_megabyte_message_is_scanned_in_bounded_time(text: str) -> None:
    redactor = Redactor(Redaction(), ["a-token-literal"])

    def seconds(part: str) -> float:
        started = time.monotonic()
        redactor.text(part, {})
        return time.monotonic() - started

    tenth = seconds(text[: len(text) // 10])
    whole = seconds(text)
    # Linear: ten times the text takes about ten times as long (a quadratic rule would take a
    # hundred), measured side by side so a loaded machine slows both alike.
    assert whole < 30 * tenth + 0.5, (tenth, whole)
    assert whole < 20.0


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("5500000000000004")
    assert not luhn_valid("4111111111111112")


# ---------------------------------------------------------------- storm folding


def test_a_storm_of_one_line_folds_and_the_lines_around_it_all_arrive(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = MDRHandler(host=sink.url, token=TOKEN)  # default settings
    log = attach(handler, "storm")
    started = time.time()
    for i in range(100_000):
        log.error("connection to db refused, retrying")
        if i % 100 == 0:
            log.info("distinct line %d", i // 100)
    ended = time.time()
    assert handler.flush(30)
    events = sink.events
    distinct = [e for e in events if e["message"].startswith("distinct line")]
    assert sorted(int(e["message"].split()[-1]) for e in distinct) == list(range(1000))
    storm = [e for e in events if e["message"] == "connection to db refused, retrying"]
    assert sum(e.get("count", 1) for e in storm) == 100_000
    assert len(storm) < 50, len(storm)  # a handful, not a hundred thousand
    folded = [e for e in storm if "count" in e]
    assert folded and handler.stats.folded == sum(e["count"] for e in folded)
    for event in folded:
        assert started * 1000 - 1 <= event["start_time"] <= event["end_time"] <= ended * 1000 + 1
    assert handler.stats.dropped == {}
    assert sink.problems == [], sink.problems[:3]


def test_exactly_the_first_three_repeats_are_sent_and_the_rest_counted(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = MDRHandler(host=sink.url, token=TOKEN)  # default settings
    log = attach(handler, "three")
    log.info("warm-up")  # the worker's first look at the folder is behind us
    assert handler.flush(5)
    time.sleep(1.1)  # and its window of seen messages has turned over
    for _ in range(1000):  # a few milliseconds: inside one window
        log.warning("same line")
    assert handler.flush(10)
    storm = [e for e in sink.events if e["message"] == "same line"]
    assert [e.get("count") for e in storm] == [None, None, None, 997]
    assert handler.stats.folded == 997


def _send_like_the_handler(folder: Folder[str], message: str, when: float) -> bool:
    """What MDRHandler.emit asks the folder for a plain record."""
    if folder.new_message(message):
        return True
    send, _ = folder.admit(fold_key("app", 30, message, None, None), when, message, message)
    return send


def test_a_run_counts_the_occurrence_sent_before_it_existed() -> None:
    folder: Folder[str] = Folder(window=1.0, passes=3)
    sent = [_send_like_the_handler(folder, "again", 100 + i / 100) for i in range(10)]
    assert sent == [True] * 3 + [False] * 7
    (summary,) = folder.expired(101.5)
    assert summary.count == 7 and (summary.start, summary.end) == (100.03, 100.09)
    later = [_send_like_the_handler(folder, "again", 102 + i / 100) for i in range(5)]
    assert later == [True] * 3 + [False] * 2


def test_a_new_window_of_messages_does_not_let_a_live_runs_repeats_through() -> None:
    folder: Folder[str] = Folder(window=1.0, passes=3)
    sent = [_send_like_the_handler(folder, "again", 100 + i / 10) for i in range(5)]
    assert folder.expired(100.45) == []  # the messages seen start afresh; the run lives on
    sent += [_send_like_the_handler(folder, "again", 100.5 + i / 10) for i in range(4)]
    assert sent == [True] * 3 + [False] * 6
    (summary,) = folder.expired(101.2)  # the run opened with the second, at 100.1
    assert summary.count == 6
    assert _send_like_the_handler(folder, "other", 101.3)  # new messages still go straight out


def test_folding_can_be_turned_off(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = handler_for(sink, fold=False)
    log = attach(handler, "nofold")
    for _ in range(20):
        log.error("same")
    assert handler.flush(5)
    assert len(sink.events) == 20 and handler.stats.folded == 0


# ---------------------------------------------------------------- the user's processors

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def add_request_id(event: dict[str, Any]) -> dict[str, Any]:
    event.setdefault("unmapped", {})["request_id"] = request_id.get()
    return event


def drop_health_checks(event: dict[str, Any]) -> dict[str, Any] | None:
    return None if "GET /health" in event.get("message", "") else event


def raise_always(event: dict[str, Any]) -> dict[str, Any]:
    raise ValueError("a bug in a processor")


def serve_requests(log: logging.Logger) -> None:
    """Three requests and a health check, each on its own thread with its own request id."""

    def serve(rid: str, line: str) -> None:
        request_id.set(rid)  # as a web framework's middleware would, per request
        log.info(line)

    threads = [
        threading.Thread(target=serve, args=(f"req-{n}", f"GET /orders/{n}")) for n in range(3)
    ]
    threads.append(threading.Thread(target=serve, args=("req-h", "GET /health")))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)


def test_processors_enrich_from_the_logging_calls_context_drop_and_survive_errors(
    sink: HECSink,
    attach: Callable[[logging.Handler, str], logging.Logger],
    capfd: pytest.CaptureFixture[str],
) -> None:
    handler = handler_for(sink, processors=[add_request_id, drop_health_checks, raise_always])
    serve_requests(attach(handler, "processors"))
    assert handler.flush(5)
    got = {e["message"]: e["unmapped"]["request_id"] for e in sink.events}
    assert got == {f"GET /orders/{n}": f"req-{n}" for n in range(3)}
    stats = handler.stats
    assert stats.dropped == {"processor": 1}
    assert stats.processor_errors == 3
    err = capfd.readouterr().err
    assert err.count("the processor raise_always failed") == 1  # shown once


# ---------------------------------------------------------------- through OpenTelemetry


@contextmanager
def otel_logger(exporter: Any, name: str) -> Iterator[logging.Logger]:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        provider.force_flush()
        exporter.force_flush(5_000)
        provider.shutdown()


def test_processors_through_opentelemetry_see_the_logging_calls_context(
    sink: HECSink, capfd: pytest.CaptureFixture[str]
) -> None:
    from py_mdr_otel import MDRExporter

    exporter = MDRExporter(
        host=sink.url, token=TOKEN, processors=[add_request_id, drop_health_checks, raise_always]
    )
    with otel_logger(exporter, "otel.processors") as log:
        serve_requests(log)
    got = {e["message"]: e["unmapped"]["request_id"] for e in sink.events}
    assert got == {f"GET /orders/{n}": f"req-{n}" for n in range(3)}
    assert all("py_mdr_context" not in str(e) for e in sink.events)
    stats = exporter.stats()
    assert stats.dropped == {"processor": 1} and stats.processor_errors == 3
    assert capfd.readouterr().err.count("the processor raise_always failed") == 1


@pytest.mark.parametrize(("kind", "text", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_secrets_in_opentelemetry_bodies_and_attributes_are_redacted(
    sink: HECSink, kind: str, text: str, secret: str
) -> None:
    from py_mdr_otel import MDRExporter

    exporter = MDRExporter(host=sink.url, token=TOKEN)
    with otel_logger(exporter, f"otel.secrets.{kind}") as log:
        log.warning(text, extra={"detail": text, "nested": [text]})
    (event,) = sink.events
    assert secret not in str(event), event
    assert f"[REDACTED:{kind}]" in event["message"]
    assert f"redacted:{kind}" in event["metadata"]["labels"]
    assert exporter.stats().redacted[kind] >= 3


def test_the_gate_finds_a_text_exactly_when_one_of_the_triggers_is_in_it() -> None:
    triggers = sorted({t for _, words in DEFAULT_RULES.values() for t in words} | {"ab-12.c"})
    factored = re.compile(trie_pattern(triggers))
    plain = re.compile("|".join(map(re.escape, triggers)))
    assert trie_pattern(["key", "monkey", "ab", "abc"]) == "ab|key"  # "abc" holds "ab"
    alphabet = "abceghikloprstuwxyz_-.:/ 12"
    pick = random.Random(7).choice
    texts = ["".join(pick(alphabet) for _ in range(40)) for _ in range(3000)]
    texts += [f"x{word}y" for word in triggers] + [word[:-1] for word in triggers]
    for text in texts:
        assert (factored.search(text) is None) == (plain.search(text) is None), text


def test_one_gate_search_finds_every_trigger_and_every_run_a_card_number_can_start() -> None:
    redactor = Redactor(Redaction())
    triggers = sorted({t for _, words in DEFAULT_RULES.values() for t in words})
    reference = re.compile("|".join([*map(re.escape, triggers), r"[2-6][0-9 -]{12}"]))
    alphabet = "abeiknoprstyKEY_:/ -0123456789"
    pick = random.Random(11).choice
    texts = ["".join(pick(alphabet) for _ in range(30)) for _ in range(3000)]
    texts += ["order 4111 1111 1111 1111 paid", "ref 1234567890123", "v 2-0-2-6-1-1-3-0-1-2-3-4-5"]
    for text in texts:
        could_match = reference.search(text.lower()) is not None
        assert redactor.looks_clean(text) is not could_match, text
        assert (redactor.message(text, {}) == text) or could_match, text


def test_a_message_is_redacted_like_any_text_but_not_remembered_when_clean() -> None:
    redactor = Redactor(Redaction())
    found: dict[str, int] = {}
    assert redactor.message("token=abc123 sent", found) == "token=[REDACTED:secret_pair] sent"
    assert found == {"secret_pair": 1}
    for number in range(10_000):  # unique messages: none of them is kept
        assert redactor.message(f"user alice did {number}", found) == f"user alice did {number}"
    assert redactor.text("value-17", found) == "value-17"
    assert list(redactor._clean) == ["value-17"]  # a field value is remembered


def test_a_flood_of_distinct_messages_keeps_the_fast_way_and_the_live_runs() -> None:
    """Past 4,096 messages in a window the seen ones start afresh (distinct lines must not all
    take the closer look), but a live run's message stays known: its repeats stay folded."""
    folder: Folder[str] = Folder(window=10.0, passes=3)
    sent = [_send_like_the_handler(folder, "again", 100 + i / 1000) for i in range(5)]
    assert sent == [True] * 3 + [False] * 2
    assert all(folder.new_message(f"line {n}") for n in range(10_000))
    assert not _send_like_the_handler(folder, "again", 100.5)  # still folded
