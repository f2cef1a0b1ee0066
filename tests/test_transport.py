"""HECTransport against the project's real HEC receiver on loopback: one test per move in HEC.md."""

from __future__ import annotations

import email.utils
import gzip
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from processes import closed_port_url

from py_mdr.hec.batching import join_body
from py_mdr.hec.compression import ENGINE, gzip_body
from py_mdr.hec.config import HECConfig
from py_mdr.hec.envelope import encode_envelope
from py_mdr.hec.errors import (
    HECAuthError,
    HECClosedError,
    HECError,
    HECIndexError,
    HECProtocolError,
    HECRejectedError,
    HECTimeoutError,
)
from py_mdr.hec.reports import SendReport
from py_mdr.hec.retry import RetryPolicy
from py_mdr.hec.transport import HECTransport, Notify
from py_mdr.sink import HECSink, ReceivedRequest

Make = Callable[..., HECTransport]
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=3.0)


def envelopes(count: int, tag: str = "t", index: str | None = None) -> list[bytes]:
    return [
        encode_envelope(
            {"n": n, "tag": tag},
            time=1_700_000_000 + n / 1000,
            host="h",
            source="s",
            sourcetype="pymdr::test",
            index=index,
        )
        for n in range(count)
    ]


def numbers(sink: HECSink) -> list[int]:
    return [event["n"] for event in sink.events]


@pytest.fixture
def make(sink: HECSink) -> Iterator[Make]:
    made: list[HECTransport] = []

    def factory(*, notify: Notify | None = None, **options: object) -> HECTransport:
        settings: dict[str, object] = {"url": sink.url, "token": sink.token, "retry": FAST}
        settings.update(options)
        transport = HECTransport(HECConfig(**settings), notify=notify)  # type: ignore[arg-type]
        made.append(transport)
        return transport

    yield factory
    for transport in made:
        transport.close()


# ----------------------------------------------------------------------- code 0


def test_success_puts_the_right_bytes_on_the_wire(sink: HECSink, make: Make) -> None:
    transport = make()
    report = transport.send(envelopes(3))
    assert report.ok and report.delivered == 3 and report.retries == 0
    assert numbers(sink) == [0, 1, 2]
    (request,) = sink.requests
    assert request.status == 200 and request.envelope_count == 3 and request.gzip
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Content-Encoding"] == "gzip"
    assert uuid.UUID(request.channel or "") and request.channel == transport.channel
    stats = transport.stats()
    assert (stats.events_sent, stats.requests, stats.bytes_sent) == (3, 1, request.body_bytes)


def test_bodies_are_gzip_from_zlib_ng_that_the_stdlib_reads_back() -> None:
    body = b"".join(envelopes(800))
    packed = gzip_body(body, 7)
    assert ENGINE == "zlib-ng"  # a dependency: the stdlib is only the fallback
    assert gzip.decompress(packed) == body
    assert packed == gzip_body(body, 7)  # zero mtime: equal bodies, equal bytes
    assert len(packed) <= len(gzip.compress(body, compresslevel=7, mtime=0)) * 1.05


def test_uncompressed_bodies_when_compression_is_off(sink: HECSink, make: Make) -> None:
    report = make(compress=False).send(envelopes(2))
    assert report.ok
    (request,) = sink.requests
    assert not request.gzip and "Content-Encoding" not in request.headers


def test_bodies_are_split_by_size_and_count(sink: HECSink, make: Make) -> None:
    report = make(max_batch_events=4).send(envelopes(10))
    assert report.ok and report.delivered == 10
    assert [r.envelope_count for r in sink.requests] == [4, 4, 2]
    assert numbers(sink) == list(range(10))


# ------------------------------------------------------------------- codes 1-4


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [
        (403, 1, "Token disabled"),
        (401, 2, "Token is required"),
        (401, 3, "Invalid authorization"),
        (403, 4, "Invalid token"),
    ],
)
def test_auth_refusal_is_permanent_loud_once_and_fails_fast(
    sink: HECSink, make: Make, caplog: pytest.LogCaptureFixture, status: int, code: int, text: str
) -> None:
    caplog.set_level(logging.WARNING, logger="py_mdr.hec")
    told: list[tuple[str, HECError]] = []
    notify = lambda kind, error: told.append((kind, error))  # noqa: E731
    if code == 1:
        sink.token_disabled = True
        transport = make(notify=notify)
    elif code == 4:
        transport = make(token="not-the-token", notify=notify)
    else:
        sink.fail_next(1, status, code)
        transport = make(notify=notify)
    first = transport.send(envelopes(3))
    assert first.dropped == {"auth": 3} and first.delivered == 0
    assert isinstance(first.error, HECAuthError) and first.error.permanent
    assert (first.error.status, first.error.hec_code) == (status, code)
    assert str(first.error) == (
        f"HTTP {status}, HEC code {code}: {text}: MDR refused the token; "
        "check MDR_TOKEN or the token argument"
    )
    second = transport.send(envelopes(2))
    assert second.dropped == {"auth": 2} and second.error is first.error
    assert len(sink.requests) == 1  # the second send never went out
    assert told == [("auth", first.error)]  # told once, for the door to say on stderr
    assert caplog.records == []  # and never through logging
    assert transport.stats().events_dropped == {"auth": 5}


# ------------------------------------------------------ codes 5, 6, 10-13, 15


