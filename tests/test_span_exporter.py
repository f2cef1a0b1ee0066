"""MDRSpanExporter against the real receiver on loopback: a served web application, the
auto-instrumented one, no feedback loop, configuration and counters."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from event_checks import assert_clean
from ocsf_third_party import third_party_errors
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler
from opentelemetry.trace import SpanKind
from processes import ROOT, closed_port_url
from wsgi_app import serve

from py_mdr.config import ConfigError
from py_mdr.hec.retry import RetryPolicy
from py_mdr.sink import HECSink
from py_mdr_otel import MDRExporter, MDRSpanExporter

pytestmark = pytest.mark.timeout(60)

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05)
RESOURCE = Resource.create(
    {"service.name": "shop", "service.namespace": "acme.web", "host.name": "web-1"}
)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
BIN = Path(sys.executable).parent
INSTRUMENT = BIN / "opentelemetry-instrument"


def make_exporter(sink: HECSink, **kwargs: Any) -> MDRSpanExporter:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("timeout", 5.0)
    return MDRSpanExporter(host=sink.url, token=sink.token, **kwargs)


@contextmanager
def traced(exporter: MDRSpanExporter, sampler: Sampler | None = None) -> Iterator[TracerProvider]:
    provider = TracerProvider(resource=RESOURCE, sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=20))
    try:
        yield provider
    finally:
        provider.shutdown()


def visit(port: int) -> tuple[int, int, list[int]]:
    """Ask the application for a user, a missing page and a failing one, all in one trace;
    returns the epoch milliseconds before and after, and the answers' status codes."""
    base = f"http://127.0.0.1:{port}"
    headers = {"User-Agent": "probe/2.1", "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    before = int(time.time() * 1000)
    codes = [
        requests.get(f"{base}{path}", headers={**headers, **extra}, timeout=5).status_code
        for path, extra in (
            ("/users/7?tab=orders", {"X-User": "alice"}),
            ("/missing", {}),
            ("/boom", {}),
        )
    ]
    return before, int(time.time() * 1000) + 1, codes


def server_events(sink: HECSink) -> dict[int, dict[str, Any]]:
    served = [e for e in sink.events if e["connection_info"]["direction"] == "Inbound"]
    return {e["http_response"]["code"]: e for e in served}


def assert_served(sink: HECSink, port: int, before: int, after: int) -> None:
    """What TRACES.md promises for the three requests of :func:`visit`."""
    assert sink.problems == []
    events = server_events(sink)
    assert sorted(events) == [200, 404, 500]
    for code, event in events.items():
        assert_clean(event)
        assert third_party_errors(event) == []
        assert (event["class_uid"], event["activity_id"], event["type_uid"]) == (4002, 3, 400203)
        assert event["http_request"]["http_method"] == "GET"
        assert event["http_request"]["user_agent"] == "probe/2.1"
        assert event["http_request"]["version"] == "1.1"
        assert event["status_code"] == str(code)
        assert event["src_endpoint"]["ip"] == "127.0.0.1"
        assert event["dst_endpoint"]["port"] == port
        assert event["metadata"]["correlation_uid"] == TRACE_ID
        assert event["unmapped"]["trace"]["parent_span_id"] == PARENT_ID
        assert before <= event["start_time"] <= event["end_time"] <= after
        assert event["time"] == event["start_time"]
        assert event["duration"] == event["end_time"] - event["start_time"]
    user = events[200]
    url = user["http_request"]["url"]
    assert (url["path"], url["query_string"]) == ("/users/7", "tab=orders")
    assert (url["scheme"], url["hostname"], url["port"]) == ("http", "127.0.0.1", port)
    assert user["actor"]["user"] == {"uid": "alice"}
    assert user["message"] == "GET /users/7 200"
    assert (user["severity_id"], user["status_id"], user["status"]) == (1, 1, "Success")
    missing = events[404]
    assert missing["http_request"]["url"]["path"] == "/missing"
    assert (missing["severity_id"], missing["status_id"], missing["status"]) == (1, 2, "Failure")
    boom = events[500]
    assert (boom["severity_id"], boom["severity"], boom["status_id"]) == (4, "High", 2)
    assert "the order service is down" in boom["status_detail"]
    assert boom["unmapped"]["exception"]["type"] == "ValueError"
    assert boom["message"] == "GET /boom 500"


# --- a real application ---------------------------------------------------------------------


def test_served_requests_reach_mdr_as_http_activity(sink: HECSink) -> None:
    exporter = make_exporter(sink)
    with traced(exporter) as provider:
        server = serve(provider)
        try:
            before, after, codes = visit(server.server_port)
        finally:
            server.shutdown()
        assert codes == [200, 404, 500]
        assert provider.force_flush(5_000)
        assert exporter.force_flush(5_000)
    assert_served(sink, server.server_port, before, after)
    product = sink.events[0]["metadata"]["product"]
    assert (product["name"], product["vendor_name"]) == ("shop", "acme.web")
    assert sink.events[0]["device"]["hostname"] == "web-1"
    assert {v["sourcetype"] for v in sink.envelopes} == {"pymdr::shop"}
    assert {v["source"] for v in sink.envelopes} == {"opentelemetry.instrumentation.wsgi"}
    stats = exporter.stats()
    assert (stats.exported, stats.sent, stats.skipped, stats.dropped) == (
        6,
        3,
        {"internal": 3},
        {},
    )


@pytest.mark.skipif(not INSTRUMENT.exists(), reason="opentelemetry-instrument is not installed")
def test_the_application_under_opentelemetry_instrument_delivers_the_same(sink: HECSink) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MDR_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        OTEL_TRACES_EXPORTER="mdr",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="shop",
        OTEL_SEMCONV_STABILITY_OPT_IN="http",  # the stable names; the test above has the old
        OTEL_BSP_SCHEDULE_DELAY="50",
        MDR_HOST=sink.url,
        MDR_TOKEN=sink.token,
    )
    child = subprocess.Popen(
        [str(INSTRUMENT), sys.executable, str(ROOT / "tests" / "wsgi_app.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline() or "0")
        assert port, child.communicate(timeout=10)[1]
        before, after, codes = visit(port)
        assert sink.wait_for_events(3, timeout=10)
        time.sleep(0.3)  # export rounds after our own send, in which its span would show
        _, err = child.communicate("", timeout=30)  # stdin closes: the service exits
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert codes == [200, 404, 500]
    # requests is instrumented in the child too, and the exporter's own requests made no span
    assert len(sink.events) == 3, [e["message"] for e in sink.events]
    assert_served(sink, port, before, after)
    assert sink.events[0]["metadata"]["product"]["name"] == "shop"


# --- sampling ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sampler", "delivered"),
    [
        (None, 0),  # the SDK's default, parentbased_always_on, follows the caller's flag
        (ALWAYS_ON, 1),
        (ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON), 1),
    ],
    ids=["default", "always_on", "parent_based_recording_remote_parents"],
)
def test_a_caller_that_asks_not_to_be_sampled_is_seen_only_when_the_sampler_says_so(
    sink: HECSink, sampler: Sampler | None, delivered: int
) -> None:
    exporter = make_exporter(sink)
    with traced(exporter, sampler) as provider:
        server = serve(provider)
        try:
            unsampled = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"}
            url = f"http://127.0.0.1:{server.server_port}/users/1"
            assert requests.get(url, headers=unsampled, timeout=5).status_code == 200
        finally:
            server.shutdown()
        assert provider.force_flush(5_000)
        assert exporter.force_flush(5_000)
    assert len(sink.events) == delivered


# --- no feedback loop -----------------------------------------------------------------------


@contextmanager
def requests_instrumented(provider: TracerProvider) -> Iterator[None]:
    instrumentor = RequestsInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield
    finally:
        instrumentor.uninstrument()


def test_with_requests_instrumented_the_exporter_sends_no_span_of_its_own(sink: HECSink) -> None:
    exporter = make_exporter(sink)
    sink.fail_next(1, status=503)  # a retry: more requests of our own that could loop
    with traced(exporter) as provider, requests_instrumented(provider):
        server = serve(provider)
        try:
            answer = requests.get(f"http://127.0.0.1:{server.server_port}/users/1", timeout=5)
            assert answer.status_code == 200
            assert sink.wait_for_events(2, timeout=5)
            time.sleep(0.5)  # ~25 more export rounds in which a loop would show
            settled = len(sink.requests)
            time.sleep(0.3)
            assert len(sink.requests) == settled
        finally:
            server.shutdown()
    assert settled == 2  # the 503 and its successful retry: nothing else, ever
    directions = sorted(e["connection_info"]["direction"] for e in sink.events)
    assert directions == ["Inbound", "Outbound"]  # the test's own request, seen from both ends
    assert all(e["dst_endpoint"].get("port") != sink.port for e in sink.events)
    assert exporter.stats().exported == 3  # two HTTP spans and the app's INTERNAL one


def test_what_the_span_exporter_logs_never_reaches_mdr(sink: HECSink) -> None:
    logs = MDRExporter(host=sink.url, token=sink.token, retry=FAST)
    log_provider = LoggerProvider(shutdown_on_exit=False)
    log_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    handler = LoggingHandler(logger_provider=log_provider)
    root = logging.getLogger()
    noisy = [logging.getLogger(name) for name in ("", "urllib3", "py_mdr", "py_mdr_otel")]
    levels = [lg.level for lg in noisy]
    for lg in noisy:
        lg.setLevel(logging.DEBUG)
    root.addHandler(handler)
    spans = make_exporter(sink)
    try:
        broken = cast(ReadableSpan, object())  # the exporter warns about it, and counts it
        assert spans.export([broken]) is SpanExportResult.FAILURE
        assert spans.force_flush(5_000)
    finally:
        root.removeHandler(handler)
        for lg, level in zip(noisy, levels, strict=True):
            lg.setLevel(level)
        spans.shutdown()
        log_provider.shutdown()
    assert sink.events == []
    assert spans.stats().dropped == {"unmappable": 1}
    assert logs.stats().internal >= 1  # the warning reached the log exporter, marked as ours


# --- processors and redaction ----------------------------------------------------------------

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV"


def request_spans(exporter: MDRSpanExporter, *paths: str) -> None:
    with traced(exporter) as provider:
        tracer = provider.get_tracer("tests.requests")
        for path in paths:
            with tracer.start_as_current_span("GET", kind=SpanKind.SERVER) as span:
                span.set_attributes(
                    {"http.request.method": "GET", "url.path": path, "url.query": f"s={JWT}"}
                )
                span.set_attribute("http.response.status_code", 200)
        assert provider.force_flush(5_000)
        assert exporter.force_flush(5_000)


def test_a_secret_in_a_request_is_redacted_by_default(sink: HECSink) -> None:
    exporter = make_exporter(sink)
    request_spans(exporter, "/login")
    [event] = sink.events
    assert event["http_request"]["url"]["query_string"] == "s=[REDACTED:jwt]"
    assert event["metadata"]["labels"] == ["redacted:jwt"]
    assert sink.problems == []
    assert exporter.stats().redacted == {"jwt": 1}


def test_processors_see_each_event_and_may_drop_it(sink: HECSink) -> None:
    def no_health_checks(event: dict[str, Any]) -> dict[str, Any] | None:
        return None if event["http_request"]["url"]["path"] == "/health" else event

    def tenant(event: dict[str, Any]) -> dict[str, Any]:
        event["unmapped"]["tenant"] = "acme"
        return event

    exporter = make_exporter(sink, processors=[no_health_checks, tenant])
    request_spans(exporter, "/login", "/health")
    [event] = sink.events
    assert (event["http_request"]["url"]["path"], event["unmapped"]["tenant"]) == ("/login", "acme")
    assert event["http_request"]["url"]["query_string"] == "s=[REDACTED:jwt]"
    assert sink.problems == []
    stats = exporter.stats()
    assert (stats.sent, stats.dropped, stats.redacted) == (1, {"processor": 1}, {"jwt": 1})


def test_redaction_can_be_turned_off(sink: HECSink) -> None:
    exporter = make_exporter(sink, redact=False)
    request_spans(exporter, "/login")
    assert sink.events[0]["http_request"]["url"]["query_string"] == f"s={JWT}"


# --- results, counters, configuration -------------------------------------------------------


def test_spans_of_other_kinds_are_counted_and_cause_no_request(sink: HECSink) -> None:
    exporter = make_exporter(sink)
    with traced(exporter) as provider:
        tracer = provider.get_tracer("tests.kinds")
        for kind in (SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.SERVER):
            with tracer.start_as_current_span(f"work {kind.name}", kind=kind):
                pass  # a SERVER span without HTTP or RPC attributes is skipped too
        assert provider.force_flush(5_000)
    assert sink.requests == []
    stats = exporter.stats()
    assert stats.skipped == {"internal": 1, "producer": 1, "consumer": 1, "server": 1}
    assert (stats.exported, stats.queued, stats.failures) == (4, 0, 0)


def test_export_returns_at_once_when_the_receiver_is_down_and_the_loss_is_counted() -> None:
    exporter = MDRSpanExporter(host=closed_port_url(), token="t", timeout=0.5, retry=FAST)
    provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
    tracer = provider.get_tracer("tests.down")
    with tracer.start_as_current_span("GET", kind=SpanKind.SERVER) as span:
        span.set_attribute("http.request.method", "GET")
    started = time.monotonic()
    result = exporter.export([cast(ReadableSpan, span)])
    assert result is SpanExportResult.SUCCESS and time.monotonic() - started < 0.1
    assert exporter.force_flush(5_000)
    exporter.shutdown()
    exporter.shutdown()  # idempotent
    stats = exporter.stats()
    assert (stats.sent, stats.dropped) == (0, {"deadline": 1})
    assert exporter.export([cast(ReadableSpan, span)]) is SpanExportResult.FAILURE


def test_no_argument_exporter_reads_the_environment(
    sink: HECSink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "MDR_HOST": sink.url,
        "MDR_TOKEN": sink.token,
        "MDR_NAME": "storefront",
        "MDR_EXPORT_TIMEOUT": "2.5",
        "MDR_SPOOL_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    exporter = MDRSpanExporter()
    assert exporter.timeout == 2.5
    with traced(exporter) as provider:
        tracer = provider.get_tracer("tests.env")
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as span:
            span.set_attribute("http.request.method", "GET")
            span.set_attribute("url.full", "https://api.example.com/v1/items?page=2")
            span.set_attribute("http.response.status_code", 200)
        assert provider.force_flush(5_000)
        assert exporter.force_flush(5_000)
    assert [v["sourcetype"] for v in sink.envelopes] == ["pymdr::storefront"]
    assert sink.events[0]["http_request"]["url"]["hostname"] == "api.example.com"
    stats = exporter.stats()
    assert (stats.spooled, stats.sent) == (1, 1)


def test_missing_configuration_names_the_span_exporter_and_both_variables() -> None:
    with pytest.raises(ConfigError) as info:
        MDRSpanExporter()
    message = str(info.value)
    assert "MDRSpanExporter" in message and "MDR_HOST" in message and "MDR_TOKEN" in message
