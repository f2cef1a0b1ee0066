"""MDRClient against the real receiver: envelopes, synchronous errors, TLS, secrets, seed API."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import pickle
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from processes import closed_port_url

from py_mdr import config
from py_mdr.client import MDRClient, MDRDeliveryError
from py_mdr.hec.config import HECConfig
from py_mdr.hec.errors import HECAuthError, HECError, HECTLSError
from py_mdr.hec.retry import RetryPolicy
from py_mdr.hec.transport import HECTransport
from py_mdr.sink import HECSink, make_self_signed_cert
from py_mdr.validate import validate

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=3.0)


@pytest.fixture
def client(sink: HECSink) -> Iterator[MDRClient]:
    with MDRClient("unit-tests", host=sink.url, token=sink.token, retry=FAST) as made:
        yield made


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "name", ["a", "my-app", "App_2.prod", "9lives", "x" * 100, "<PROJECT_NAME>", "-lead"]
)
def test_valid_names(name: str) -> None:
    assert MDRClient(name, host="h:8088", token="t").name == name


@pytest.mark.parametrize(
    "name", ["", "has space", "semi;colon", "x" * 101, "caf\u00e9", "a:b", "tab\there", 7]
)
def test_invalid_names_are_refused_naming_the_allowed_characters(name: str) -> None:
    with pytest.raises(ValueError, match=re.escape("printable ASCII characters without spaces")):
        MDRClient(name, host="h:8088", token="t")


def test_constructor_does_no_network_io(sink: HECSink) -> None:
    MDRClient("quiet", host=sink.url, token=sink.token).close()
    MDRClient("nowhere", host=closed_port_url(), token="t").close()
    assert sink.requests == []


def test_missing_host_and_token_say_how_to_fix() -> None:
    with pytest.raises(config.ConfigError, match="MDR_HOST"):
        MDRClient("app", token="t")
    with pytest.raises(config.ConfigError, match="MDR_TOKEN"):
        MDRClient("app", host="h")


def test_host_without_scheme_means_https() -> None:
    assert MDRClient("app", host="hec.example.com:8088", token="t").url == (
        "https://hec.example.com:8088"
    )
    assert MDRClient("app", host="http://10.0.0.1:8088/", token="t").url == "http://10.0.0.1:8088"


# ----------------------------------------------------------------------- sending


def test_send_dict_writes_the_documented_envelope(sink: HECSink, client: MDRClient) -> None:
    event = {
        "class_uid": 2004,
        "time": 1_700_000_000_123,
        "message": "hello",
        "count": 0,
        "empty": "",
    }
    report = client.send(event, as_given=True)
    assert report.ok and report.delivered == 1
    (envelope,) = sink.envelopes
    assert envelope == {
        "time": 1_700_000_000.123,
        "host": socket.gethostname(),
        "source": "unit-tests",
        "sourcetype": "pymdr::unit-tests",
        "event": event,  # as_given: only made JSON-safe
    }


DEMO_DICT = {"class_uid": 1008, "message": "a dict sent with MDRClient.send"}


def test_a_dict_is_completed_as_py_mdr_send_completes_it(
    sink: HECSink, client: MDRClient, tmp_path: pathlib.Path
) -> None:
    assert len(validate(DEMO_DICT)) == 7  # what 2.0 sent: the receiver listed 7 problems
    client.send(DEMO_DICT)
    (sent,) = sink.events
    assert validate(sent) == []
    assert sent["metadata"]["product"] == {"name": "unit-tests", "vendor_name": "unknown"}
    assert sent["log_name"] == "unit-tests" and sent["type_uid"] == 100801 - 1
    # the command, given the same dict and name, sends the same event (its metadata.uid aside)
    path = tmp_path / "event.json"
    path.write_text(json.dumps({**DEMO_DICT, "time": sent["time"]}))
    with HECSink(token="t") as other:
        env = {**os.environ, "MDR_HOST": other.url, "MDR_TOKEN": "t"}
        result = subprocess.run(
            [sys.executable, "-m", "py_mdr", "send", "--name", "unit-tests", str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        (by_command,) = other.events
    assert _without_uid(by_command) == _without_uid(sent)


def _without_uid(event: dict[str, Any]) -> dict[str, Any]:
    metadata = {key: value for key, value in event["metadata"].items() if key != "uid"}
    return {**event, "metadata": metadata}


def test_a_dict_sent_as_given_is_not_completed(sink: HECSink, client: MDRClient) -> None:
    client.send(DEMO_DICT, as_given=True)
    assert sink.events == [DEMO_DICT]
    client.send(
        {
            "class_uid": 1008,
            "log_file": {"name": "app.log"},
            "metadata": {"product": {"name": "mine"}},
        }
    )
    (_, kept) = sink.events
    assert kept["metadata"]["product"] == {"name": "mine"} and "log_name" not in kept


def test_event_without_time_is_stamped_now(sink: HECSink, client: MDRClient) -> None:
    before = time.time()
    client.send({"message": "no time"})
    after = time.time()
    stamp = sink.envelopes[0]["time"]
    assert before - 0.001 <= stamp <= after + 0.001
    assert round(stamp, 3) == stamp


def test_index_is_written_only_when_configured(
    sink: HECSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MDR_INDEX", "security")
    with MDRClient("idx", host=sink.url, token=sink.token) as indexed:
        indexed.send({"a": 1})
    assert sink.envelopes[0]["index"] == "security"


def test_send_batch_uses_one_request(sink: HECSink, client: MDRClient) -> None:
    report = client.send_batch({"n": n} for n in range(50))
    assert report.delivered == 50
    assert len(sink.requests) == 1 and [e["n"] for e in sink.events] == list(range(50))
    assert client.send_batch([]).delivered == 0


def test_not_an_event_is_refused_before_sending(sink: HECSink, client: MDRClient) -> None:
    with pytest.raises(TypeError):
        client.send("just a string")
    with pytest.raises(ValueError, match="empty event"):
        client.send({})
    assert sink.requests == []


def test_retried_send_is_delivered_once(sink: HECSink, client: MDRClient) -> None:
    sink.fail_next(2, 503, 9)
    report = client.send({"id": "once"})
    assert report.ok and report.retries == 2
    assert sink.events == [{"id": "once"}]


# ------------------------------------------------------------------------ errors


def test_refused_token_raises_a_typed_error_naming_code_and_text(sink: HECSink) -> None:
    client = MDRClient("app", host=sink.url, token="wrong-token", retry=FAST)
    with client, pytest.raises(MDRDeliveryError) as info:
        client.send({"a": 1})
    error = info.value
    assert isinstance(error, HECError) and error.permanent
    assert (error.status, error.hec_code) == (403, 4)
    assert "HEC code 4" in str(error) and "Invalid token" in str(error)
    assert error.report.dropped == {"auth": 1}
    assert isinstance(error.__cause__, HECAuthError)
    assert "wrong-token" not in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.report.dropped == {"auth": 1}


def test_partial_acceptance_raises_with_the_report(sink: HECSink, client: MDRClient) -> None:
    sink.reject_envelope(1)
    with pytest.raises(MDRDeliveryError) as info:
        client.send_batch([{"n": 0}, {"n": 1}, {"n": 2}])
    report = info.value.report
    assert report.delivered == 2 and report.dropped == {"bad_event": 1}
    assert "1 of 3" in str(info.value) and "HEC code 6" in str(info.value)
    assert [e["n"] for e in sink.events] == [0, 2]  # each good event exactly once


def test_hanging_receiver_raises_within_the_timeout(sink: HECSink) -> None:
    sink.hang(5.0)
    with MDRClient("app", host=sink.url, token=sink.token, timeout=0.6) as client:
        started = time.monotonic()
        with pytest.raises(MDRDeliveryError) as info:
            client.send({"a": 1})
        assert time.monotonic() - started < 1.3
    assert info.value.report.dropped == {"deadline": 1}


def test_a_trickling_receiver_cannot_stretch_send_past_the_timeout(sink: HECSink) -> None:
    sink.trickle(0.5)  # a 200 success, one byte every half second
    with MDRClient("app", host=sink.url, token=sink.token, timeout=3) as client:
        started = time.monotonic()
        with pytest.raises(MDRDeliveryError) as info:
            client.send({"a": 1})
        assert time.monotonic() - started < 4.0
        started = time.monotonic()
        health = client.health(timeout=1.0)
        assert not health.ok and time.monotonic() - started < 2.0
    assert info.value.report.dropped == {"deadline": 1}
    assert "still answering" in str(info.value)
    assert len(info.value.report.undelivered) == 1


def test_a_proxy_login_page_is_not_a_delivery(sink: HECSink, client: MDRClient) -> None:
    sink.answer_next(1, 200, "<html><title>Please sign in</title></html>", "text/html")
    with pytest.raises(MDRDeliveryError) as info:
        client.send({"a": 1})
    message = str(info.value)
    assert "did not answer like HEC" in message and "proxy may be in the way" in message
    assert info.value.report.dropped == {"not_hec": 1} and info.value.permanent
    assert sink.events == []


def test_a_200_with_another_hec_code_is_not_a_delivery(sink: HECSink, client: MDRClient) -> None:
    sink.answer_next(1, 200, '{"text":"Invalid data format","code":6}', "application/json")
    with pytest.raises(MDRDeliveryError, match=r"did not answer like HEC.*HEC code 6"):
        client.send({"a": 1})


def test_unreachable_endpoint_raises_within_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDR_TIMEOUT", "0.5")
    with MDRClient("app", host=closed_port_url(), token="t") as client:
        started = time.monotonic()
        with pytest.raises(MDRDeliveryError, match="could not connect"):
            client.send({"a": 1})
        assert time.monotonic() - started < 1.2


def test_waiting_behind_another_send_counts_against_the_deadline(sink: HECSink) -> None:
    sink.hang(30.0)
    with MDRClient("app", host=sink.url, token=sink.token, timeout=1.5) as client:
        first = threading.Thread(target=_send_expecting_failure, args=(client, {"n": 1}))
        first.start()
        try:
            for _ in range(500):  # bounded: until the first send holds the client
                if client._lock.locked():
                    break
                time.sleep(0.01)
            assert client._lock.locked()
            started = time.monotonic()
            with pytest.raises(MDRDeliveryError) as info:
                client.send({"n": 2})
            elapsed = time.monotonic() - started
        finally:
            first.join(timeout=10)
    assert elapsed < 2.2  # its own 1.5 s, not the first send's wait plus 1.5 s
    assert info.value.report.dropped == {"deadline": 1}
    assert len(info.value.report.undelivered) == 1  # kept, to be sent again


def _send_expecting_failure(client: MDRClient, event: dict[str, object]) -> None:
    with pytest.raises(MDRDeliveryError):
        client.send(event)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_another_thread_sends_can_send(sink: HECSink) -> None:
    with MDRClient("forked", host=sink.url, token=sink.token, timeout=2) as client:
        held, release = threading.Event(), threading.Event()

        def hold_the_client() -> None:  # as a send in flight in another thread does
            with client._lock:
                held.set()
                release.wait(timeout=30)

        holder = threading.Thread(target=hold_the_client)
        holder.start()
        try:
            assert held.wait(timeout=5)
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: the holding thread does not exist here
                result = b"?"
                try:
                    result = b"ok" if client.send({"who": "child"}).ok else b"not ok"
                except BaseException as exc:
                    result = type(exc).__name__.encode()
                finally:
                    os.write(write_end, result)
                    os._exit(0)
            os.close(write_end)
            ready, _, _ = select.select([read_end], [], [], 15)
            answer = os.read(read_end, 64) if ready else b"(no answer: the child hung)"
            os.close(read_end)
            if not ready:
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        finally:
            release.set()
            holder.join(timeout=5)
    assert answer == b"ok"
    assert sink.events == [{"who": "child"}]


def test_send_after_close_raises(sink: HECSink) -> None:
    with MDRClient("app", host=sink.url, token=sink.token) as client:
        pass
    with pytest.raises(MDRDeliveryError, match="closed"):
        client.send({"a": 1})
    assert sink.requests == []


def test_health(sink: HECSink, client: MDRClient) -> None:
    assert client.health().ok
    sink.down = True
    report = client.health()
    assert not report.ok and report.hec_code == 18


def test_with_acks_send_returns_once_acknowledged() -> None:
    with (
        HECSink(use_ack=True) as receiver,
        MDRClient(
            "acked", host=receiver.url, token=receiver.token, use_ack=True, retry=FAST
        ) as client,
    ):
        report = client.send({"a": 1})
        assert report.ok and client.stats().acks_pending == 0
        polls = [r for r in receiver.requests if r.path == "/services/collector/ack"]
        assert len(polls) >= 1


def test_with_acks_an_unconfirmed_send_raises_at_the_deadline() -> None:
    with (
        HECSink(use_ack=True) as receiver,
        MDRClient(
            "acked", host=receiver.url, token=receiver.token, use_ack=True, timeout=0.5
        ) as client,
    ):
        receiver.hold_acks(True)
        started = time.monotonic()
        with pytest.raises(MDRDeliveryError, match="did not acknowledge"):
            client.send({"a": 1})
        assert time.monotonic() - started < 1.2
    assert receiver.events == [{"a": 1}]


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_sink(certificate: tuple[str, str]) -> Iterator[HECSink]:
    with HECSink(tls=certificate) as receiver:
        yield receiver


def test_tls_verification_on_fails_clearly_and_fast(tls_sink: HECSink) -> None:
    host = tls_sink.url.removeprefix("https://")  # no scheme: https
    with MDRClient("tls", host=host, token=tls_sink.token, timeout=5) as client:
        started = time.monotonic()
        with pytest.raises(MDRDeliveryError) as info:
            client.send({"a": 1})
        assert time.monotonic() - started < 2.0  # not retried until the deadline
    message = str(info.value)
    assert "certificate verification failed" in message and "ssl_verify" in message
    assert isinstance(info.value.__cause__, HECTLSError)
    assert info.value.report.dropped == {"tls": 1}
    assert tls_sink.events == []


def test_an_untrusted_certificate_is_told_once(tls_sink: HECSink) -> None:
    told: list[tuple[str, HECError]] = []
    config = HECConfig(url=tls_sink.url, token=tls_sink.token, retry=FAST)
    transport = HECTransport(config, notify=lambda kind, error: told.append((kind, error)))
    with contextlib.closing(transport):
        for _ in range(2):
            assert transport.send([b'{"event":{"a":1}}']).dropped == {"tls": 1}
    assert [kind for kind, _ in told] == ["tls"]
    assert "MDR_CA_BUNDLE" in str(told[0][1])


def test_a_trickle_over_tls_is_cut_at_the_deadline(
    tls_sink: HECSink, certificate: tuple[str, str]
) -> None:
    tls_sink.trickle(0.2)
    cert, _ = certificate
    with MDRClient("tls", host=tls_sink.url, token=tls_sink.token, ssl_verify=cert, timeout=1) as c:
        started = time.monotonic()
        with pytest.raises(MDRDeliveryError, match="still answering"):
            c.send({"a": 1})
        assert time.monotonic() - started < 1.5


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_passes_without_verification(tls_sink: HECSink) -> None:
    with MDRClient("tls", host=tls_sink.url, token=tls_sink.token, ssl_verify=False) as client:
        assert client.send({"a": 1}).ok
    assert tls_sink.events == [{"a": 1}]


@pytest.mark.parametrize("how", ["ssl_verify", "ca_bundle", "env"])
def test_tls_passes_with_the_ca_bundle(
    tls_sink: HECSink, certificate: tuple[str, str], how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, _ = certificate
    host = tls_sink.url.removeprefix("https://")
    options: dict[str, object] = {}
    if how == "ssl_verify":
        options["ssl_verify"] = cert
    elif how == "ca_bundle":
        options["ca_bundle"] = cert
    else:
        monkeypatch.setenv("MDR_CA_BUNDLE", cert)
        options["ssl_verify"] = True  # as the seed example passes it
    with MDRClient("tls", host=host, token=tls_sink.token, **options) as client:  # type: ignore[arg-type]
        assert client.send({"via": how}).ok
    assert tls_sink.events == [{"via": how}]


def test_client_certificate_is_presented_without_error(
    tls_sink: HECSink, certificate: tuple[str, str]
) -> None:
    cert, key = certificate
    with MDRClient(
        "mtls", host=tls_sink.url, token=tls_sink.token, ssl_verify=cert, client_cert=(cert, key)
    ) as client:
        assert client.send({"a": 1}).ok


# ----------------------------------------------------------------------- secrets


def test_token_never_in_logs_errors_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    secret = "tok-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with HECSink(token=secret) as receiver:
        with MDRClient("secret", host=receiver.url, token=secret, retry=FAST) as client:
            texts.append(repr(client))
            receiver.fail_next(1, 500, 8)
            client.send({"a": 1})
            receiver.reject_envelope(0)
            with pytest.raises(MDRDeliveryError) as partial:
                client.send({"b": 1})
            texts += [str(partial.value), repr(partial.value), repr(client.stats())]
        with MDRClient("secret", host=receiver.url, token=secret + "0", retry=FAST) as wrong:
            with pytest.raises(MDRDeliveryError) as refused:
                wrong.send({"c": 1})
            texts += [str(refused.value), repr(refused.value.report), repr(wrong)]
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    for text in texts:
        assert secret not in text


# ------------------------------------------------------------------ the seed API


def test_seed_client_example_runs_unchanged(sink: HECSink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDR_HOST", sink.url)  # "http://127.0.0.1:PORT"
    monkeypatch.setenv("MDR_TOKEN", sink.token)

    # The published example as written; only host and token come from the environment.
    from py_mdr.client import MDRClient
    from py_mdr.ocsf_models.events.findings.detection_finding import DetectionFinding

    client = MDRClient(
        name="<PROJECT_NAME>",
        host=os.environ["MDR_HOST"],
        token=os.environ["MDR_TOKEN"],
        ssl_verify=True,
    )
    event = DetectionFinding()
    event.metadata.product.vendor_name = "<COMPANY>"
    event.status = "Testing"
    event.comment = "Sent by the published example"
    client.send(event)  # a dict is accepted too
    client.send({"class_uid": 2004, "status": "Testing"})
    MDRClient(name="<PROJECT_NAME>").send(event)  # host and token from MDR_HOST / MDR_TOKEN

    first, as_dict, from_env = sink.envelopes
    assert first["event"]["class_uid"] == 2004
    assert first["event"]["metadata"]["product"]["vendor_name"] == "<COMPANY>"
    assert first["event"]["status"] == "Testing"
    assert first["event"]["comment"] == "Sent by the published example"
    assert first["time"] == first["event"]["time"] / 1000
    assert first["sourcetype"] == "pymdr::<PROJECT_NAME>"
    assert first["source"] == "<PROJECT_NAME>"
    completed = as_dict["event"]  # completed as `py-mdr send` completes it, what was given kept
    assert {"class_uid": 2004, "status": "Testing"}.items() <= completed.items()
    assert completed["type_uid"] == 200400 and completed["metadata"]["version"] == "1.3.0"
    assert from_env["event"]["class_uid"] == 2004


def test_seed_models_serialize_through_the_client(sink: HECSink, client: MDRClient) -> None:
    from py_mdr.ocsf_models.events.findings.detection_finding import DetectionFinding

    event = DetectionFinding()
    event.metadata.product.vendor_name = "ACME"
    client.send(event)
    sent = sink.events[0]
    assert sent["class_name"] == "Detection Finding" and "time" in sent