@pytest.mark.parametrize(
    ("code", "text"),
    [(5, "No data"), (10, "Data channel is missing"), (11, "Invalid data channel")],
)
def test_bad_request_drops_the_batch_and_says_why(
    sink: HECSink, make: Make, code: int, text: str
) -> None:
    sink.fail_next(1, 400, code)
    transport = make()
    report = transport.send(envelopes(4))
    assert report.dropped == {"rejected_400": 4} and report.delivered == 0
    assert isinstance(report.error, HECRejectedError) and not report.error.permanent
    assert str(report.error) == f"HTTP 400, HEC code {code}: {text}"
    assert len(sink.requests) == 1  # not retried
    assert transport.send(envelopes(1)).ok  # not permanent: the next batch goes through


@pytest.mark.parametrize("code", [6, 12, 13, 15])
def test_a_bad_event_answer_without_its_number_sends_each_half_again(
    sink: HECSink, make: Make, code: int
) -> None:
    sink.fail_next(1, 400, code)  # this once: each half then goes through
    report = make().send(envelopes(4))
    assert report.delivered == 4 and report.dropped == {}, report
    assert [r.envelope_count for r in sink.requests] == [0, 2, 2]  # the refused one unread
    assert numbers(sink) == [0, 1, 2, 3]


def test_invalid_event_number_resends_only_the_rest(sink: HECSink, make: Make) -> None:
    sink.reject_envelope(2)
    report = make().send(envelopes(6))
    assert report.delivered == 5 and report.dropped == {"bad_event": 1}
    assert report.error is not None and report.error.hec_code == 6
    assert numbers(sink) == [0, 1, 3, 4, 5]  # every good event exactly once
    assert [r.envelope_count for r in sink.requests] == [2, 3]


def test_a_blank_event_is_dropped_alone(sink: HECSink, make: Make) -> None:
    items = envelopes(3)
    items[1] = b'{"time":1.0,"host":"h","source":"s","sourcetype":"pymdr::test","event":{}}'
    report = make().send(items)
    assert report.delivered == 2 and report.dropped == {"bad_event": 1}
    assert report.error is not None and report.error.hec_code == 13
    assert numbers(sink) == [0, 2]


def test_event_over_the_receivers_size_limit_is_dropped_alone(sink: HECSink, make: Make) -> None:
    sink.max_event_bytes = 300  # above it the receiver answers code 6 for that envelope
    items = envelopes(4)
    items.insert(
        1,
        encode_envelope(
            {"n": 99, "pad": "x" * 400}, time=1.0, host="h", source="s", sourcetype="pymdr::test"
        ),
    )
    report = make().send(items)
    assert report.delivered == 4 and report.dropped == {"bad_event": 1}
    assert report.error is not None and report.error.hec_code == 6
    assert numbers(sink) == [0, 1, 2, 3]


def test_bad_event_first_and_last(sink: HECSink, make: Make) -> None:
    sink.reject_envelope(0)  # envelope n=0
    sink.reject_envelope(2)  # in the resent body [1, 2, 3]: envelope n=3
    report = make().send(envelopes(4))
    assert report.delivered == 2 and report.dropped == {"bad_event": 2}
    assert numbers(sink) == [1, 2]


# ---------------------------------------------------------------------- code 7


def test_wrong_index_is_permanent(
    sink: HECSink, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    sink.allowed_indexes = {"main"}
    caplog.set_level(logging.WARNING, logger="py_mdr.hec")
    told: list[str] = []
    transport = make(notify=lambda kind, error: told.append(kind))
    report = transport.send(envelopes(3, index="secret"))
    assert report.dropped == {"index": 3}
    assert isinstance(report.error, HECIndexError) and report.error.hec_code == 7
    assert "Incorrect index" in str(report.error)
    assert transport.send(envelopes(1, index="main")).dropped == {"index": 1}
    assert len(sink.requests) == 1
    assert told == ["index"] and caplog.records == []


# ------------------------------------------------------ retried codes/statuses


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, 8),
        (503, 9),
        (503, 18),
        (503, 19),
        (503, 20),
        (429, None),
        (502, None),
        (504, None),
        (408, None),
        (503, None),
    ],
)
def test_transient_answers_are_retried_then_delivered(
    sink: HECSink, make: Make, status: int, code: int | None
) -> None:
    sink.fail_next(2, status, code)
    transport = make()
    report = transport.send(envelopes(3))
    assert report.ok and report.delivered == 3 and report.retries == 2
    assert numbers(sink) == [0, 1, 2]
    assert [r.status for r in sink.requests] == [status, status, 200]
    assert transport.stats().events_retried == 6


def test_retry_after_seconds_is_honoured(sink: HECSink, make: Make) -> None:
    sink.fail_next(1, 503, 9, retry_after="1")
    report = make().send(envelopes(1))
    assert report.ok
    first, second = sink.requests
    assert second.time - first.time >= 0.95


def test_retry_after_http_date_is_honoured(sink: HECSink, make: Make) -> None:
    sink.fail_next(1, 429, None, retry_after=email.utils.formatdate(time.time() + 2, usegmt=True))
    report = make().send(envelopes(1))
    assert report.ok
    first, second = sink.requests
    assert second.time - first.time >= 0.9  # the date has whole-second precision


def test_retry_after_beyond_the_deadline_gives_up_at_once(sink: HECSink, make: Make) -> None:
    sink.fail_next(1, 503, 9, retry_after="30")
    started = time.monotonic()
    report = make(retry=RetryPolicy(initial_backoff=0.01, deadline=2)).send(envelopes(2))
    assert time.monotonic() - started < 1.0
    assert report.dropped == {"deadline": 2}
    assert isinstance(report.error, HECTimeoutError)
    assert "HEC code 9" in str(report.error) and "Server is busy" in str(report.error)


