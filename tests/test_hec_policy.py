"""The transport's pure parts, no network: retry policy, response table, envelope, batching,
and the deadline watchdog (on socket pairs)."""

from __future__ import annotations

import dataclasses
import email.utils
import json
import pickle
import socket
import time

import pytest

from py_mdr.hec import watchdog
from py_mdr.hec.ack import AckTracker
from py_mdr.hec.batching import join_body, plan_bodies
from py_mdr.hec.codes import Action, classify, drop_reason, resendable
from py_mdr.hec.config import HECConfig
from py_mdr.hec.envelope import encode_envelope
from py_mdr.hec.errors import HECAuthError, HECError, HECRejectedError
from py_mdr.hec.reports import SendReport
from py_mdr.hec.response import parse_answer
from py_mdr.hec.retry import RetryPolicy, parse_retry_after
from py_mdr.hec.watchdog import Deadline, current_deadline

# ---------------------------------------------------------------- retry policy


def test_policy_is_immutable_and_validated() -> None:
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.deadline = 1  # type: ignore[misc]
    for bad in (
        {"deadline": 0},
        {"initial_backoff": -1},
        {"multiplier": 0.5},
        {"max_backoff": float("inf")},
    ):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=4.0, multiplier=2.0)
    top = [policy.backoff(n, rng=lambda: 1.0) for n in range(6)]
    assert top == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.backoff(10_000, rng=lambda: 1.0) == 4.0  # no overflow for huge attempts


def test_backoff_is_full_jitter() -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=8.0)
    assert policy.backoff(3, rng=lambda: 0.0) == 0.0
    assert policy.backoff(3, rng=lambda: 0.25) == 2.0
    waits = [policy.backoff(2) for _ in range(200)]
    assert all(0.0 <= w <= 4.0 for w in waits)
    assert len(set(waits)) > 150  # spread out, not a fixed ladder


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0)
    assert policy.backoff(0, retry_after=3.0, rng=lambda: 1.0) == 3.0
    assert policy.backoff(5, retry_after=0.2, rng=lambda: 1.0) == 1.0


def test_parse_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("1.5") == 1.5
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0
    for junk in (None, "", "soon", "-3", "nan", "Mon, 99 Foo 2024"):
        assert parse_retry_after(junk) is None


def test_parse_retry_after_takes_every_http_date_form() -> None:
    now = 784_111_777.0 - 30  # 30 s before Sun, 06 Nov 1994 08:49:37 GMT
    for form in (
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",
    ):  # obsolete asctime, no zone: GMT
        assert parse_retry_after(form, now=now) == pytest.approx(30.0)


def test_parse_retry_after_never_raises_on_odd_digits() -> None:
    # a Latin-1 header byte 0xB2 decodes to a superscript two, which str.isdigit() accepts
    assert parse_retry_after("\u00b2") is None
    assert parse_retry_after("9" * 5000) is None  # beyond int()'s digit limit; infinite


def test_policy_retryable_follows_the_table() -> None:
    policy = RetryPolicy()
    assert policy.retryable(None, None)
    assert policy.retryable(503, 9)
    assert policy.retryable(429, None)
    assert not policy.retryable(403, 4)
    assert not policy.retryable(400, 6)


# ------------------------------------------------------------ response table

TABLE = [
    # (status, hec code, invalid-event-number, action, drop reason)
    (200, 0, None, Action.OK, None),
    (201, 0, None, Action.OK, None),
    (200, None, None, Action.NOT_HEC, "not_hec"),
    (200, 6, None, Action.NOT_HEC, "not_hec"),
    (200, 4, None, Action.NOT_HEC, "not_hec"),
    (204, None, None, Action.NOT_HEC, "not_hec"),
    (302, None, None, Action.NOT_HEC, "not_hec"),
    (403, 1, None, Action.PERMANENT, "auth"),
    (401, 2, None, Action.PERMANENT, "auth"),
    (401, 3, None, Action.PERMANENT, "auth"),
    (403, 4, None, Action.PERMANENT, "auth"),
    (400, 5, None, Action.DROP_BATCH, "rejected_400"),
    (400, 6, None, Action.BISECT, None),
    (400, 6, 3, Action.PARTIAL, None),
    (400, 7, None, Action.PERMANENT, "index"),
    (500, 8, None, Action.RETRY, None),
    (503, 9, None, Action.RETRY, None),
    (400, 10, None, Action.DROP_BATCH, "rejected_400"),
    (400, 11, None, Action.DROP_BATCH, "rejected_400"),
    (400, 12, None, Action.BISECT, None),
    (400, 12, 0, Action.PARTIAL, None),
    (400, 13, None, Action.BISECT, None),
    (400, 14, None, Action.ACK_DISABLED, None),
    (400, 15, None, Action.BISECT, None),
    (503, 18, None, Action.RETRY, None),
    (503, 19, None, Action.RETRY, None),
    (503, 20, None, Action.RETRY, None),
    (413, None, None, Action.SPLIT, None),
    (429, None, None, Action.RETRY, None),
    (502, None, None, Action.RETRY, None),
    (504, None, None, Action.RETRY, None),
    (408, None, None, Action.RETRY, None),
    (None, None, None, Action.RETRY, None),
    (415, None, None, Action.DROP_BATCH, "rejected_415"),
    (404, None, None, Action.DROP_BATCH, "rejected_404"),
]


