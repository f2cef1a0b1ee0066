"""The local HEC receiver, exercised over real HTTP on loopback with ``requests``."""

from __future__ import annotations

import gzip
import http.client
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import py_mdr.sink.server as sink_server
from py_mdr.sink import HECSink, format_event, make_self_signed_cert
from py_mdr.sink import main as sink_main

EVENT = "/services/collector/event"
HEALTH = "/services/collector/health"
ACK = "/services/collector/ack"
AUTH = {"Authorization": "Splunk test-token"}
CHANNEL = "6f1c3a52-6a51-4a63-9d0c-2f3c1f1d7c11"
OTHER_CHANNEL = "0b7e6c1e-3d6f-4f0e-8f55-5b9d0e3a9a02"
REPO = Path(__file__).resolve().parents[1]


def envelope(event: Any = None, **meta: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "time": 1_700_000_000.123,
        "host": "host-1",
        "source": "tests",
        "sourcetype": "pymdr::test",
        "event": {"message": "hello"} if event is None else event,
    }
    data.update(meta)
    return data


def body(*envelopes: Any) -> bytes:
    return "\n".join(json.dumps(e) for e in envelopes).encode()


def post(
    sink: HECSink,
    data: bytes,
    *,
    path: str = EVENT,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> requests.Response:
    return requests.post(
        sink.url + path, data=data, headers={**AUTH, **(headers or {})}, timeout=timeout
    )


@pytest.fixture
def ack_sink() -> Iterator[HECSink]:
    with HECSink(use_ack=True) as receiver:
        yield receiver


# --- endpoints and success ----------------------------------------------------------------------


def test_health_answers_healthy_without_a_token(sink: HECSink) -> None:
    answer = requests.get(sink.url + HEALTH, timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"text": "HEC is healthy", "code": 17}


@pytest.mark.parametrize(
    "path", ["/services/collector/event", "/services/collector", "/services/collector/event/1.0"]
)
def test_each_event_path_accepts_envelopes(sink: HECSink, path: str) -> None:
    first, second = envelope({"message": "a"}), envelope("raw text")
    answer = post(sink, body(first, second), path=path)
    assert answer.status_code == 200
    assert answer.json() == {"text": "Success", "code": 0}
    assert sink.envelopes == [first, second]
    assert sink.events == [{"message": "a"}, "raw text"]
    # HEC takes them; only the OCSF check says they are not events MDR can read
    assert [p.split(": ", 2)[:2] for p in sink.problems] == [["0", "<event>"], ["1", "<event>"]]
    assert all("not an OCSF event" in problem for problem in sink.problems)


def test_envelopes_may_be_separated_by_any_whitespace_or_nothing(sink: HECSink) -> None:
    one = json.dumps(envelope({"n": 1}))
    data = f"  {one} {one}{one}\r\n\t{one}\n".encode()
    assert post(sink, data).status_code == 200
    assert sink.event_count == 4


def test_unknown_path_is_404(sink: HECSink) -> None:
    answer = post(sink, body(envelope()), path="/services/collector/raw")
    assert answer.status_code == 404
    assert sink.events == []


def test_chunked_body_is_read(sink: HECSink) -> None:
    chunks = iter([body(envelope({"n": 1})), b"\n", body(envelope({"n": 2}))])
    answer = requests.post(sink.url + EVENT, data=chunks, headers=AUTH, timeout=5)
    assert answer.status_code == 200
    assert sink.events == [{"n": 1}, {"n": 2}]


def test_connection_is_kept_alive_between_requests(sink: HECSink) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=5)
    try:
        sockets = []
        for _ in range(2):
            connection.request("POST", EVENT, body=body(envelope()), headers=AUTH)
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
            sockets.append(connection.sock)
        assert sockets[0] is not None
        assert sockets[0] is sockets[1]  # not reopened: the server kept the connection
    finally:
        connection.close()


# --- token ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, 2),
        ({"Authorization": "Bearer test-token"}, 401, 3),
        ({"Authorization": "splunk test-token"}, 401, 3),
        ({"Authorization": "Splunktest-token"}, 401, 3),
        ({"Authorization": "Splunk wrong-token"}, 403, 4),
    ],
)
def test_token_is_checked_exactly(
    sink: HECSink, headers: dict[str, str], status: int, code: int
) -> None:
    answer = requests.post(sink.url + EVENT, data=body(envelope()), headers=headers, timeout=5)
    assert answer.status_code == status
    assert answer.json()["code"] == code
    assert sink.events == []