def test_backoff_is_bounded_by_the_deadline(sink: HECSink, make: Make) -> None:
    sink.down = True
    policy = RetryPolicy(initial_backoff=0.05, max_backoff=0.2, deadline=1.0)
    started = time.monotonic()
    report = make(retry=policy).send(envelopes(2))
    elapsed = time.monotonic() - started
    assert 0.2 < elapsed <= 1.5
    assert report.dropped == {"deadline": 2} and report.retries >= 2


class _BackoffStarted(logging.Handler):
    """Set once the transport logs that it is about to wait before a retry."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying in" in record.getMessage():
            self.event.set()


def test_close_interrupts_a_pending_backoff(
    sink: HECSink, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="py_mdr.hec")
    waiting = _BackoffStarted()
    logging.getLogger("py_mdr.hec").addHandler(waiting)
    sink.fail_next(1, 503, 9, retry_after="30")
    transport = make(retry=RetryPolicy(deadline=60))
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(transport.send(envelopes(2))))
    try:
        worker.start()
        assert waiting.event.wait(timeout=5)  # the sender is entering its 30 s wait
        started = time.monotonic()
        transport.close()
        worker.join(timeout=5)
    finally:
        logging.getLogger("py_mdr.hec").removeHandler(waiting)
    assert not worker.is_alive() and time.monotonic() - started < 1.0
    (report,) = result
    assert report.dropped == {"closed": 2}  # type: ignore[attr-defined]
    assert isinstance(report.error, HECClosedError)  # type: ignore[attr-defined]
    later = transport.send(envelopes(1))
    assert later.dropped == {"closed": 1}
    transport.close()  # idempotent


# ------------------------------------------------------------------------ 413


def test_413_splits_until_each_half_fits(sink: HECSink, make: Make) -> None:
    sink.max_body_bytes = 700  # compressed and decompressed
    transport = make(compress=False)
    report = transport.send(envelopes(20))
    assert report.ok and report.delivered == 20
    assert sorted(numbers(sink)) == list(range(20)) and len(sink.events) == 20
    assert any(r.status == 413 for r in sink.requests)


def test_413_split_counts_every_resent_event(sink: HECSink, make: Make) -> None:
    items = envelopes(4)
    sink.max_body_bytes = len(join_body(items[:2]))  # four are refused, each half fits
    transport = make(compress=False)
    report = transport.send(items)
    assert report.ok and report.retries == 1
    assert [r.status for r in sink.requests] == [413, 200, 200]
    assert transport.stats().events_retried == 4  # both halves went out again
    assert numbers(sink) == [0, 1, 2, 3]


def test_413_for_a_single_envelope_drops_only_it(sink: HECSink, make: Make) -> None:
    big = encode_envelope(
        {"n": 99, "pad": "x" * 2000}, time=1.0, host="h", source="s", sourcetype="pymdr::test"
    )
    items = [*envelopes(3), big]
    sink.max_body_bytes = 1000
    report = make(compress=False).send(items)
    assert report.delivered == 3 and report.dropped == {"oversize": 1}
    assert sorted(numbers(sink)) == [0, 1, 2]


def test_oversize_envelope_is_dropped_before_sending(sink: HECSink, make: Make) -> None:
    items = envelopes(4)
    items.insert(
        2, encode_envelope({"pad": "x" * 500}, time=1.0, host="h", source="s", sourcetype="t")
    )
    report = make(max_event_bytes=300).send(items)
    assert report.delivered == 4 and report.dropped == {"oversize": 1}
    assert numbers(sink) == [0, 1, 2, 3]


def test_oversize_error_names_the_limit_that_applied(sink: HECSink, make: Make) -> None:
    alone = encode_envelope(
        {"n": 7, "pad": "y" * 200}, time=1.0, host="h", source="s", sourcetype="t"
    )  # over a body, within max_event_bytes
    too_big = encode_envelope({"pad": "x" * 500}, time=1.0, host="h", source="s", sourcetype="t")
    report = make(max_body_bytes=200, max_event_bytes=400).send([alone, too_big])
    assert report.delivered == 1 and report.dropped == {"oversize": 1}
    assert "max_event_bytes (400 bytes)" in str(report.error)
    assert numbers(sink) == [7]


# ------------------------------------------------------- no answer at all


def test_hanging_receiver_send_returns_within_its_deadline(sink: HECSink, make: Make) -> None:
    sink.hang(5.0)
    policy = RetryPolicy(initial_backoff=0.01, deadline=0.8)
    started = time.monotonic()
    report = make(retry=policy).send(envelopes(2))
    elapsed = time.monotonic() - started
    assert elapsed < 1.5
    assert report.dropped == {"deadline": 2}
    assert isinstance(report.error, HECTimeoutError)


def test_retry_on_a_fresh_connection_stays_within_the_deadline() -> None:
    def on_request(request: ReceivedRequest) -> None:
        if request.status == 0:  # the pooled connection was just dropped: hang from now on
            receiver.hang(30.0)

    with HECSink(on_request=on_request) as receiver:
        policy = RetryPolicy(initial_backoff=5, deadline=2.0)
        transport = HECTransport(HECConfig(url=receiver.url, token=receiver.token, retry=policy))
        try:
            assert transport.send(envelopes(1, "warm")).ok
            receiver.hang(1.2, n=1, then_close=True)  # the pooled connection dies after 1.2 s
            started = time.monotonic()
            report = transport.send(envelopes(2))
            elapsed = time.monotonic() - started
        finally:
            transport.close()
    assert report.retries == 1  # the one immediate retry on a fresh connection
    assert report.dropped == {"deadline": 2} and isinstance(report.error, HECTimeoutError)
    assert elapsed < 2.6  # a fresh full read timeout would have ended at 1.2 + 2.0 s


def test_unusable_retry_after_headers_are_ignored(sink: HECSink, make: Make) -> None:
    for junk in ("\u00b2", "9" * 5000, "soon"):  # "\u00b2" is a digit to str.isdigit()
        sink.fail_next(1, 503, 9, retry_after=junk)
    report = make().send(envelopes(2))
    assert report.ok and report.retries == 3
    assert numbers(sink) == [0, 1]


def test_unreachable_endpoint_is_retried_until_the_deadline(make: Make) -> None:
    transport = make(
        url=closed_port_url(),
        retry=RetryPolicy(initial_backoff=0.02, max_backoff=0.1, deadline=0.6),
    )
    started = time.monotonic()
    report = transport.send(envelopes(2))
    assert time.monotonic() - started < 1.2
    assert report.dropped == {"deadline": 2} and report.retries >= 1
    assert "could not connect" in str(report.error)


def test_dead_pooled_connection_gets_one_immediate_fresh_retry(
    sink: HECSink, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="py_mdr.hec")
    transport = make(retry=RetryPolicy(initial_backoff=5, deadline=10))
    assert transport.send(envelopes(1, "warm")).ok  # leaves a kept-alive connection in the pool
    sink.close_next(1)
    started = time.monotonic()
    report = transport.send(envelopes(2, "after"))
    assert time.monotonic() - started < 1.0  # no backoff wait
    assert report.ok and report.retries == 1
    assert [e["tag"] for e in sink.events] == ["warm", "after", "after"]
    assert any("pooled HEC connection was dead" in r.getMessage() for r in caplog.records)
    assert not any("retrying in" in r.getMessage() for r in caplog.records)


def test_a_connection_closed_without_answer_on_a_new_connection_is_retried(
    sink: HECSink, make: Make
) -> None:
    sink.close_next(1)
    report = make().send(envelopes(2))
    assert report.ok and report.retries == 1
    assert numbers(sink) == [0, 1]


# ---------------------------------------------------------------------- acks


@pytest.fixture
def ack_sink() -> Iterator[HECSink]:
    with HECSink(use_ack=True) as receiver:
        yield receiver


def ack_transport(receiver: HECSink, **options: object) -> HECTransport:
    settings: dict[str, object] = {
        "url": receiver.url,
        "token": receiver.token,
        "retry": FAST,
        "use_ack": True,
        "ack_poll_interval": 0.05,
    }
    settings.update(options)
    return HECTransport(HECConfig(**settings))  # type: ignore[arg-type]


def test_acks_are_polled_until_confirmed(ack_sink: HECSink) -> None:
    transport = ack_transport(ack_sink)
    try:
        ack_sink.hold_acks(True)
        assert transport.send(envelopes(2)).ok
        assert transport.stats().acks_pending == 1
        assert not transport.wait_for_acks(time.monotonic() + 0.3)
        ack_sink.hold_acks(False)
        assert transport.wait_for_acks(time.monotonic() + 3)
        assert transport.stats().acks_pending == 0
        polls = [r for r in ack_sink.requests if r.path == "/services/collector/ack"]
        assert polls and all(r.channel == transport.channel for r in polls)
    finally:
        transport.close()


def test_unacknowledged_body_is_resent_after_ack_timeout(ack_sink: HECSink) -> None:
    transport = ack_transport(ack_sink, ack_timeout=0.2)
    try:
        ack_sink.hold_acks(True)
        assert transport.send(envelopes(2)).ok
        time.sleep(0.25)
        assert not transport.wait_for_acks(time.monotonic() + 0.2)
        assert numbers(ack_sink) == [0, 1, 0, 1]  # at-least-once: resent
        ack_sink.hold_acks(False)
        assert transport.wait_for_acks(time.monotonic() + 3)
        assert transport.stats().events_retried == 2
    finally:
        transport.close()


def test_pending_acks_are_bounded(ack_sink: HECSink) -> None:
    transport = ack_transport(
        ack_sink, max_pending_acks=2, max_batch_events=1, ack_poll_interval=60
    )
    try:
        ack_sink.hold_acks(True)
        assert transport.send(envelopes(5)).ok
        stats = transport.stats()
        assert stats.acks_pending == 2 and stats.events_unconfirmed == 3
    finally:
        transport.close()


def test_what_was_taken_before_a_bad_event_counts_as_unconfirmed(ack_sink: HECSink) -> None:
    transport = ack_transport(ack_sink, ack_poll_interval=60)
    try:
        ack_sink.hold_acks(True)
        ack_sink.reject_envelope(4)
        report = transport.send(envelopes(10))
        assert report.delivered == 9 and report.dropped == {"bad_event": 1}
        stats = transport.stats()
        # the four before it came back without an ackId; the five after it in one body with one
        assert stats.events_unconfirmed == 4
        assert (stats.acks_pending, stats.events_awaiting_ack) == (1, 5)
    finally:
        transport.close()


def test_code_14_on_the_ack_endpoint_turns_acks_off(ack_sink: HECSink) -> None:
    transport = ack_transport(ack_sink)
    try:
        ack_sink.hold_acks(True)
        assert transport.send(envelopes(2)).ok
        ack_sink.use_ack = False  # the endpoint now says "ACK is disabled" (code 14)
        assert transport.wait_for_acks(time.monotonic() + 2)
        assert not transport.acks_enabled
        stats = transport.stats()
        assert stats.acks_pending == 0 and stats.events_unconfirmed == 2
        assert transport.send(envelopes(1)).ok
    finally:
        transport.close()


def test_code_14_on_the_event_endpoint_turns_acks_off_and_resends(sink: HECSink) -> None:
    sink.fail_next(1, 400, 14)
    transport = ack_transport(sink)
    try:
        report = transport.send(envelopes(2))
        assert report.ok and report.retries == 1
        assert not transport.acks_enabled
        assert numbers(sink) == [0, 1]
    finally:
        transport.close()


# ------------------------------------------------------------- health, misc


def test_health(sink: HECSink, make: Make) -> None:
    transport = make()
    healthy = transport.health()
    assert healthy.ok and (healthy.status, healthy.hec_code) == (200, 17)
    sink.down = True
    sick = transport.health()
    assert not sick.ok and (sick.status, sick.hec_code) == (503, 18)
    nowhere = make(url=closed_port_url()).health(timeout=1)
    assert not nowhere.ok and nowhere.status is None
    assert "could not connect" in (nowhere.error or "")


def test_token_never_in_logs_errors_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    secret = "tok-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with HECSink(token=secret) as receiver:
        config = HECConfig(url=receiver.url, token=secret, retry=FAST)
        transport = HECTransport(config)
        receiver.fail_next(1, 503, 9)
        receiver.reject_envelope(1)
        seen.append(str(transport.send(envelopes(3)).error))
        receiver.hang(2.0, n=1)
        seen.append(str(transport.send(envelopes(1), deadline=time.monotonic() + 0.3).error))
        seen.append(repr(transport.health()))
        wrong = HECTransport(HECConfig(url=receiver.url, token=secret + "x", retry=FAST))
        seen.append(str(wrong.send(envelopes(1)).error))
        seen += [repr(transport), repr(config), repr(wrong.stats()), repr(transport.stats())]
        transport.close()
        wrong.close()
        seen.append(str(transport.send(envelopes(1)).error))
    lines = [record.getMessage() for record in caplog.records]
    assert any("urllib3" in r.name for r in caplog.records)  # the HTTP stack was logging
    assert len(lines) > 5
    for text in seen + lines:
        assert secret not in text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_gets_a_new_channel_and_its_own_connections(sink: HECSink, make: Make) -> None:
    transport = make()
    assert transport.send(envelopes(1, "parent")).ok
    parent_channel = transport.channel
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its channel and send through its own session
        try:
            ok = transport.send(envelopes(1, "child")).ok
            os.write(write_end, json.dumps([transport.channel, ok]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_channel, child_ok = json.loads(pipe.read() or "[null, false]")
    os.waitpid(pid, 0)
    assert child_ok and child_channel != parent_channel
    assert transport.channel == parent_channel
    assert transport.send(envelopes(1, "parent-again")).ok
    by_tag = {e["tag"]: r.channel for e, r in zip(sink.events, sink.requests, strict=True)}
    assert by_tag == {
        "parent": parent_channel,
        "child": child_channel,
        "parent-again": parent_channel,
    }


def test_closed_transport_refuses_without_network(sink: HECSink, make: Make) -> None:
    transport = make()
    transport.close()
    report = transport.send(envelopes(2))
    assert report.dropped == {"closed": 2} and isinstance(report.error, HECClosedError)
    assert sink.requests == []
    assert not transport.health().ok


def test_the_transports_own_log_lines_are_marked_internal(
    sink: HECSink, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    from py_mdr.internal import install_record_marker

    install_record_marker()
    caplog.set_level(logging.DEBUG, logger="py_mdr.hec")
    sink.reject_envelope(0)
    transport = make()
    assert transport.send(envelopes(2)).dropped == {"bad_event": 1}  # called as MDRClient does
    sink.token_disabled = True
    assert transport.send(envelopes(1)).dropped == {"auth": 1}
    ours = [r for r in caplog.records if r.name == "py_mdr.hec"]
    assert any("dropped 1 event(s) (bad_event)" in r.getMessage() for r in ours)
    assert any("refused for good (auth)" in r.getMessage() for r in ours)
    assert all(r.levelno == logging.DEBUG for r in ours)  # what users hear goes to stderr
    assert all(getattr(r, "py_mdr_internal", False) for r in ours)


def test_http_stack_log_records_are_marked_internal(
    sink: HECSink, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    from py_mdr.internal import install_record_marker

    install_record_marker()
    caplog.set_level(logging.DEBUG)
    transport = make()
    assert transport.send(envelopes(1)).ok
    assert transport.health().ok
    stack = [r for r in caplog.records if r.name.startswith("urllib3")]
    assert len(stack) >= 2
    assert all(getattr(r, "py_mdr_internal", False) for r in stack)


# ------------------------------------------------- one deadline per send


def test_a_trickled_answer_cannot_stretch_the_send_past_its_deadline(
    sink: HECSink, make: Make
) -> None:
    sink.trickle(0.2)  # each read gets a byte well within the read timeout
    items = envelopes(3)
    started = time.monotonic()
    report = make(retry=RetryPolicy(initial_backoff=0.01, deadline=1.0)).send(items)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 1.5
    assert report.dropped == {"deadline": 3} and report.delivered == 0
    assert isinstance(report.error, HECTimeoutError)
    assert "deadline passed while" in str(report.error) and "still answering" in str(report.error)
    assert report.undelivered == items
    assert all(a is b for a, b in zip(report.undelivered, items, strict=True))
    assert sink.wait_for_events(3)  # "unknown", not "lost": they did arrive


def test_the_deadline_also_bounds_the_retry_after_a_trickle(sink: HECSink, make: Make) -> None:
    sink.trickle(0.2, n=1)
    transport = make(retry=RetryPolicy(initial_backoff=0.01, deadline=0.6))
    started = time.monotonic()
    assert transport.send(envelopes(1)).dropped == {"deadline": 1}
    assert time.monotonic() - started < 1.1
    assert transport.send(envelopes(1)).ok  # the cut connection was not reused


def test_health_is_bounded_by_its_timeout(sink: HECSink, make: Make) -> None:
    sink.trickle(0.2)
    started = time.monotonic()
    health = make().health(timeout=0.6)
    assert time.monotonic() - started < 1.1
    assert not health.ok and health.error is not None and "still answering" in health.error


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_the_deadline_holds_in_a_forked_child(sink: HECSink, make: Make) -> None:
    transport = make(retry=RetryPolicy(initial_backoff=0.01, deadline=0.6))
    sink.trickle(0.2, n=1)
    assert transport.send(envelopes(1)).dropped == {"deadline": 1}  # the watchdog runs here
    sink.trickle(0.2)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own watchdog must cut the trickle at the deadline
        try:
            started = time.monotonic()
            report = transport.send(envelopes(1, "child"))
            result = [report.dropped, time.monotonic() - started]
            os.write(write_end, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        dropped, elapsed = json.loads(pipe.read() or "[null, 99]")
    os.waitpid(pid, 0)
    assert dropped == {"deadline": 1} and elapsed < 1.1


# ---------------------------------------------- a 2xx that is not HEC's success

LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Corporate Sign-In</title></head>"
    "<body><form>user, password</form></body></html>"
)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "says"),
    [
        (200, LOGIN_PAGE, "text/html", 'an HTML page ("Corporate Sign-In'),
        (200, '{"text":"Invalid data format","code":6}', "application/json", "HEC code 6"),
        (200, "", None, "an empty body"),
        (200, "OK", "text/plain", '"OK"'),
        (200, '{"status":"up"}', "application/json", "JSON without a HEC code"),
        (204, "", None, "an empty body"),
        (302, "", None, "a redirect"),
    ],
)
def test_a_2xx_without_hec_success_is_not_a_delivery(
    sink: HECSink, make: Make, status: int, body: str, content_type: str | None, says: str
) -> None:
    sink.answer_next(1, status, body, content_type)
    transport = make()
    items = envelopes(3)
    report = transport.send(items)
    assert report.delivered == 0 and report.dropped == {"not_hec": 3}
    assert isinstance(report.error, HECProtocolError) and report.error.status == status
    message = str(report.error)
    assert "did not answer like HEC" in message and says in message and "MDR_HOST" in message
    assert report.undelivered == items
    assert len(sink.requests) == 1  # not retried
    assert transport.send(envelopes(1)).ok  # not fatal: a proxy may be fixed any time


def test_an_html_page_says_a_proxy_may_be_in_the_way(sink: HECSink, make: Make) -> None:
    sink.answer_next(1, 200, LOGIN_PAGE, "text/html")
    error = make().send(envelopes(1)).error
    assert error is not None and "proxy may be in the way" in str(error)
    assert "login page" in str(error)


def test_only_the_body_that_got_the_page_is_dropped(sink: HECSink, make: Make) -> None:
    sink.answer_next(1, 200, LOGIN_PAGE, "text/html")
    items = envelopes(4)
    report = make(max_batch_events=2).send(items)
    assert report.delivered == 2 and report.dropped == {"not_hec": 2}
    assert report.undelivered == items[:2] and numbers(sink) == [2, 3]


# ------------------------------- an invalid-event-number outside the body


@pytest.mark.parametrize("number", [3, 99, -1])
def test_a_partial_answer_pointing_outside_the_body_is_not_trusted(
    sink: HECSink, make: Make, number: int
) -> None:
    sink.answer_next(
        1,
        400,
        json.dumps({"text": "Invalid data format", "code": 6, "invalid-event-number": number}),
    )
    report = make().send(envelopes(3))
    # trusting it would count events no one accepted: the halves are sent again instead
    assert report.delivered == 3 and report.dropped == {}
    assert [r.envelope_count for r in sink.requests] == [0, 1, 2]  # the refused one unread


@pytest.mark.parametrize("number", [3, 99, -1])
def test_an_index_refusal_pointing_outside_the_body_is_not_trusted(
    sink: HECSink, make: Make, number: int
) -> None:
    sink.answer_next(
        1, 400, json.dumps({"text": "Incorrect index", "code": 7, "invalid-event-number": number})
    )
    items = envelopes(3)
    report = make().send(items)
    assert report.delivered == 0 and report.dropped == {"index": 3}
    assert report.undelivered == items


def test_an_index_refusal_inside_the_body_keeps_the_envelopes_before_it(
    sink: HECSink, make: Make
) -> None:
    sink.allowed_indexes = {"main"}
    items = envelopes(2, index="main") + envelopes(2, index="secret")
    report = make().send(items)
    assert report.delivered == 2 and report.dropped == {"index": 2}
    assert report.undelivered == items[2:]


# ------------------------------------- every envelope accounted for, once


def _partition(report: SendReport, items: list[bytes], sink: HECSink) -> int:
    """Check that each envelope is accepted, undelivered or dropped as bad, exactly once.

    Returns how many were dropped as bad.
    """
    kept = [id(e) for e in report.undelivered]
    assert len(set(kept)) == len(kept)  # no envelope twice
    assert set(kept) <= {id(e) for e in items}  # the very objects given to send
    positions = [next(i for i, e in enumerate(items) if e is u) for u in report.undelivered]
    assert positions == sorted(positions)  # in their original order
    bad = report.dropped_total - len(kept)
    assert bad >= 0 and report.delivered + len(kept) + bad == len(items)
    stored = {e["n"] for e in sink.events}
    assert len(stored) == report.delivered  # what was counted delivered is what was stored
    assert not stored & {json.loads(e)["event"]["n"] for e in report.undelivered}
    return bad


def test_413_splits_then_the_deadline_keeps_exactly_the_rest(make: Make) -> None:
    def on_request(request: ReceivedRequest) -> None:
        if request.status == 200 and request.envelope_count:  # after the first acceptance
            receiver.fail_next(100, 503, 9, retry_after="30")

    with HECSink(on_request=on_request) as receiver:
        items = envelopes(8)
        items.insert(
            5,
            encode_envelope(
                {"n": 99, "pad": "x" * 900}, time=1.0, host="h", source="s", sourcetype="t"
            ),
        )
        receiver.max_body_bytes = 3 * len(items[0]) + 2
        transport = HECTransport(
            HECConfig(url=receiver.url, token=receiver.token, retry=FAST, max_event_bytes=800)
        )
        try:
            report = transport.send(items)
        finally:
            transport.close()
        assert report.retries >= 2 and report.delivered == 2  # 8 -> 4 + 4 -> 2 + 2: first two
        assert report.dropped == {"oversize": 1, "deadline": 6}
        assert _partition(report, items, receiver) == 1
        assert [json.loads(e)["event"]["n"] for e in report.undelivered] == [2, 3, 4, 5, 6, 7]


def test_a_bad_event_then_a_token_refusal_keep_exactly_the_rest(make: Make) -> None:
    def on_request(request: ReceivedRequest) -> None:
        receiver.token_disabled = True  # from the second request on

    with HECSink(on_request=on_request) as receiver:
        receiver.reject_envelope(2)
        items = envelopes(10)
        transport = HECTransport(
            HECConfig(url=receiver.url, token=receiver.token, retry=FAST, max_batch_events=6)
        )
        try:
            report = transport.send(items)
        finally:
            transport.close()
        assert report.delivered == 2 and report.dropped == {"bad_event": 1, "auth": 7}
        assert _partition(report, items, receiver) == 1
        assert report.undelivered == items[3:]


def test_closing_during_a_backoff_keeps_exactly_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def on_request(request: ReceivedRequest) -> None:
        receiver.fail_next(1, 503, 9)  # every request after the first: busy

    caplog.set_level(logging.DEBUG, logger="py_mdr.hec")
    waiting = _BackoffStarted()
    logging.getLogger("py_mdr.hec").addHandler(waiting)
    with HECSink(on_request=on_request) as receiver:
        receiver.reject_envelope(1)
        items = envelopes(6)
        policy = RetryPolicy(initial_backoff=10, max_backoff=10, deadline=30)
        transport = HECTransport(
            HECConfig(url=receiver.url, token=receiver.token, retry=policy, max_batch_events=2)
        )

        def close_when_waiting() -> None:
            if waiting.event.wait(5):
                transport.close()

        closer = threading.Thread(target=close_when_waiting)
        try:
            closer.start()
            report = transport.send(items)
        finally:
            closer.join(5)
            transport.close()
            logging.getLogger("py_mdr.hec").removeHandler(waiting)
        assert report.delivered == 1 and report.dropped == {"bad_event": 1, "closed": 4}
        assert _partition(report, items, receiver) == 1
        assert report.undelivered == items[2:]


# ------------------------------------------------------------ told at once


class _Told:
    """A ``notify`` callback that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, HECError]] = []

    def __call__(self, kind: str, error: HECError) -> None:
        self.calls.append((kind, error))


