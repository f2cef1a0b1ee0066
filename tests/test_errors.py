"""Errors that say what to do: one root, typed errors naming the argument, hosts that do not
resolve, TLS names that do not match, models that contain themselves, absurd times."""

from __future__ import annotations

import inspect
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import py_mdr
from py_mdr.client import MDRClient
from py_mdr.errors import ConfigError, EventError, MDRError
from py_mdr.handler import MDRHandler
from py_mdr.hec.errors import HECConnectionError, HECError, HECTLSError, MDRDeliveryError
from py_mdr.hec.failures import failure_of
from py_mdr.ocsf_models.events.findings.detection_finding import DetectionFinding
from py_mdr.ocsf_models.objects.process import Process
from py_mdr.serialize import to_dict, to_json
from py_mdr.sink import HECSink

ROOT = Path(__file__).resolve().parents[1]
NOWHERE = "no-such-host.invalid"  # RFC 6761: never resolves


def resolver_says_no_such_name(host: str) -> bool:
    """Whether this machine's resolver answers that ``host`` does not exist (not: no answer)."""
    try:
        socket.getaddrinfo(host, 8088, 0, socket.SOCK_STREAM)
    except socket.gaierror as error:
        return error.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
    return False


# --------------------------------------------------------------------------- one root


def test_every_error_hangs_from_mdr_error_and_is_exported_from_py_mdr() -> None:
    assert issubclass(ConfigError, MDRError) and issubclass(ConfigError, ValueError)
    assert issubclass(EventError, MDRError) and issubclass(EventError, ValueError)
    assert issubclass(HECError, MDRError) and issubclass(MDRDeliveryError, HECError)
    assert issubclass(HECTLSError, MDRError)
    assert py_mdr.MDRError is MDRError and py_mdr.ConfigError is ConfigError
    assert py_mdr.MDRDeliveryError is MDRDeliveryError and py_mdr.HECError is HECError
    assert py_mdr.EventError is EventError
    assert {"MDRError", "ConfigError", "MDRDeliveryError"} <= set(py_mdr.__all__)


def test_the_earlier_import_paths_of_the_errors_still_work() -> None:
    from py_mdr.client import MDRDeliveryError as from_client
    from py_mdr.config import ConfigError as from_config
    from py_mdr.hec import MDRDeliveryError as from_hec

    assert from_client is from_hec is MDRDeliveryError and from_config is ConfigError


def test_a_delivery_error_survives_pickling_with_its_report(sink: HECSink) -> None:
    import pickle

    sink.token_disabled = True
    client = MDRClient("x", host=sink.url, token=sink.token, timeout=2)
    with client, pytest.raises(MDRDeliveryError) as info:
        client.send({"a": 1})
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value) and again.report.dropped == info.value.report.dropped


# --------------------------------------------------------------------------- host names


def test_the_readme_snippet_says_at_once_that_its_host_does_not_resolve() -> None:
    host = "route.to.hec.endpoint"
    answered = resolver_says_no_such_name(host)
    client = MDRClient(name="demo", host=f"{host}:8088", token="A-VALID-TOKEN", timeout=10)
    event = DetectionFinding()
    event.metadata.product.vendor_name = "Example"
    started = time.monotonic()
    with client, pytest.raises(MDRDeliveryError) as info:
        client.send(event)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert f"the host name {host}" in message and "MDR_HOST" in message
    if answered:  # the resolver's "no such name" is final: not retried until the deadline
        assert "does not resolve" in message and elapsed < 2.0
        assert info.value.report.dropped == {"unresolved": 1}
        assert len(info.value.report.undelivered) == 1  # kept: fixing the host lets it through


def test_a_lookup_that_got_no_answer_is_retried_and_says_so() -> None:
    error = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    failure = failure_of(
        error, url="https://h.example:8088", host="h.example", read_timeout=1, cut=False,
        scrub=str,
    )  # fmt: skip
    assert failure.retryable and not failure.unresolved and failure.kind == "dns"
    assert "the host name h.example could not be looked up" in str(failure.error)
    assert isinstance(failure.error, HECConnectionError)


def test_no_such_name_is_final() -> None:
    error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    failure = failure_of(
        error, url="https://h.example:8088", host="h.example", read_timeout=1, cut=False,
        scrub=str,
    )  # fmt: skip
    assert failure.unresolved and failure.kind == "dns"
    assert "the host name h.example does not resolve" in str(failure.error)


def test_the_handler_reports_an_unresolvable_host_on_stderr_and_in_its_stats(
    attach: Callable[[logging.Handler, str], logging.Logger],
    capfd: pytest.CaptureFixture[str],
) -> None:
    handler = MDRHandler(host=f"{NOWHERE}:8088", token="t", timeout=1, linger=0.01)
    logger = attach(handler, "errors.unresolvable")
    logger.warning("lost")
    handler.close()  # the send gives up at its 1 s deadline (a background door keeps trying)
    assert handler.stats.dropped == {"deadline": 1}
    err = capfd.readouterr().err
    assert f"the host name {NOWHERE}" in err
    assert f"the host name {NOWHERE}" in (handler.stats.transport.last_error or "")