def test_disabled_token_is_403_code_1(sink: HECSink) -> None:
    sink.token_disabled = True
    answer = post(sink, body(envelope()))
    assert (answer.status_code, answer.json()["code"]) == (403, 1)


def test_token_is_never_kept_in_clear() -> None:
    secret = "S3cret-T0ken-value"
    with HECSink(token=secret) as receiver:
        for value in (f"Splunk {secret}", secret, f"Weird {secret}"):
            requests.post(
                receiver.url + EVENT,
                data=body(envelope()),
                headers={"Authorization": value},
                timeout=5,
            )
        recorded = [r.headers["Authorization"] for r in receiver.requests]
        assert recorded == ["Splunk <redacted>", "<redacted>", "<redacted>"]
        assert secret not in repr(receiver) + repr(receiver.requests) + str(receiver.requests)


# --- body encoding and parsing --------------------------------------------------------------------


def test_gzip_body_is_decompressed(sink: HECSink) -> None:
    compressed = gzip.compress(body(envelope({"n": 1}), envelope({"n": 2})))
    answer = post(sink, compressed, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 200
    assert sink.events == [{"n": 1}, {"n": 2}]
    recorded = sink.requests[-1]
    assert recorded.gzip is True
    assert recorded.body_bytes == len(compressed)


def test_other_content_encoding_is_415_with_an_empty_body(sink: HECSink) -> None:
    answer = post(sink, body(envelope()), headers={"Content-Encoding": "deflate"})
    assert answer.status_code == 415
    assert answer.content == b""
    assert sink.events == []


def test_broken_gzip_is_invalid_data(sink: HECSink) -> None:
    answer = post(sink, gzip.compress(body(envelope()))[:-12], headers={"Content-Encoding": "gzip"})
    assert (answer.status_code, answer.json()["code"]) == (400, 6)


@pytest.mark.parametrize("data", [b"", b"  \n\t"])
def test_empty_body_is_no_data(sink: HECSink, data: bytes) -> None:
    answer = post(sink, data)
    assert answer.status_code == 400
    assert answer.json() == {"text": "No data", "code": 5}


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (json.dumps([envelope()]).encode(), 12),  # an array body
        (json.dumps({"host": "h", "time": 1.0}).encode(), 12),  # no event field
        (body({**envelope(), "event": None}), 13),
        (body(envelope("")), 13),
        (body(envelope({})), 13),
        (body(envelope(42)), 6),
        (body(envelope(True)), 6),
        (body(envelope([1, 2])), 6),
        (body(envelope(fields={"team": {"name": "x"}})), 15),
        (b'{"event": {"a": 1}', 6),  # truncated JSON
        (b'{"event": {"a": NaN}}', 6),
    ],
)
def test_bad_envelope_codes(sink: HECSink, data: bytes, code: int) -> None:
    answer = post(sink, data)
    assert answer.status_code == 400
    assert answer.json()["code"] == code
    assert answer.json()["invalid-event-number"] == 0
    assert sink.events == []


def test_a_bad_envelope_keeps_the_ones_before_it_and_drops_the_rest(sink: HECSink) -> None:
    good = [envelope({"n": n}) for n in range(3)]
    answer = post(sink, body(*good, {"host": "no event"}, envelope({"n": 4})))
    assert answer.status_code == 400
    assert answer.json() == {
        "text": "Event field is required",
        "code": 12,
        "invalid-event-number": 3,
    }
    assert sink.events == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert sink.requests[-1].envelope_count == 3


def test_oversize_event_is_code_6(sink: HECSink) -> None:
    sink.max_event_bytes = 200
    answer = post(sink, body(envelope(), envelope({"message": "x" * 300})))
    assert answer.json() == {"text": "Invalid data format", "code": 6, "invalid-event-number": 1}
    assert len(sink.events) == 1


def test_index_not_allowed_is_code_7(sink: HECSink) -> None:
    sink.allowed_indexes = {"main"}
    answer = post(sink, body(envelope(index="main"), envelope(index="other")))
    assert answer.json() == {"text": "Incorrect index", "code": 7, "invalid-event-number": 1}
    assert len(sink.events) == 1