def test_a_refused_token_is_told_once_however_many_sends(sink: HECSink, make: Make) -> None:
    told = _Told()
    secret = "not-the-token"
    transport = make(token=secret, notify=told)
    for _ in range(3):
        assert transport.send(envelopes(2)).dropped == {"auth": 2}
    assert [kind for kind, _ in told.calls] == ["auth"]
    message = str(told.calls[0][1])
    assert "MDR_TOKEN" in message and secret not in message


def test_a_refused_index_is_told_once(sink: HECSink, make: Make) -> None:
    told = _Told()
    sink.allowed_indexes = {"main"}
    transport = make(index="secret", notify=told)
    transport.send(envelopes(1, index="secret"))
    transport.send(envelopes(1, index="secret"))
    assert [kind for kind, _ in told.calls] == ["index"]
    assert "MDR_INDEX" in str(told.calls[0][1]) and "'secret'" in str(told.calls[0][1])


def test_an_answer_that_is_not_hec_is_told_once(sink: HECSink, make: Make) -> None:
    told = _Told()
    sink.answer_next(2, 200, LOGIN_PAGE, "text/html")
    transport = make(notify=told)
    transport.send(envelopes(1))
    transport.send(envelopes(1))
    assert [kind for kind, _ in told.calls] == ["not_hec"]


