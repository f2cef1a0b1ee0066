"""MDRExporter against the real receiver on loopback: mapping, deadlines, shutdown, no loops."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.instrumentation.logging.handler import LoggingHandler as InstrumentationHandler
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from processes import closed_port_url

from py_mdr.config import ConfigError
from py_mdr.hec.retry import RetryPolicy
from py_mdr.sink import HECSink
from py_mdr_otel import MDRExporter

SUCCESS = LogRecordExportResult.SUCCESS
FAILURE = LogRecordExportResult.FAILURE
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05)
SECRET = "5e0c1a9d-secret-exporter-token"
ROOT = Path(__file__).resolve().parents[1]
RESOURCE = Resource.create(
    {
        "service.name": "checkout",
        "service.version": "3.1.4",
        "service.instance.id": "pod-7",
        "service.namespace": "acme.shop",
        "host.name": "web-1",
        "deployment.environment.name": "test",
    }
)
OTEL_VARIABLES = ("MDR_PRODUCT_NAME",)


@pytest.fixture(autouse=True)
def no_otel_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def make_exporter(sink: HECSink, **kwargs: Any) -> MDRExporter:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("timeout", 5.0)
    return MDRExporter(host=sink.url, token=sink.token, **kwargs)


def readable(body: Any, number: int = 0, **attributes: Any) -> ReadableLogRecord:
    """A record as the SDK hands it to an exporter."""
    now = time.time_ns()
    record = LogRecord(
        timestamp=now,
        observed_timestamp=now,
        severity_number=SeverityNumber(9),
        severity_text="INFO",
        body=body,
        attributes={"n": number, **attributes},
    )
    return ReadableLogRecord(
        log_record=record,
        resource=RESOURCE,
        instrumentation_scope=InstrumentationScope("tests.direct"),
    )


@contextmanager
def root_captured(handler: logging.Handler) -> Iterator[None]:
    """Root logger at DEBUG through ``handler``, urllib3 and py-mdr's own loggers at DEBUG too."""
    names = ("", "urllib3", "py_mdr", "py_mdr_otel")
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    loggers[0].addHandler(handler)
    try:
        yield
    finally:
        loggers[0].removeHandler(handler)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def sdk_handler(provider: LoggerProvider) -> logging.Handler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return LoggingHandler(logger_provider=provider)


def instrumentation_handler(provider: LoggerProvider) -> logging.Handler:
    return InstrumentationHandler(logger_provider=provider, log_code_attributes=True)


def app_events(sink: HECSink, scope: str) -> list[dict[str, Any]]:
    return [e for e in sink.events if e.get("log_name") == scope]


# --- the whole pipeline ---------------------------------------------------------------------