@pytest.mark.parametrize(("status", "code", "bad", "action", "reason"), TABLE)
def test_classify_each_row(
    status: int | None, code: int | None, bad: int | None, action: Action, reason: str | None
) -> None:
    assert classify(status, code, bad) is action
    if reason is not None:
        assert drop_reason(status, code) == reason


# ------------------------------------------------------------ answer parsing


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b"[1,2]",
        b"null",
        b'{"code": "x", "text": 5}',
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
        b'{"acks": [1]}',
    ],
)
def test_parse_answer_never_raises(body: bytes) -> None:
    answer = parse_answer(body)
    assert answer.hec_code is None
    assert len(answer.text) <= 200


def test_parse_answer_reads_hec_fields() -> None:
    answer = parse_answer(b'{"text":"Invalid data format","code":6,"invalid-event-number":2}')
    assert answer.hec_code == 6 and answer.text == "Invalid data format"
    assert answer.invalid_event_number == 2
    assert parse_answer(b'{"text":"Success","code":0,"ackId":7}').ack_id == 7
    assert parse_answer(b'{"acks":{"0":true,"1":false}}').acks == {0: True, 1: False}
    assert parse_answer(b"<html><b>Bad</b>   Gateway</html>").text == "Bad Gateway"


def test_parse_answer_tells_a_page_from_json() -> None:
    assert parse_answer(b"  <!DOCTYPE html><title>Sign in</title>").html
    assert not parse_answer(b'{"text":"Success","code":0}').html
    assert not parse_answer(b"Service Unavailable").html


@pytest.mark.parametrize(
    ("reason", "kept"),
    [
        ("deadline", True),
        ("closed", True),
        ("unreachable", True),
        ("request_error", True),
        ("tls", True),
        ("auth", True),
        ("index", True),
        ("not_hec", True),
        ("rejected_501", True),
        ("bad_event", False),
        ("oversize", False),
        ("rejected_400", False),
        ("rejected_415", False),
    ],
)
def test_only_reasons_that_may_pass_keep_the_envelopes(reason: str, kept: bool) -> None:
    assert resendable(reason) is kept


# ------------------------------------------------------------------ envelope


def test_envelope_has_every_key_and_ms_time() -> None:
    raw = encode_envelope(
        {"a": 1}, time=1_700_000_000.12345, host="h", source="s", sourcetype="pymdr::s", index="idx"
    )
    data = json.loads(raw)
    assert data == {
        "time": 1_700_000_000.123,
        "host": "h",
        "source": "s",
        "sourcetype": "pymdr::s",
        "index": "idx",
        "event": {"a": 1},
    }
    assert b" " not in raw and not raw.endswith(b"\n")


def test_envelope_without_index_and_with_preencoded_event() -> None:
    event = b'{"class_uid":2004,"message":"x y"}'
    raw = encode_envelope(event, time=1.0005, host="h\u00e9", source='q"s', sourcetype="t")
    assert event in raw  # copied as it is
    data = json.loads(raw)
    assert "index" not in data
    assert data["source"] == 'q"s' and data["host"] == "h\u00e9"
    assert data["time"] in (1.0, 1.001)


def test_envelope_time_non_finite_becomes_now() -> None:
    data = json.loads(
        encode_envelope({"a": 1}, time=float("nan"), host="h", source="s", sourcetype="t")
    )
    assert data["time"] > 1_600_000_000


def test_envelope_makes_mapping_json_safe() -> None:
    data = json.loads(
        encode_envelope(
            {"n": float("inf"), "b": b"x", "s": {3}}, time=0, host="h", source="s", sourcetype="t"
        )
    )
    assert data["event"] == {"n": "inf", "b": "x", "s": [3]}


# ------------------------------------------------------------------ batching


def envs(*sizes: int) -> list[bytes]:
    return [bytes([65 + i % 26]) * size for i, size in enumerate(sizes)]


def test_bodies_respect_byte_limit_counting_newlines() -> None:
    bodies, oversize = plan_bodies(
        envs(4, 4, 4, 4), max_body_bytes=9, max_batch_events=100, max_event_bytes=100
    )
    assert [len(join_body(b)) for b in bodies] == [9, 9]
    assert oversize == 0


def test_bodies_respect_event_count() -> None:
    bodies, _ = plan_bodies(
        envs(*[1] * 7), max_body_bytes=1000, max_batch_events=3, max_event_bytes=1000
    )
    assert [len(b) for b in bodies] == [3, 3, 1]


def test_oversize_envelope_is_dropped_and_does_not_sink_neighbours() -> None:
    items = envs(3, 50, 3, 20, 3)
    bodies, oversize = plan_bodies(
        items, max_body_bytes=30, max_batch_events=100, max_event_bytes=10
    )
    assert oversize == 2
    assert [e for b in bodies for e in b] == [items[0], items[2], items[4]]