def test_a_host_name_that_does_not_resolve_is_told_once_and_retried(make: Make) -> None:
    told = _Told()
    host = "mdr.does-not-exist.invalid"
    transport = make(
        url=f"http://{host}:8088",
        notify=told,
        retry=RetryPolicy(initial_backoff=0.02, max_backoff=0.05, deadline=1.0),
    )
    started = time.monotonic()
    report = transport.send(envelopes(2))
    assert time.monotonic() - started < 2.0
    assert (
        report.dropped == {"deadline": 2} and report.retries >= 1
    )  # transient, within the deadline
    # the last attempt's error names the host either way: the answer "does not resolve", or a
    # lookup the deadline cut short (a slow resolver)
    assert f"the host name {host}" in str(report.error)
    transport.send(envelopes(1))
    assert [kind for kind, _ in told.calls] == ["dns"]
    message = str(told.calls[0][1])
    assert f"the host name {host} does not resolve" in message and "MDR_HOST" in message


def test_a_notify_that_raises_does_not_break_the_transport(sink: HECSink, make: Make) -> None:
    def broken(kind: str, error: HECError) -> None:
        raise RuntimeError("listener bug")

    sink.token_disabled = True
    report = make(notify=broken).send(envelopes(1))
    assert report.dropped == {"auth": 1}