def test_batch_pipeline_delivers_events_mapped_from_resource_severity_time_and_trace(
    sink: HECSink,
) -> None:
    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    seen = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider.add_log_record_processor(SimpleLogRecordProcessor(seen))
    exporter = make_exporter(sink)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=50))
    tracer = TracerProvider().get_tracer("tests")
    logger = logging.getLogger("tests.checkout")
    try:
        with root_captured(instrumentation_handler(provider)):
            logger.debug("debug line")
            logger.info("paid %s", "order-1", extra={"order_id": 42, "tags": ["a", "b"]})
            with tracer.start_as_current_span("pay") as span:
                logger.warning("slow payment")
                context = span.get_span_context()
            logger.error("refused")
            logger.critical("down")
            assert provider.force_flush(5_000)
        assert sink.wait_for_events(5, timeout=5)
    finally:
        provider.shutdown()

    events = app_events(sink, "tests.checkout")
    assert [e["message"] for e in events] == [
        "debug line",
        "paid order-1",
        "slow payment",
        "refused",
        "down",
    ]
    assert sink.problems == []
    assert [(e["severity_id"], e["severity"], e["metadata"]["log_level"]) for e in events] == [
        (99, "Debug", "DEBUG"),
        (1, "Informational", "INFO"),
        (3, "Medium", "WARN"),
        (4, "High", "ERROR"),
        (5, "Critical", "FATAL"),
    ]
    for event in events:
        assert event["class_uid"] == 1008
        assert event["metadata"]["product"] == {
            "name": "checkout",
            "version": "3.1.4",
            "uid": "pod-7",
            "vendor_name": "acme.shop",
        }
        assert event["device"]["hostname"] == "web-1"
        assert event["unmapped"]["resource"]["deployment.environment.name"] == "test"

    records = [
        r
        for r in seen.get_finished_logs()
        if r.instrumentation_scope is not None and r.instrumentation_scope.name == "tests.checkout"
    ]
    stamps = [r.log_record.timestamp for r in records]
    assert [e["time"] for e in events] == [s // 1_000_000 for s in stamps if s is not None]
    envelopes = [v for v in sink.envelopes if v["event"].get("log_name") == "tests.checkout"]
    for envelope in envelopes:
        assert envelope["time"] == pytest.approx(envelope["event"]["time"] / 1000, abs=0.0011)
        assert (envelope["host"], envelope["source"], envelope["sourcetype"]) == (
            "web-1",
            "tests.checkout",
            "pymdr::checkout",
        )

    trace_id, span_id = f"{context.trace_id:032x}", f"{context.span_id:016x}"
    traced = events[2]
    assert traced["metadata"]["correlation_uid"] == trace_id
    assert traced["unmapped"]["trace"] == {
        "trace_id": trace_id,
        "span_id": span_id,
        "trace_flags": f"{int(context.trace_flags):02x}",
    }
    assert all("correlation_uid" not in e["metadata"] for e in events if e is not traced)
    assert events[1]["unmapped"]["extra"] == {"order_id": 42, "tags": ["a", "b"]}
    assert events[1]["enrichments"][0]["data"]["function_name"] == (
        "test_batch_pipeline_delivers_events_mapped_from_resource_severity_time_and_trace"
    )

    stats = exporter.stats()
    assert stats.sent == 5 and stats.dropped == {} and stats.failures == 0


def test_simple_processor_sends_each_record_and_skips_its_own_http_logs(sink: HECSink) -> None:
    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    exporter = make_exporter(sink)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("tests.simple")
    try:
        with root_captured(sdk_handler(provider)):
            for number in range(3):
                logger.info("line %d", number)
    finally:
        provider.shutdown()
    assert [e["message"] for e in sink.events] == ["line 0", "line 1", "line 2"]
    stats = exporter.stats()
    assert stats.sent == 3 and stats.failures == 0


# --- results, deadlines and shutdown ---------------------------------------------------------


def test_export_returns_success_after_503_recovers_and_nothing_is_lost_or_duplicated(
    sink: HECSink,
) -> None:
    exporter = make_exporter(sink)
    sink.fail_next(2, status=503)
    try:
        result = exporter.export([readable(f"event {n}", n) for n in range(20)])
    finally:
        exporter.shutdown()
    assert result is SUCCESS
    assert sorted(e["unmapped"]["extra"]["n"] for e in sink.events) == list(range(20))
    assert len({e["metadata"]["uid"] for e in sink.events}) == 20
    assert [r.status for r in sink.requests] == [503, 503, 200]
    stats = exporter.stats()
    assert (stats.exported, stats.sent, stats.dropped, stats.retried, stats.failures) == (
        20,
        20,
        {},
        2,
        0,
    )


def test_export_returns_at_once_when_the_receiver_is_down_and_the_loss_is_counted(
    capfd: pytest.CaptureFixture[str],
) -> None:
    exporter = MDRExporter(host=closed_port_url(), token="t", timeout=0.5, retry=FAST)
    started = time.monotonic()
    result = exporter.export([readable("lost", n) for n in range(4)])
    elapsed = time.monotonic() - started
    assert result is SUCCESS and elapsed < 0.1  # queued for delivery: the SDK never waits
    assert exporter.force_flush(timeout_millis=5_000)  # given up on after the send deadline
    exporter.shutdown()
    stats = exporter.stats()
    assert stats.dropped == {"deadline": 4} and stats.sent == 0 and stats.queued == 4
    err = capfd.readouterr().err
    assert "started losing records: 4 deadline" in err
    assert "at close: 4 record(s) not delivered" in err


def test_export_returns_at_once_when_the_receiver_hangs(sink: HECSink) -> None:
    exporter = make_exporter(sink, timeout=0.5)
    sink.hang(3.0)
    started = time.monotonic()
    result = exporter.export([readable("stuck")])
    assert result is SUCCESS and time.monotonic() - started < 0.1
    assert exporter.force_flush(timeout_millis=3_000)
    assert time.monotonic() - started < 1.5  # the send deadline bounds the hanging request
    exporter.shutdown()
    assert exporter.stats().dropped == {"deadline": 1}


def test_shutdown_interrupts_a_pending_backoff_within_its_timeout(sink: HECSink) -> None:
    exporter = make_exporter(sink, timeout=30.0, close_timeout=0.5)
    sink.fail_next(100, status=503, retry_after="20")
    assert exporter.export([readable("x")]) is SUCCESS
    assert sink.wait_for_requests(1, timeout=5)
    time.sleep(0.1)  # now waiting the 20 s Retry-After
    started = time.monotonic()
    exporter.shutdown()
    assert time.monotonic() - started < 1.0
    # shutting down, it tried once more at once; MDR still said "in 20 s": past the deadline
    assert len(sink.requests) == 2
    assert exporter.stats().dropped == {"deadline": 1}


def test_shutdown_is_idempotent_and_export_afterwards_fails_fast(sink: HECSink) -> None:
    exporter = make_exporter(sink)
    exporter.shutdown()
    exporter.shutdown()
    started = time.monotonic()
    assert exporter.export([readable("late"), readable("later")]) is FAILURE
    assert time.monotonic() - started < 0.1
    assert sink.requests == []
    stats = exporter.stats()
    assert stats.dropped == {"closed": 2} and stats.failures == 1
    assert exporter.force_flush() is True


def test_force_flush_waits_for_pending_acknowledgements() -> None:
    with HECSink(use_ack=True) as sink:
        exporter = make_exporter(sink, use_ack=True)
        sink.hold_acks(True)
        try:
            assert exporter.export([readable("acked")]) is SUCCESS
            assert exporter.force_flush(timeout_millis=300) is False
            sink.hold_acks(False)
            assert exporter.force_flush(timeout_millis=5_000) is True
        finally:
            exporter.shutdown()
        assert any(r.path.endswith("/ack") for r in sink.requests)


def test_a_record_that_cannot_be_encoded_is_counted_and_the_rest_delivered(
    sink: HECSink,
) -> None:
    exporter = make_exporter(sink)
    broken = cast(ReadableLogRecord, object())
    try:
        result = exporter.export([readable("good"), broken])
    finally:
        exporter.shutdown()
    assert result is FAILURE
    assert [e["message"] for e in sink.events] == ["good"]
    stats = exporter.stats()
    assert stats.sent == 1 and stats.dropped == {"unmappable": 1}


def test_marked_records_are_skipped_without_a_request(sink: HECSink) -> None:
    exporter = make_exporter(sink)
    try:
        result = exporter.export([readable("ours", py_mdr_internal=True)])
    finally:
        exporter.shutdown()
    assert result is SUCCESS
    assert sink.requests == []
    assert exporter.stats().internal == 1


def test_opentelemetry_own_records_are_counted_not_exported(sink: HECSink) -> None:
    """OpenTelemetry's own warnings (scope ``opentelemetry.*``) are not the application's."""
    exporter = make_exporter(sink)
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = instrumentation_handler(provider)
    names = ("opentelemetry.instrumentation.logging", "opentelemetry", "opentelemetry_app")
    loggers = [logging.getLogger(name) for name in names]
    try:
        for lg in loggers:
            lg.addHandler(handler)
            lg.propagate = False
            lg.warning("from %s", lg.name)
        assert exporter.force_flush(5_000)
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
            lg.propagate = True
        provider.shutdown()
    assert [e["message"] for e in sink.events] == ["from opentelemetry_app"]
    stats = exporter.stats()
    assert (stats.exported, stats.internal, stats.sent) == (3, 2, 1)


# --- no feedback loop -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_handler",
    [sdk_handler, instrumentation_handler],
    ids=["sdk-handler", "instrumentation-handler"],
)
def test_root_logger_at_debug_through_otel_keeps_the_request_count_bounded(
    sink: HECSink, make_handler: Any
) -> None:
    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    exporter = make_exporter(sink)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=20))
    sink.fail_next(1, status=503)  # a retry makes the transport log too
    try:
        with root_captured(make_handler(provider)):
            logging.getLogger("tests.loop").warning("the only line")
            assert sink.wait_for_events(1, timeout=5)
            time.sleep(0.5)  # ~25 more export rounds in which a loop would show
            settled = len(sink.requests)
            time.sleep(0.3)
            assert len(sink.requests) == settled
    finally:
        provider.shutdown()
    assert settled == 2  # the 503 and its successful retry
    assert [e["message"] for e in sink.events] == ["the only line"]
    stats = exporter.stats()
    assert stats.internal > 0  # urllib3's and py-mdr's own lines reached export and were dropped