def test_the_exporter_reports_an_unresolvable_host_on_stderr_and_in_its_stats(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from py_mdr_otel import MDRExporter

    exporter = MDRExporter(host=f"{NOWHERE}:8088", token="t", timeout=1)
    record = LogRecord(timestamp=time.time_ns(), severity_number=SeverityNumber(13), body="lost")
    readable = ReadableLogRecord(
        log_record=record,
        resource=Resource.create({"service.name": "errors"}),
        instrumentation_scope=InstrumentationScope("tests.errors"),
    )
    exporter.export([readable])
    exporter.force_flush(5_000)
    exporter.shutdown()
    stats = exporter.stats()
    assert stats.dropped == {"deadline": 1}
    assert f"the host name {NOWHERE}" in (stats.transport.last_error or "")
    assert f"the host name {NOWHERE}" in capfd.readouterr().err


def test_host_must_be_a_string_even_when_mdr_host_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDR_HOST", "env.example.com:8088")
    for door in (
        lambda: MDRClient("x", host=8088, token="t"),  # type: ignore[arg-type]
        lambda: MDRHandler(host=8088, token="t"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigError, match=r"^host must be a string .*got int 8088"):
            door()


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def other_names_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for hec.other.test and alt.other.test only."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl makes the test certificate"
    folder = tmp_path_factory.mktemp("other-names")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = [
        openssl, "req", "-x509", "-nodes", "-days", "2",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=hec.other.test",
        "-addext", "subjectAltName=DNS:hec.other.test,DNS:alt.other.test",
    ]  # fmt: skip
    subprocess.run(command, capture_output=True, timeout=60, check=True)
    return str(cert), str(key)


@pytest.fixture
def other_names_sink(other_names_cert: tuple[str, str]) -> Iterator[HECSink]:
    with HECSink(tls=other_names_cert) as receiver:
        yield receiver


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_a_host_name_mismatch_names_both_names(
    other_names_sink: HECSink, other_names_cert: tuple[str, str], name: str
) -> None:
    url = other_names_sink.url.replace("127.0.0.1", name)
    cert, _ = other_names_cert
    with MDRClient("tls", host=url, token=other_names_sink.token, ca_bundle=cert, timeout=5) as c:
        started = time.monotonic()
        with pytest.raises(MDRDeliveryError) as info:
            c.send({"a": 1})
        assert time.monotonic() - started < 3.0
    message = str(info.value)
    assert f"does not match the host name {name}" in message
    assert "hec.other.test, alt.other.test" in message
    assert "give the CA bundle" not in message
    assert isinstance(info.value.__cause__, HECTLSError)
    assert other_names_sink.events == []


def test_a_ca_bundle_that_does_not_vouch_for_the_server_is_named(
    other_names_sink: HECSink, tmp_path: Path
) -> None:
    from py_mdr.sink import make_self_signed_cert

    unrelated, _ = make_self_signed_cert(tmp_path)
    url = other_names_sink.url.replace("127.0.0.1", "localhost")
    client = MDRClient("tls", host=url, token=other_names_sink.token, ca_bundle=unrelated)
    with client, pytest.raises(MDRDeliveryError) as info:
        client.send({"a": 1})
    message = str(info.value)
    assert f"the CA bundle {unrelated} given does not vouch" in message
    assert "give the CA bundle (" not in message


# --------------------------------------------------------------------------- events


def test_a_model_that_contains_itself_names_the_cycle() -> None:
    process = Process(name="loop")
    process.parent_process = process
    with pytest.raises(EventError, match=r"contains itself: Process\.parent_process -> Process"):
        to_json(process)


def test_a_cycle_deep_inside_an_event_names_its_path() -> None:
    event = DetectionFinding()
    child = Process(name="child")
    child.parent_process = Process(name="parent", parent_process=child)
    event.actor.process = child
    with pytest.raises(EventError) as info:
        to_dict(event)
    assert (
        "DetectionFinding.actor.process.parent_process.parent_process -> "
        "DetectionFinding.actor.process" in str(info.value)
    )
    with MDRClient("x", host="127.0.0.1:9", token="t") as client, pytest.raises(EventError):
        client.send(event)  # refused before anything is sent


@pytest.mark.parametrize("event", [DetectionFinding(time=10**400), {"time": 10**400}])
def test_a_time_beyond_64_bits_is_a_typed_error_naming_time(event: object) -> None:
    client = MDRClient("x", host="127.0.0.1:9", token="t")
    with client, pytest.raises(EventError, match=r"^time must be a time in epoch milliseconds"):
        client.send(event)


def test_validate_still_reports_an_absurd_time_instead_of_raising() -> None:
    problems = py_mdr.validate(DetectionFinding(time=10**400))
    assert any(problem.path == "time" and problem.kind == "type" for problem in problems)


# --------------------------------------------------------------------------- docstrings


def test_public_constructors_have_their_own_docstrings() -> None:
    from py_mdr_otel import MDRExporter, MDRSpanExporter

    for cls in (MDRClient, MDRHandler, MDRExporter, MDRSpanExporter, HECSink, HECError):
        doc = inspect.getdoc(cls.__init__) or ""
        assert "Initialize self" not in doc and "Initializes the instance" not in doc, cls
        assert len(doc) > 40, cls
    assert "ConfigError" in (inspect.getdoc(MDRHandler.__init__) or "")


def test_no_docstring_points_at_files_users_do_not_have() -> None:
    for folder in ("py_mdr", "py_mdr_otel"):
        for source in (ROOT / folder).rglob("*.py"):
            text = source.read_text()
            for name in ("HEC.md", "MAPPING.md", "TRACES.md", "DESIGN.md", "STYLE.md"):
                assert name not in text, f"{source.relative_to(ROOT)} mentions {name}"


def test_validate_describes_the_problems_it_returns() -> None:
    from py_mdr.validate import validate

    doc = inspect.getdoc(validate) or ""
    for kind in ("missing", "type", "format", "enum", "constraint", "unit", "unknown", "class"):
        assert f"``{kind}``" in doc


def test_py_mdr_validate_validates_even_after_its_module_is_imported() -> None:
    import importlib

    module = importlib.import_module("py_mdr.validate")  # the import system puts it on py_mdr
    problems = py_mdr.validate({"class_uid": 2004})
    assert problems and all(isinstance(p, module.Problem) for p in problems)