# ------------------------- a receiver that echoes the token in its answer (issue 10)


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (403, '{"text":"Invalid token %s","code":4}', "application/json"),
        (400, '{"text":"Invalid data format near \\"%s\\"","code":6}', "application/json"),
        (200, "<html><body>Sign in again, %s</body></html>", "text/html"),
        (404, "no route for Splunk %s", "text/plain"),
    ],
)
def test_a_token_echoed_by_the_receiver_is_scrubbed_everywhere(
    caplog: pytest.LogCaptureFixture, status: int, body: str, content_type: str
) -> None:
    secret = "tok-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    told: list[str] = []
    with HECSink(token=secret) as receiver:
        receiver.answer_next(5, status, body % secret, content_type)
        transport = HECTransport(
            HECConfig(url=receiver.url, token=secret, retry=FAST),
            notify=lambda kind, error: told.append(f"{kind}: {error}"),
        )
        try:
            report = transport.send(envelopes(2))
            seen = [str(report.error), repr(report.error), repr(transport.stats()), *told]
        finally:
            transport.close()
    assert not report.ok and report.error is not None
    assert "<token>" in str(report.error)  # the answer was quoted, without the secret
    for text in seen + [record.getMessage() for record in caplog.records]:
        assert secret not in text


# The receiver's answer to one event is 157 bytes: the status line ends at byte 17, the headers
# at 130. Trickled at these paces, a 2 s deadline cuts it in the status line, in the headers
# and in the body.
@pytest.mark.parametrize("interval", [0.2, 0.05, 0.0135], ids=["status", "headers", "body"])
def test_an_answer_the_deadline_cuts_short_is_a_timeout_not_a_strange_server(
    sink: HECSink, make: Make, interval: float
) -> None:
    sink.trickle(interval)
    told: list[str] = []
    transport = make(
        retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=2.0),
        notify=lambda kind, error: told.append(kind),
    )
    report = transport.send(envelopes(1))
    assert report.dropped == {"deadline": 1}, report
    assert isinstance(report.error, HECTimeoutError), report.error
    assert "the events may have arrived" in str(report.error)
    assert told == [] and sink.event_count == 1  # stored: a timeout is "unknown", not "lost"
    health = transport.health(timeout=2.0)
    assert not health.ok and "no complete answer" in str(health.error), health