# --- configuration --------------------------------------------------------------------------


def test_missing_host_and_token_give_one_error_naming_both_variables() -> None:
    with pytest.raises(ConfigError) as info:
        MDRExporter()
    message = str(info.value)
    assert "MDR_HOST" in message and "MDR_TOKEN" in message


def test_missing_token_alone_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDR_HOST", "hec.example.com:8088")
    with pytest.raises(ConfigError, match="MDR_TOKEN") as info:
        MDRExporter()
    assert "MDR_HOST" not in str(info.value)


def test_constructor_does_no_network_and_keeps_the_token_out_of_repr(sink: HECSink) -> None:
    exporter = MDRExporter(host=sink.url, token=SECRET)
    try:
        assert sink.requests == []
        assert SECRET not in repr(exporter) and SECRET not in repr(exporter.config)
    finally:
        exporter.shutdown()


def test_no_argument_exporter_reads_the_environment(
    sink: HECSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "MDR_HOST": sink.url,
        "MDR_TOKEN": sink.token,
        "MDR_NAME": "payments",
        "MDR_VENDOR_NAME": "acme",
        "MDR_INDEX": "main",
        "MDR_EXPORT_TIMEOUT": "2.5",
        "MDR_COMPRESSION": "none",
    }.items():
        monkeypatch.setenv(name, value)
    exporter = MDRExporter()
    plain = readable("configured")
    record = ReadableLogRecord(
        log_record=plain.log_record,
        resource=Resource.create({"service.name": "svc"}),
        instrumentation_scope=plain.instrumentation_scope,
    )
    try:
        assert exporter.timeout == 2.5
        assert exporter.export([record]) is SUCCESS
    finally:
        exporter.shutdown()
    envelope = sink.envelopes[0]
    assert (envelope["sourcetype"], envelope["index"]) == ("pymdr::payments", "main")
    assert envelope["event"]["metadata"]["product"]["vendor_name"] == "acme"
    assert sink.requests[0].gzip is False


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDR_HOST", "env.example.com")
    monkeypatch.setenv("MDR_TOKEN", "env-token")
    monkeypatch.setenv("MDR_EXPORT_TIMEOUT", "7")
    monkeypatch.setenv("MDR_TIMEOUT", "60")
    exporter = MDRExporter(host="http://arg.example.com:8088", timeout=3)
    try:
        assert exporter.config.url == "http://arg.example.com:8088"
        assert exporter.timeout == 3.0 and exporter.config.retry.deadline == 3.0
    finally:
        exporter.shutdown()
    monkeypatch.delenv("MDR_EXPORT_TIMEOUT")
    exporter = MDRExporter()
    try:
        assert exporter.timeout == 60.0  # MDR_TIMEOUT is the fallback
    finally:
        exporter.shutdown()
    with pytest.raises(ConfigError, match="timeout"):
        MDRExporter(timeout=0)