# --- problems -------------------------------------------------------------------------------------


def test_missing_host_is_flagged_with_the_event_index(sink: HECSink) -> None:
    second = envelope({"n": 1})
    del second["host"]
    assert post(sink, body(envelope({"n": 0}), second)).status_code == 200
    flagged = [p for p in sink.problems if "envelope" in p]
    assert len(flagged) == 1
    assert flagged[0].startswith("1: envelope: no host ")


def test_time_that_is_not_a_number_is_flagged(sink: HECSink) -> None:
    assert post(sink, body(envelope(time="2024-05-01T00:00:00Z"))).status_code == 200
    assert [p for p in sink.problems if p.startswith("0: envelope.time: not a number")]


def test_fields_that_splunk_would_drop_or_that_collide_are_flagged(sink: HECSink) -> None:
    data = body(envelope({"team": "a"}, fields={"count": 3, "team": "b", "ok": ["x", "y"]}))
    assert post(sink, data).status_code == 200
    assert sorted(p for p in sink.problems if "envelope" in p) == [
        "0: envelope.fields.count: not a string; Splunk drops it",
        "0: envelope.fields.team: collides with a key of the stored event",
    ]


def test_ocsf_problems_come_from_the_validator_prefixed_with_the_event_index(
    sink: HECSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []

    def fake_validate(event: Any) -> list[str]:
        seen.append(event)
        return ["metadata.product: required attribute is missing"]

    monkeypatch.setattr(sink_server, "load_validator", lambda: fake_validate)
    ocsf = {"class_uid": 1008, "message": "m"}
    assert post(sink, body(envelope({"message": "no class"}), envelope(ocsf))).status_code == 200
    assert seen == [ocsf]  # only the event with a class_uid
    not_ocsf, found = sink.problems
    assert not_ocsf.startswith("0: <event>: not an OCSF event: it has no class_uid")
    assert found == "1: metadata.product: required attribute is missing"


def test_real_validator_reports_an_incomplete_ocsf_event(sink: HECSink) -> None:
    pytest.importorskip("py_mdr.validate")
    assert post(sink, body(envelope({"class_uid": 1008, "message": "m"}))).status_code == 200
    assert sink.problems
    assert all(p.startswith("0: ") for p in sink.problems)


def test_validation_can_be_turned_off() -> None:
    with HECSink(validate=False) as receiver:
        assert post(receiver, body(envelope({"class_uid": 1008}))).status_code == 200
        assert receiver.problems == []


# --- acknowledgement ------------------------------------------------------------------------------


def test_acks_need_a_valid_channel(ack_sink: HECSink) -> None:
    missing = post(ack_sink, body(envelope()))
    assert (missing.status_code, missing.json()["code"]) == (400, 10)
    invalid = post(ack_sink, body(envelope()), headers={"X-Splunk-Request-Channel": "nope"})
    assert (invalid.status_code, invalid.json()["code"]) == (400, 11)
    assert ack_sink.events == []


def test_ack_ids_count_from_zero_per_channel_and_turn_true(ack_sink: HECSink) -> None:
    def send(channel: str) -> Any:
        answer = post(ack_sink, body(envelope()), headers={"X-Splunk-Request-Channel": channel})
        return answer.json()

    assert send(CHANNEL) == {"text": "Success", "code": 0, "ackId": 0}
    assert send(CHANNEL)["ackId"] == 1
    assert send(OTHER_CHANNEL)["ackId"] == 0
    headers = {"X-Splunk-Request-Channel": CHANNEL}
    poll = post(ack_sink, json.dumps({"acks": [0, 1, 7]}).encode(), path=ACK, headers=headers)
    assert poll.status_code == 200
    assert poll.json() == {"acks": {"0": True, "1": True, "7": False}}
    again = post(ack_sink, json.dumps({"acks": [0]}).encode(), path=ACK, headers=headers)
    assert again.json() == {"acks": {"0": False}}  # reported once, then forgotten


def test_channel_may_come_in_the_query_string(ack_sink: HECSink) -> None:
    answer = post(ack_sink, body(envelope()), path=f"{EVENT}?channel={CHANNEL}")
    assert answer.json()["ackId"] == 0
    assert ack_sink.requests[-1].channel == CHANNEL


def test_held_acks_stay_false_until_released(ack_sink: HECSink) -> None:
    headers = {"X-Splunk-Request-Channel": CHANNEL}
    ack_sink.hold_acks(True)
    ack_id = post(ack_sink, body(envelope()), headers=headers).json()["ackId"]
    poll = json.dumps({"acks": [ack_id]}).encode()
    assert post(ack_sink, poll, path=ACK, headers=headers).json() == {"acks": {"0": False}}
    ack_sink.hold_acks(False)
    assert post(ack_sink, poll, path=ACK, headers=headers).json() == {"acks": {"0": True}}


def test_ack_endpoint_when_acks_are_off(sink: HECSink) -> None:
    answer = post(sink, b'{"acks":[0]}', path=ACK, headers={"X-Splunk-Request-Channel": CHANNEL})
    assert answer.status_code == 400
    assert answer.json() == {"text": "ACK is disabled", "code": 14}


def test_no_ack_id_when_acks_are_off(sink: HECSink) -> None:
    answer = post(sink, body(envelope()), headers={"X-Splunk-Request-Channel": CHANNEL})
    assert answer.json() == {"text": "Success", "code": 0}


# --- fault modes ----------------------------------------------------------------------------------


def test_fail_next_answers_with_code_and_retry_after_then_recovers(sink: HECSink) -> None:
    sink.fail_next(2, status=503, code=9, retry_after="1")
    for _ in range(2):
        answer = post(sink, body(envelope()))
        assert answer.status_code == 503
        assert answer.json() == {"text": "Server is busy", "code": 9}
        assert answer.headers["Retry-After"] == "1"
    assert post(sink, body(envelope())).status_code == 200
    assert [r.status for r in sink.requests] == [503, 503, 200]
    assert len(sink.events) == 1


@pytest.mark.parametrize("status", [429, 500, 502, 504, 408])
def test_fail_next_without_code_has_an_empty_body(sink: HECSink, status: int) -> None:
    sink.fail_next(1, status=status, code=None, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    answer = post(sink, body(envelope()))
    assert answer.status_code == status
    assert answer.content == b""
    assert answer.headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert sink.requests[-1].hec_code is None


def test_failures_are_answered_in_the_order_they_were_queued(sink: HECSink) -> None:
    sink.fail_next(1, status=503)
    sink.fail_next(1, status=429, code=None)
    statuses = [post(sink, body(envelope())).status_code for _ in range(3)]
    assert statuses == [503, 429, 200]


def test_down_answers_busy_until_brought_back(sink: HECSink) -> None:
    sink.down = True
    for _ in range(3):
        answer = post(sink, body(envelope()))
        assert (answer.status_code, answer.json()["code"]) == (503, 9)
    health = requests.get(sink.url + HEALTH, timeout=5)
    assert (health.status_code, health.json()["code"]) == (503, 18)
    sink.down = False
    assert post(sink, body(envelope())).status_code == 200


def test_hang_stalls_only_that_request_and_stop_ends_it(sink: HECSink) -> None:
    sink.hang(30.0, n=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(sink, body(envelope()), timeout=0.3)
    started = time.monotonic()
    assert requests.get(sink.url + HEALTH, timeout=5).status_code == 200
    assert post(sink, body(envelope({"after": 1}))).status_code == 200  # n=1: one hang only
    assert time.monotonic() - started < 2.0
    started = time.monotonic()
    sink.stop()
    assert time.monotonic() - started < 2.0
    assert sink.wait_for_requests(3, timeout=5)
    hung = [r for r in sink.requests if r.path == EVENT and r.status == 0]
    assert len(hung) == 1  # recorded once stop ended it, never answered
    assert sink.events == [{"after": 1}]


def test_hang_then_answers_normally(sink: HECSink) -> None:
    sink.hang(0.2)
    started = time.monotonic()
    assert post(sink, body(envelope())).status_code == 200
    assert time.monotonic() - started >= 0.2
    sink.hang(0)
    assert len(sink.events) == 1


def test_hang_then_close_drops_the_connection_after_the_pause(sink: HECSink) -> None:
    sink.hang(0.2, n=1, then_close=True)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        post(sink, body(envelope()))
    assert time.monotonic() - started >= 0.2
    assert post(sink, body(envelope())).status_code == 200  # n=1: once only
    assert [r.status for r in sink.requests] == [0, 200]
    assert len(sink.events) == 1


def test_close_next_drops_the_connection_without_an_answer(sink: HECSink) -> None:
    sink.close_next(1)
    with pytest.raises(requests.exceptions.ConnectionError):
        post(sink, body(envelope()))
    assert post(sink, body(envelope())).status_code == 200
    assert [r.status for r in sink.requests] == [0, 200]
    assert len(sink.events) == 1


LOGIN_PAGE = "<!DOCTYPE html><html><head><title>Sign in</title></head><body>SSO</body></html>"


def test_answer_next_sends_exactly_that_and_stores_nothing(sink: HECSink) -> None:
    sink.answer_next(1, 200, LOGIN_PAGE, "text/html; charset=utf-8")
    answer = post(sink, body(envelope()))
    assert answer.status_code == 200 and answer.text == LOGIN_PAGE
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert sink.event_count == 0 and sink.requests[-1].hec_code is None
    assert post(sink, body(envelope())).json() == {"text": "Success", "code": 0}
    assert sink.event_count == 1


def test_answer_next_may_fake_success_or_be_empty_and_queues_with_fail_next(
    sink: HECSink,
) -> None:
    sink.fail_next(1, status=503)
    sink.answer_next(1, 200, b'{"text":"Invalid data format","code":6}', "application/json")
    sink.answer_next(1)
    first, second, third = (post(sink, body(envelope())) for _ in range(3))
    assert first.status_code == 503
    assert (second.status_code, second.json()) == (200, {"text": "Invalid data format", "code": 6})
    assert (third.status_code, third.content) == (200, b"")
    assert "Content-Type" not in third.headers
    assert sink.event_count == 0


def _read_slowly(sink: HECSink, count: int, path: str = EVENT) -> tuple[list[bytes], float]:
    """Send one request on a raw connection; the first ``count`` reads and how long they took."""
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as raw:
        data = body(envelope())
        method = "GET" if path == HEALTH else "POST"
        raw.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Splunk test-token\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        started = time.monotonic()
        reads = [raw.recv(100) for _ in range(count)]
        return reads, time.monotonic() - started


def test_trickle_writes_the_answer_one_byte_per_interval(sink: HECSink) -> None:
    sink.trickle(0.05, n=1)
    reads, took = _read_slowly(sink, 6)
    assert reads == [b"H", b"T", b"T", b"P", b"/", b"1"]  # the status line too
    assert 0.2 <= took < 2.0
    assert sink.wait_for_events(1)  # handled normally before the slow answer
    started = time.monotonic()
    assert post(sink, body(envelope())).status_code == 200  # n=1: the next is at once
    assert time.monotonic() - started < 0.5


def test_trickle_paces_health_unless_told_not_to(sink: HECSink) -> None:
    sink.trickle(0.05, health=False)
    assert requests.get(sink.url + HEALTH, timeout=0.5).json()["code"] == 17
    sink.trickle(0.05)
    assert _read_slowly(sink, 2, HEALTH)[0] == [b"H", b"T"]
    sink.trickle(0)
    assert requests.get(sink.url + HEALTH, timeout=0.5).status_code == 200


def test_stop_ends_a_trickled_answer_at_once(sink: HECSink) -> None:
    sink.trickle(30.0)
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as raw:
        raw.sendall(b"GET /services/collector/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.recv(100) == b"H"
        started = time.monotonic()
        sink.stop()
        while raw.recv(100):  # the rest of the answer never comes; the connection ends
            pass
        assert time.monotonic() - started < 2.0


def test_body_over_max_body_bytes_is_413(sink: HECSink) -> None:
    small = body(envelope())
    sink.max_body_bytes = len(small)
    assert post(sink, small).status_code == 200
    big = body(envelope(), envelope())
    answer = post(sink, big)
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "text/plain"
    # the limit applies to the decompressed size, however small the gzip is
    squeezed = post(sink, gzip.compress(big), headers={"Content-Encoding": "gzip"})
    assert squeezed.status_code == 413
    assert len(gzip.compress(big)) < len(small)
    assert sink.event_count == 1


def test_reject_envelope_keeps_the_ones_before_it(sink: HECSink) -> None:
    sink.reject_envelope(2)
    batch = [envelope({"n": n}) for n in range(5)]
    answer = post(sink, body(*batch))
    assert answer.status_code == 400
    assert answer.json() == {"text": "Invalid data format", "code": 6, "invalid-event-number": 2}
    assert sink.events == [{"n": 0}, {"n": 1}]
    assert post(sink, body(*batch[3:])).status_code == 200  # used up: the resend goes through
    assert sink.events == [{"n": n} for n in (0, 1, 3, 4)]


def test_reject_envelope_beyond_a_short_body_is_used_up(sink: HECSink) -> None:
    sink.reject_envelope(5)
    assert post(sink, body(envelope())).status_code == 200
    assert post(sink, body(*[envelope() for _ in range(7)])).status_code == 200


def test_clear_faults_ends_every_mode(sink: HECSink) -> None:
    sink.fail_next(3)
    sink.answer_next(2, 200, LOGIN_PAGE)
    sink.trickle(30.0)
    sink.close_next(2)
    sink.reject_envelope(0)
    sink.down = True
    sink.clear_faults()
    assert post(sink, body(envelope())).status_code == 200


# --- records, waiting, bounds ---------------------------------------------------------------------


def test_each_request_is_recorded_with_its_arrival_time(sink: HECSink) -> None:
    before = time.time()
    post(sink, body(envelope(), envelope()), headers={"X-Splunk-Request-Channel": CHANNEL})
    after = time.time()
    requests.get(sink.url + HEALTH, timeout=5)
    event, health = sink.requests
    assert before <= event.time <= after <= health.time
    assert (event.method, event.path, event.status, event.hec_code) == ("POST", EVENT, 200, 0)
    assert (event.envelope_count, event.gzip, event.channel) == (2, False, CHANNEL)
    assert event.body_bytes == len(body(envelope(), envelope()))
    assert (health.method, health.path, health.hec_code) == ("GET", HEALTH, 17)


def test_wait_for_events_wakes_when_they_arrive(sink: HECSink) -> None:
    sender = threading.Timer(0.1, post, args=(sink, body(envelope(), envelope())))
    sender.start()
    try:
        assert sink.wait_for_events(2, timeout=5)
        assert not sink.wait_for_events(3, timeout=0.05)
    finally:
        sender.join(5)


def test_stored_envelopes_are_capped_and_the_rest_counted() -> None:
    with HECSink(max_events=2, max_requests=1) as receiver:
        post(receiver, body(envelope({"n": 0}), envelope({"n": 1}), envelope({"n": 2})))
        post(receiver, body(envelope({"n": 3})))
        assert receiver.events == [{"n": 0}, {"n": 1}]
        assert receiver.event_count == 4
        assert receiver.not_stored == {"envelopes": 2, "requests": 1, "problems": 0}


def test_clear_forgets_what_was_received(sink: HECSink) -> None:
    post(sink, body(envelope(host=None)))
    sink.clear()
    assert (sink.events, sink.requests, sink.problems, sink.event_count) == ([], [], [], 0)


def test_stop_is_quick_with_an_idle_keep_alive_connection() -> None:
    receiver = HECSink().start()
    with requests.Session() as session:
        session.post(receiver.url + EVENT, data=body(envelope()), headers=AUTH, timeout=5)
        started = time.monotonic()
        receiver.stop()
        receiver.stop()  # idempotent
        assert time.monotonic() - started < 1.0


# --- TLS ------------------------------------------------------------------------------------------


def test_tls_with_a_self_signed_certificate(tmp_path: Path) -> None:
    certfile, keyfile = make_self_signed_cert(tmp_path)
    with HECSink(tls=(certfile, keyfile)) as receiver:
        assert receiver.url.startswith("https://127.0.0.1:")
        answer = requests.post(
            receiver.url + EVENT, data=body(envelope()), headers=AUTH, verify=certfile, timeout=5
        )
        assert answer.status_code == 200
        assert receiver.events == [{"message": "hello"}]
        with pytest.raises(requests.exceptions.SSLError):  # verification really happens
            requests.get(receiver.url + HEALTH, timeout=5)


# --- command line ---------------------------------------------------------------------------------


def test_format_event_is_one_line_with_problems_below() -> None:
    event = {
        "class_uid": 1008,
        "class_name": "Event Log Activity",
        "severity": "Informational",
        "message": "two\nlines",
    }
    text = format_event(7, envelope(event, time=0.25), ["0: time: missing"])
    assert text.splitlines() == [
        "#7 1970-01-01T00:00:00.250Z pymdr::test Event Log Activity/1008 [Informational] "
        "two\\nlines",
        "    ! 0: time: missing",
    ]


def test_format_event_summarises_an_event_without_a_message() -> None:
    line = format_event(0, {"event": {"status": "New", "x": 1}})
    assert line == "#0 time? - New"


def test_command_line_prints_events_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "py_mdr.sink", "--port", "0", "--token", "cli-token"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        banner = lines.get(timeout=20)
        assert banner.startswith("HEC receiver listening on http://127.0.0.1:")
        url = banner.split()[4]
        answer = requests.post(
            url + EVENT,
            data=body(envelope({"message": "hello from the test"})),
            headers={"Authorization": "Splunk cli-token"},
            timeout=5,
        )
        assert answer.status_code == 200
        assert "pymdr::test" in (line := lines.get(timeout=10))
        assert "hello from the test" in line
        assert "not an OCSF event" in lines.get(timeout=10)  # below the event, as its problem
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        reader.join(5)
        assert lines.get(timeout=1) == "stopped after 1 events and 1 problems"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        assert process.stderr is not None
        process.stderr.close()
        if process.stdout is not None:
            process.stdout.close()


# --- leniency, and events that are not OCSF (issue 11) --------------------------------------------


def test_a_numeric_string_time_is_taken_as_hec_takes_it(sink: HECSink) -> None:
    assert post(sink, body(envelope(time="1700000000.5"))).status_code == 200
    assert not [p for p in sink.problems if "envelope.time" in p]
    shown = format_event(0, sink.envelopes[0])
    assert "2023-11-14T22:13:20.500Z" in shown
    assert post(sink, body(envelope(time="tomorrow"))).status_code == 200  # still flagged
    assert [p for p in sink.problems if p.startswith("1: envelope.time: not a number")]


def test_an_event_that_is_not_ocsf_at_all_is_told_what_it_lacks(sink: HECSink) -> None:
    almost = {"message": "m", "time": 1_700_000_000_000, "metadata": {"version": "1.3.0"}}
    assert post(sink, body(envelope(almost), envelope("plain text"))).status_code == 200
    dict_problem, text_problem = sink.problems
    assert dict_problem.startswith("0: <event>: not an OCSF event: it has no class_uid; missing ")
    missing = dict_problem.split("; missing ", 1)[1].split(" (", 1)[0].split(", ")
    assert missing == ["class_uid", "activity_id", "category_uid", "type_uid", "severity_id"]
    assert text_problem.startswith("1: <event>: not an OCSF event: it is text, not a JSON object")


# --- memory and connection caps (issue 11) --------------------------------------------------------


def _in_thread(call: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    return thread, result


def _wait_until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_body_waits_while_others_hold_the_memory_budget() -> None:
    one = body(envelope({"message": "x" * 90_000}))
    with HECSink(max_inflight_bytes=150_000) as sink:
        sink.hang(1.0, n=1)  # the first request holds its body for a second
        first, first_answer = _in_thread(lambda: post(sink, one))
        assert _wait_until(lambda: sink.inflight_bytes == len(one))
        second, second_answer = _in_thread(lambda: post(sink, one))
        second.join(0.5)
        assert second.is_alive()  # waiting for room: not read, not held
        assert sink.inflight_bytes == len(one)
        first.join(5)
        second.join(5)
        assert [r.status_code for r in first_answer + second_answer] == [200, 200]
        assert sink.event_count == 2 and sink.inflight_bytes == 0


def test_a_small_body_does_not_wait_for_a_large_one_within_the_budget() -> None:
    with HECSink(max_inflight_bytes=150_000) as sink:
        sink.hang(2.0, n=1)
        large = body(envelope({"message": "x" * 90_000}))
        first, _ = _in_thread(lambda: post(sink, large))
        assert _wait_until(lambda: sink.inflight_bytes == len(large))
        assert post(sink, body(envelope())).status_code == 200
        assert first.is_alive()  # the small one was answered while the large one still hangs
        first.join(5)


def test_a_gzip_body_that_would_inflate_past_the_budget_is_answered_busy() -> None:
    held = body(envelope({"message": "x" * 600_000}))
    bomb = gzip.compress(body(*[envelope({"message": "y" * 1000})] * 3000))  # ~3.5 MB inflated
    with HECSink(max_inflight_bytes=1_500_000) as sink:
        sink.hang(2.0, n=1)
        first, _ = _in_thread(lambda: post(sink, held))
        assert _wait_until(lambda: sink.inflight_bytes == len(held))
        answer = post(sink, bomb, headers={"Content-Encoding": "gzip"})
        assert (answer.status_code, answer.json()["code"]) == (503, 9)
        first.join(5)
        assert post(sink, bomb, headers={"Content-Encoding": "gzip"}).status_code == 200
        assert sink.inflight_bytes == 0


def test_connections_beyond_the_cap_are_answered_busy() -> None:
    with HECSink(max_connections=1) as sink:
        held = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=5)
        held.request("POST", EVENT, body=body(envelope()), headers=AUTH)
        assert held.getresponse().read()  # answered, and the connection stays open
        refused = post(sink, body(envelope()))
        assert (refused.status_code, refused.json()["code"]) == (503, 9)
        assert refused.headers.get("Connection") == "close"
        held.close()
        assert _wait_until(lambda: post(sink, body(envelope())).status_code == 200)


def test_caps_must_be_positive_whole_numbers() -> None:
    with pytest.raises(ValueError, match="max_inflight_bytes"):
        HECSink(max_inflight_bytes=0)
    with pytest.raises(ValueError, match="max_connections"):
        HECSink(max_connections=-1)
    with pytest.raises(ValueError, match="max_body_bytes"):
        HECSink(max_body_bytes=0)
    with pytest.raises(ValueError, match="client_ca needs tls"):
        HECSink(client_ca="ca.pem")


def test_the_body_cap_given_to_the_constructor_answers_413_as_hec_does() -> None:
    with HECSink(max_body_bytes=200) as sink:
        assert post(sink, body(envelope())).status_code == 200
        answer = post(sink, body(envelope({"message": "x" * 300})))
        assert (answer.status_code, answer.text) == (413, "Payload Too Large")
        assert sink.inflight_bytes == 0


def test_the_command_line_receiver_wants_https_for_client_certificates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stop:
        sink_main(["--tls-client-ca", "ca.pem"])
    assert stop.value.code == 2
    assert "--tls-client-ca needs HTTPS" in capsys.readouterr().err


# --- fork (issue 11) ------------------------------------------------------------------------------

_FORK_CHILD = """
import json, os, sys, time, requests
from py_mdr.sink import HECSink

sink = HECSink(token="t").start()
auth = {"Authorization": "Splunk t"}
requests.post(sink.url + "/services/collector/event", data=b'{"event":"one"}', headers=auth)
sink._lock.acquire()  # as if a parent's thread held it at the fork
pid = os.fork()
if pid == 0:
    started = time.monotonic()
    seen = sink.event_count  # the child's locks are fresh
    sink.stop()
    print(json.dumps({"seen": seen, "stop_s": time.monotonic() - started}), flush=True)
    os._exit(0)
sink._lock.release()
for _ in range(1000):  # up to 10 s
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.01)
else:
    os.kill(pid, 9)
    print(json.dumps({"child": "hung"}), flush=True)
answer = requests.post(
    sink.url + "/services/collector/event", data=b'{"event":"two"}', headers=auth, timeout=5
)
print(json.dumps({"parent_after": answer.status_code, "count": sink.event_count}), flush=True)
sink.stop()
"""


def test_a_sink_left_from_the_parent_stops_at_once_in_a_forked_child() -> None:
    from processes import run_child

    done = run_child(_FORK_CHILD, timeout=60)
    assert done.returncode == 0, done.stderr
    child, parent = (json.loads(line) for line in done.stdout.splitlines())
    assert child["seen"] == 1 and child["stop_s"] < 1.0
    assert parent == {"parent_after": 200, "count": 2}  # the parent's server is untouched