def test_one_bad_event_in_a_refused_body_costs_only_itself(sink: HECSink, make: Make) -> None:
    """A 400 code 6 that does not say which event is bad: the halves are sent until it is found."""
    sink.refuse_containing("poison")
    batch = envelopes(50)
    batch[37] = envelopes(1, tag="poison")[0]
    report = make().send(batch)
    assert report.dropped == {"bad_event": 1} and report.delivered == 49, report
    assert sorted(e["n"] for e in sink.events) == [n for n in range(50) if n != 37]
    assert len(sink.requests) <= 2 * 6 + 1  # one body, then two halves per level: log2(50) < 6


def test_hurry_retries_at_once_then_backs_off_again_until_its_deadline(
    sink: HECSink, make: Make
) -> None:
    sink.down = True  # 503 code 9 to everything
    transport = make(retry=RetryPolicy(initial_backoff=0.3, max_backoff=0.3, deadline=60.0))
    sink.fail_next(1, 503, 9, retry_after="30")  # the first answer asks for 30 s
    threading.Timer(0.5, lambda: transport.hurry(time.monotonic() + 1.5)).start()
    started = time.monotonic()
    report = transport.send(envelopes(2))
    took = time.monotonic() - started
    assert report.dropped == {"deadline": 2} and 1.5 < took < 3.0, (report, took)
    # the 30 s wait was cut at 0.5 s; then the jittered backoff (0-0.3 s, 0.15 s on average)
    # paces the retries: about ten in that second and a half, where a loop would send hundreds
    assert 3 <= len(sink.requests) <= 40, len(sink.requests)