# --- processes -----------------------------------------------------------------------------


def run_python(
    code: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_import_py_mdr_does_not_import_opentelemetry() -> None:
    code = (
        "import sys; import py_mdr, py_mdr.handler, py_mdr.client; "
        "loaded = [m for m in sys.modules if m.startswith('opentelemetry')]; "
        "assert not loaded, loaded"
    )
    result = run_python(code, dict(os.environ))
    assert result.returncode == 0, result.stderr


EXIT_SCRIPT = textwrap.dedent("""
    import atexit, json, logging, time
    atexit.register(lambda: print("exited", time.monotonic(), json.dumps(dict(
        sent=exporter.stats().sent, dropped=dict(exporter.stats().dropped)))))
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from py_mdr_otel import MDRExporter
    provider = LoggerProvider()
    exporter = MDRExporter(timeout=1.0)
    provider.add_log_record_processor(BatchLogRecordProcessor(
        exporter, schedule_delay_millis=60_000, max_export_batch_size=1))
    logging.getLogger().addHandler(LoggingHandler(logger_provider=provider))
    for n in range(5):
        logging.warning("line %d", n)
    print("ending", time.monotonic(), flush=True)
""")


@pytest.mark.timeout(60)
def test_process_exit_with_the_receiver_hanging_is_bounded(sink: HECSink) -> None:
    sink.hang(20.0)
    env = {**os.environ, "MDR_HOST": sink.url, "MDR_TOKEN": sink.token}
    started = time.monotonic()
    result = run_python(EXIT_SCRIPT, env, timeout=45)
    assert result.returncode == 0, result.stderr
    marks = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    exit_seconds = float(marks["exited"].split(" ", 1)[0]) - float(marks["ending"])
    # five queued batches share one exit deadline of 1 s instead of 1 s each
    assert exit_seconds < 3.0, exit_seconds
    assert time.monotonic() - started < 30
    stats = json.loads(marks["exited"].split(" ", 1)[1])
    assert stats["sent"] == 0 and stats["dropped"] == {"deadline": 5}


def test_manual_example_runs_against_its_own_local_receiver() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MDR_HOST", "MDR_TOKEN")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "otel_manual.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exported 3, sent 3, dropped {}" in result.stdout
    assert "[Medium] payment provider is slow" in result.stdout
    assert "problem:" not in result.stdout


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str either")


class HostileBatch:
    def __len__(self) -> int:
        raise UnprintableError("no length")


def test_export_never_raises_even_for_an_error_that_cannot_print(sink: HECSink) -> None:
    exporter = make_exporter(sink)
    try:
        result = exporter.export(cast(Any, HostileBatch()))
    finally:
        exporter.shutdown()
    assert result is FAILURE
    stats = exporter.stats()
    assert stats.failures == 1 and (stats.last_error or "").startswith("UnprintableError: ")


FLUSH_THEN_EXIT = textwrap.dedent("""
    import logging, os, sys
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind
    from py_mdr_otel import MDRExporter, MDRSpanExporter
    logs, spans = LoggerProvider(), TracerProvider()
    logs.add_log_record_processor(BatchLogRecordProcessor(MDRExporter()))
    spans.add_span_processor(BatchSpanProcessor(MDRSpanExporter()))
    log = logging.getLogger("flushed")
    log.propagate = False
    log.addHandler(LoggingHandler(logger_provider=logs))
    tracer = spans.get_tracer("flushed")
    for n in range(2000):
        log.warning("line %d", n)
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as span:
            span.set_attributes({"http.request.method": "GET", "url.full": f"http://h/{n}"})
    flushed = logs.force_flush(), spans.force_flush()
    print(flushed, flush=True)
    os._exit(0)  # no exit handlers: what the flush did not deliver is lost
""")


@pytest.mark.timeout(90)
def test_the_providers_force_flush_delivers_before_an_abrupt_exit(sink: HECSink) -> None:
    env = {**os.environ, "MDR_HOST": sink.url, "MDR_TOKEN": sink.token}
    result = run_python(FLUSH_THEN_EXIT, env, timeout=80)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(True, True)"
    lines = [e for e in sink.events if e["class_uid"] == 1008]
    calls = [e for e in sink.events if e["class_uid"] == 4002]
    assert sorted(e["message"] for e in lines) == sorted(f"line {n}" for n in range(2000))
    assert len(calls) == 2000