def test_envelope_bigger_than_a_body_travels_alone() -> None:
    small, big = envs(5), envs(40)
    bodies, oversize = plan_bodies(
        [small[0], big[0], small[0]], max_body_bytes=30, max_batch_events=10, max_event_bytes=1000
    )
    assert oversize == 0 and bodies == [[small[0]], [big[0]], [small[0]]]


def test_order_is_kept_and_nothing_lost() -> None:
    items = envs(*range(1, 60))
    bodies, oversize = plan_bodies(
        items, max_body_bytes=100, max_batch_events=5, max_event_bytes=100
    )
    assert oversize == 0
    assert [e for b in bodies for e in b] == items
    assert all(len(join_body(b)) <= 100 and len(b) <= 5 for b in bodies)


# ------------------------------------------------------------- errors, misc


def test_error_messages_name_status_code_and_text() -> None:
    error = HECAuthError("Invalid token", status=403, hec_code=4)
    assert str(error) == "HTTP 403, HEC code 4: Invalid token"
    assert error.permanent and isinstance(error, HECError)
    assert not HECRejectedError("x", status=400).permanent
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is HECAuthError and str(copy) == str(error)


def test_config_repr_hides_token() -> None:
    cfg = HECConfig(url="https://h:8088", token="very-secret-value")
    assert "very-secret-value" not in repr(cfg)
    with pytest.raises(ValueError):
        HECConfig(url="h:8088", token="t")
    for bad in ("", "very-secret-value\r\nX: y", "very secret"):
        with pytest.raises(ValueError) as info:
            HECConfig(url="https://h:8088", token=bad)
        assert "secret" not in str(info.value)


def test_send_report_ok_and_drop() -> None:
    report = SendReport(delivered=3)
    assert report.ok
    report.drop("oversize", 2)
    report.drop("oversize", 1)
    assert not report.ok and report.dropped == {"oversize": 3} and report.dropped_total == 3


def test_ack_tracker_bounds_confirms_and_expires() -> None:
    tracker = AckTracker(max_pending=2)
    assert tracker.add(0, [b"a"], now=0.0) == 0
    assert tracker.add(1, [b"b", b"c"], now=1.0) == 0
    assert tracker.add(2, [b"d"], now=2.0) == 1  # id 0 forgotten (1 event)
    assert tracker.ids() == [1, 2]
    assert tracker.confirm({1: True, 2: False, 99: True}) == 2
    assert tracker.expired(now=5.0, ack_timeout=10.0) == []
    assert tracker.expired(now=12.0, ack_timeout=10.0) == [[b"d"]]
    assert len(tracker) == 0


# ------------------------------------------------------------------ watchdog


def test_a_deadline_cuts_a_blocked_read_at_once() -> None:
    reader, writer = socket.socketpair()
    with reader, writer:
        reader.settimeout(5.0)
        started = time.monotonic()
        with Deadline(started + 0.2) as deadline:
            assert current_deadline() is deadline
            deadline.attach(reader)
            writer.sendall(b"x")
            assert reader.recv(1) == b"x"  # what arrived in time is read
            assert reader.recv(1) == b""  # then the deadline ends the wait, not the timeout
        took = time.monotonic() - started
        assert deadline.fired and 0.15 <= took < 1.0
        assert current_deadline() is None


def test_a_socket_attached_after_the_deadline_is_cut_at_once() -> None:
    reader, writer = socket.socketpair()
    with reader, writer, Deadline(time.monotonic() + 0.05) as deadline:
        time.sleep(0.2)
        assert deadline.fired
        deadline.attach(reader)
        reader.settimeout(5.0)
        assert reader.recv(1) == b""


def test_an_ended_deadline_leaves_its_sockets_alone() -> None:
    reader, writer = socket.socketpair()
    with reader, writer:
        with Deadline(time.monotonic() + 0.1) as deadline:
            deadline.attach(reader)
        time.sleep(0.25)
        assert not deadline.fired
        writer.sendall(b"ok")
        reader.settimeout(1.0)
        assert reader.recv(2) == b"ok"


def test_deadlines_nest_and_many_short_scopes_do_not_pile_up() -> None:
    outer = Deadline(time.monotonic() + 60)
    with outer:
        with Deadline(time.monotonic() + 60) as inner:
            assert current_deadline() is inner
        assert current_deadline() is outer
        for _ in range(2_000):
            with Deadline(time.monotonic() + 60):
                pass
    assert len(watchdog._watchdog._heap) < 1_000


@pytest.mark.parametrize(
    ("sizes", "limit"),
    [((4, 4), 8), ((2, 2, 2), 7), ((3, 3, 3), 10)],
)
def test_no_body_exceeds_the_byte_limit_by_its_newlines(sizes: tuple[int, ...], limit: int) -> None:
    # each case fits the limit only if the newlines between envelopes are left uncounted
    items = envs(*sizes)
    bodies, oversize = plan_bodies(
        items, max_body_bytes=limit, max_batch_events=100, max_event_bytes=100
    )
    assert oversize == 0 and [e for b in bodies for e in b] == items
    assert all(len(join_body(body)) <= limit for body in bodies)
    assert sum(sizes) <= limit < sum(sizes) + len(sizes) - 1
