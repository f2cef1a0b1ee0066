"""OTel ReadableLogRecord -> OCSF Event Log Activity dict: each row of MAPPING.md's OTel table."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from event_checks import BrokenStr, assert_clean
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import (
    LoggerProvider,
    LoggingHandler,
    LogRecordLimits,
    ReadableLogRecord,
)
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from py_mdr import __version__, eventlog, internal, logmap
from py_mdr_otel.mapping import encode_record, envelope_fields, is_internal, otel_to_event

SCHEMA = Path(__file__).resolve().parents[1].parent / "shared" / "ocsf" / "ocsf-1.3.0.json"
NS = 1_000_000_000


class Pipeline:
    """A real SDK pipeline: LoggerProvider -> SimpleLogRecordProcessor -> in-memory exporter."""

    def __init__(
        self, resource: dict[str, Any] | None = None, limits: LogRecordLimits | None = None
    ) -> None:
        self.exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        self.provider = LoggerProvider(
            resource=Resource.create(resource or {}),
            shutdown_on_exit=False,
            log_record_limits=limits,
        )
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))

    def emit(
        self, scope: str = "shop.orders", version: str | None = None, **fields: Any
    ) -> ReadableLogRecord:
        self.provider.get_logger(scope, version).emit(**fields)
        return self.exporter.get_finished_logs()[-1]

    def event(self, **fields: Any) -> dict[str, Any]:
        return otel_to_event(self.emit(**fields), log_version="9.9.9")


@pytest.fixture
def pipe() -> Iterator[Pipeline]:
    pipeline = Pipeline(
        {
            "service.name": "shop",
            "service.version": "1.2.3",
            "service.namespace": "acme",
            "service.instance.id": "inst-1",
            "host.name": "web-1",
            "host.id": "h-77",
            "os.type": "linux",
            "os.version": "6.1.0",
            "process.pid": 4242,
            "process.executable.name": "python3",
            "process.command_line": "python3 app.py",
            "process.owner": "svc-shop",
            "cloud.provider": "aws",
            "cloud.region": "eu-west-1",
            "cloud.account.id": "123456789012",
            "deployment.environment.name": "prod",
            "k8s.pod.name": "shop-7d9",
        }
    )
    yield pipeline
    pipeline.provider.shutdown()


def test_fixed_part_matches_the_stdlib_door(pipe: Pipeline) -> None:
    event = pipe.event(body="hi")
    stdlib = logmap.record_to_event(logging.makeLogRecord({"msg": "hi"}), {"name": "x"})
    for key in eventlog.FIXED_PART:
        assert event[key] == stdlib[key]
    assert event["metadata"]["version"] == "1.3.0"
    assert event["metadata"]["log_version"] == "9.9.9"
    assert otel_to_event(pipe.emit(body="x"))["metadata"]["log_version"] == __version__
    assert_clean(event)


def test_time_from_timestamp_else_observed(pipe: Pipeline) -> None:
    both = pipe.event(
        body="a", timestamp=1_700_000_000_123_456_789, observed_timestamp=1_700_000_005 * NS
    )
    assert both["time"] == 1_700_000_000_123
    assert both["metadata"]["logged_time"] == 1_700_000_005_000
    observed_only = pipe.event(body="b", observed_timestamp=1_700_000_009 * NS)
    assert observed_only["time"] == 1_700_000_009_000


def test_string_body_is_the_message(pipe: Pipeline) -> None:
    event = pipe.event(body="order A1 shipped")
    assert event["message"] == "order A1 shipped"
    assert "body" not in event.get("unmapped", {})


def test_structured_body_is_compact_json_and_kept(pipe: Pipeline) -> None:
    event = pipe.event(body={"order": "A1", "items": [1, 2], "note": None})
    assert json.loads(event["message"]) == {"order": "A1", "items": [1, 2], "note": None}
    assert " " not in event["message"]
    assert event["unmapped"]["body"] == {"order": "A1", "items": [1, 2]}
    assert pipe.event(body=b"raw\xff")["message"] == "raw\\xff"
    number = pipe.event(body=42)
    assert (number["message"], number["unmapped"]["body"]) == ("42", 42)


def test_scope_is_log_name_and_provider_is_py_mdr(pipe: Pipeline) -> None:
    event = pipe.event(scope="billing.invoices", version="0.4", body="x")
    assert event["log_name"] == "billing.invoices"
    assert event["log_provider"] == event["metadata"]["log_provider"] == "py-mdr"
    assert event["unmapped"]["scope"] == {"version": "0.4"}


@pytest.mark.parametrize(
    ("number", "text", "expected"),
    [
        (SeverityNumber.TRACE2, "TRACE", (99, "Trace")),
        (SeverityNumber.DEBUG, "DEBUG", (99, "Debug")),
        (SeverityNumber.INFO, "INFO", (1, "Informational")),
        (SeverityNumber.WARN, "WARN", (3, "Medium")),
        (SeverityNumber.ERROR3, "ERROR", (4, "High")),
        (SeverityNumber.FATAL, "FATAL", (5, "Critical")),
        (None, "error", (4, "High")),
        (None, None, (0, "Unknown")),
    ],
)
def test_severity_and_log_level(
    pipe: Pipeline, number: SeverityNumber | None, text: str | None, expected: tuple[int, str]
) -> None:
    event = pipe.event(body="x", severity_number=number, severity_text=text)
    assert (event["severity_id"], event["severity"]) == expected
    if text:
        assert event["metadata"]["log_level"] == text
    else:
        assert "log_level" not in event["metadata"]


def test_trace_context(pipe: Pipeline) -> None:
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("work") as span:
        event = pipe.event(body="inside")
        context = span.get_span_context()
    assert event["metadata"]["correlation_uid"] == f"{context.trace_id:032x}"
    assert event["unmapped"]["trace"] == {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "trace_flags": f"{int(context.trace_flags):02x}",
    }
    outside = pipe.event(body="outside")
    assert "correlation_uid" not in outside["metadata"]
    assert "trace" not in outside.get("unmapped", {})


def test_product_from_service_attributes(pipe: Pipeline) -> None:
    assert pipe.event(body="x")["metadata"]["product"] == {
        "name": "shop",
        "version": "1.2.3",
        "uid": "inst-1",
        "vendor_name": "acme",
    }


def test_vendor_name_falls_back_to_configured_then_env_then_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bare = Pipeline({"service.name": "svc"})
    record = bare.emit(body="x")
    assert (
        otel_to_event(record, vendor_name="acme.team")["metadata"]["product"]["vendor_name"]
        == "acme.team"
    )
    monkeypatch.setenv("MDR_VENDOR_NAME", "from-env")
    env = Pipeline({"service.name": "svc"}).emit(body="x")
    assert otel_to_event(env)["metadata"]["product"]["vendor_name"] == "from-env"
    monkeypatch.delenv("MDR_VENDOR_NAME")
    plain = Pipeline({"service.name": "svc"}).emit(body="x")
    assert otel_to_event(plain)["metadata"]["product"]["vendor_name"] == "unknown"


def test_device_from_host_and_os_attributes(pipe: Pipeline) -> None:
    event = pipe.event(body="x")
    assert event["device"] == {
        "hostname": "web-1",
        "uid": "h-77",
        "type_id": 0,
        "type": "Unknown",
        "os": {"name": "linux", "version": "6.1.0", "type_id": 200, "type": "Linux"},
    }
    assert event["src_endpoint"] == {"hostname": "web-1"}


def test_without_host_name_the_local_host_is_used() -> None:
    event = otel_to_event(Pipeline({"service.name": "svc"}).emit(body="x"))
    host = socket.gethostname()
    assert host in event["device"].values()


@pytest.mark.parametrize(
    ("os_type", "type_id", "caption"),
    [
        ("windows", 100, "Windows"),
        ("linux", 200, "Linux"),
        ("darwin", 300, "macOS"),
        ("solaris", 400, "Solaris"),
        ("aix", 401, "AIX"),
        ("hpux", 402, "HP-UX"),
        ("freebsd", 99, "freebsd"),
        ("z_os", 99, "z_os"),
    ],
)
def test_os_type_ids_follow_the_ocsf_enum(os_type: str, type_id: int, caption: str) -> None:
    event = otel_to_event(Pipeline({"os.type": os_type}).emit(body="x"))
    assert event["device"]["os"] == {"name": os_type, "type_id": type_id, "type": caption}
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    enum = schema["objects"]["os"]["attributes"]["type_id"]["enum"]
    if type_id != 99:  # 99 (Other) carries the source's own word
        assert enum[str(type_id)]["caption"] == caption
    assert_clean(event)


def test_actor_process_and_user(pipe: Pipeline) -> None:
    event = pipe.event(body="x", attributes={"thread.id": 31337})
    assert event["actor"] == {
        "process": {"pid": 4242, "name": "python3", "cmd_line": "python3 app.py", "tid": 31337},
        "user": {"name": "svc-shop"},
    }


def test_process_defaults_to_this_process() -> None:
    event = otel_to_event(Pipeline({"service.name": "svc"}).emit(body="x"))
    assert event["actor"]["process"]["pid"] == os.getpid()
    assert event["actor"]["user"] == eventlog.os_user()


def test_forked_child_reports_its_own_pid() -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    record = Pipeline({"service.name": "svc"}).emit(body="x")
    assert otel_to_event(record)["actor"]["process"]["pid"] == os.getpid()  # fills the cache
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the mapped pid and leave at once
        try:
            os.write(write, str(otel_to_event(record)["actor"]["process"]["pid"]).encode())
        finally:
            os._exit(0)
    os.close(write)
    reported = os.read(read, 32).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert reported == str(pid)


def test_thread_id_outside_integer_range_stays_an_attribute(pipe: Pipeline) -> None:
    event = pipe.event(body="x", attributes={"thread.id": 2**40})
    assert "tid" not in event["actor"]["process"]
    assert event["unmapped"]["extra"]["thread.id"] == 2**40


def test_cloud_adds_the_profile(pipe: Pipeline) -> None:
    event = pipe.event(body="x")
    assert event["cloud"] == {
        "provider": "aws",
        "region": "eu-west-1",
        "account": {"uid": "123456789012"},
    }
    assert event["metadata"]["profiles"] == ["cloud"]
    assert_clean(event)


def test_cloud_without_provider_stays_in_unmapped_resource() -> None:
    event = otel_to_event(Pipeline({"cloud.region": "us-east-1"}).emit(body="x"))
    assert "cloud" not in event
    assert "profiles" not in event["metadata"]
    assert event["unmapped"]["resource"]["cloud.region"] == "us-east-1"
    assert_clean(event)


def test_code_attributes_fill_file_information(pipe: Pipeline) -> None:
    new = pipe.event(
        body="x",
        attributes={
            "code.file.path": "/srv/app/orders.py",
            "code.function.name": "ship",
            "code.line.number": 88,
        },
    )
    old = pipe.event(
        body="x",
        attributes={
            "code.filepath": "/srv/app/orders.py",
            "code.function": "ship",
            "code.lineno": 88,
        },
    )
    expected = [
        {
            "name": "file_information",
            "value": "/srv/app/orders.py:88",
            "data": {
                "module": "orders",
                "function_name": "ship",
                "line_number": 88,
                "path": "/srv/app/orders.py",
            },
        }
    ]
    assert new["enrichments"] == old["enrichments"] == expected
    assert "extra" not in new.get("unmapped", {})
    both = pipe.event(
        body="x", attributes={"code.lineno": 1, "code.line.number": 2, "code.filepath": "/a.py"}
    )
    assert both["enrichments"][0]["data"]["line_number"] == 2  # the current name wins


def test_exception_attributes(pipe: Pipeline) -> None:
    event = pipe.event(
        body="x",
        attributes={
            "exception.type": "ValueError",
            "exception.message": "bad",
            "exception.stacktrace": "Traceback...\nValueError: bad\n",
        },
    )
    assert event["unmapped"]["exception"] == {
        "type": "ValueError",
        "message": "bad",
        "stacktrace": "Traceback...\nValueError: bad",
    }
    try:
        raise KeyError("k")
    except KeyError as error:
        emitted = pipe.event(body="y", exception=error)
    assert emitted["unmapped"]["exception"]["type"] == "KeyError"


def test_other_attributes_and_resource_go_to_unmapped(pipe: Pipeline) -> None:
    event = pipe.event(
        body="x",
        attributes={
            "order.id": "A1",
            "retry": 2,
            "tags": ["a", "b"],
            "blob": b"\xfe",
            "nan": math.nan,
        },
    )
    assert event["unmapped"]["extra"] == {
        "order.id": "A1",
        "retry": 2,
        "tags": ["a", "b"],
        "blob": "\\xfe",
        "nan": "nan",
    }
    resource = event["unmapped"]["resource"]
    assert resource["deployment.environment.name"] == "prod"
    assert resource["k8s.pod.name"] == "shop-7d9"
    assert resource["telemetry.sdk.language"] == "python"
    used = {
        "service.name",
        "service.version",
        "service.namespace",
        "service.instance.id",
        "host.name",
        "host.id",
        "os.type",
        "os.version",
        "process.pid",
        "process.executable.name",
        "process.command_line",
        "process.owner",
        "cloud.provider",
        "cloud.region",
        "cloud.account.id",
    }
    assert not used & set(resource)
    assert_clean(event)


def test_dropped_attribute_count() -> None:
    limited = Pipeline({"service.name": "svc"}, LogRecordLimits(max_attributes=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        event = otel_to_event(limited.emit(body="x", attributes={"a": 1, "b": 2, "c": 3}))
    assert event["unmapped"]["dropped_attributes"] == 2
    full = otel_to_event(limited.emit(body="x"))
    assert "dropped_attributes" not in full.get("unmapped", {})


def _bridge(pipe: Pipeline) -> logging.Handler:
    """The SDK's stdlib bridge (deprecated in favour of opentelemetry-instrumentation-logging)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return LoggingHandler(logger_provider=pipe.provider)


@contextlib.contextmanager
def _bridged(pipe: Pipeline, name: str) -> Iterator[logging.Logger]:
    """A logger whose records go only through the bridge, detached afterwards."""
    bridge = _bridge(pipe)
    logger = logging.getLogger(name)
    logger.addHandler(bridge)
    logger.propagate = False
    try:
        yield logger
    finally:
        logger.removeHandler(bridge)


def test_records_from_the_stdlib_bridge(pipe: Pipeline) -> None:
    with _bridged(pipe, "test_otel_mapping.bridge") as logger:
        logger.warning("user %s locked", "bob", extra={"attempts": 5})
    event = otel_to_event(pipe.exporter.get_finished_logs()[-1])
    assert event["message"] == "user bob locked"
    assert event["log_name"] == "test_otel_mapping.bridge"
    assert (event["severity_id"], event["metadata"]["log_level"]) == (3, "WARN")
    assert event["unmapped"]["extra"] == {"attempts": 5}
    assert event["enrichments"][0]["data"]["function_name"] == "test_records_from_the_stdlib_bridge"
    assert_clean(event)


def test_internal_records_are_recognised(pipe: Pipeline) -> None:
    internal.install_record_marker()
    with _bridged(pipe, "test_otel_mapping.internal") as logger:
        with internal.sending():
            logger.warning("connection reset")  # what the HTTP stack logs while sending
        logger.warning("ordinary")
    marked, ordinary = pipe.exporter.get_finished_logs()[-2:]
    assert is_internal(marked)
    assert not is_internal(ordinary)
    assert not is_internal(object())


def test_mdr_handler_capture_state_is_not_an_attribute(pipe: Pipeline) -> None:
    bridge = _bridge(pipe)

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logmap.capture(record)

    logger = logging.getLogger("test_otel_mapping.both")
    logger.handlers = [Capture(), bridge]
    logger.propagate = False
    try:
        logger.warning("seen by both")
    finally:
        logger.handlers = []
    event = otel_to_event(pipe.exporter.get_finished_logs()[-1])
    assert logmap.CAPTURED not in event.get("unmapped", {}).get("extra", {})


def test_envelope_fields(pipe: Pipeline) -> None:
    record = pipe.emit(scope="shop.api", body="x", timestamp=1_700_000_000_123_456_789)
    assert envelope_fields(record) == (1_700_000_000.123, "web-1", "shop.api")
    bare = Pipeline().emit(scope="", body="x")
    _, host, source = envelope_fields(bare)
    assert host == socket.gethostname()
    assert source == bare.resource.attributes["service.name"]  # no scope name: the service


class RawResource:
    """A resource whose attributes skipped the SDK's cleaning (the SDK refuses hostile values)."""

    def __init__(self, attributes: dict[str, Any]) -> None:
        self.attributes = attributes


def test_hostile_record_never_raises() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

        __str__ = __repr__

    fields: dict[str, Any] = {
        "timestamp": -5,
        "observed_timestamp": math.nan,
        "body": Broken(),
        "severity_number": Broken(),
        "severity_text": Broken(),
        "attributes": {
            "x": Broken(),
            "code.line.number": Broken(),
            "thread.id": Broken(),
            "exception.type": Broken(),
        },
    }
    record = LogRecord(**fields)
    readable = ReadableLogRecord(
        log_record=record,
        resource=RawResource({"host.name": Broken(), "os.type": 7}),  # type: ignore[arg-type]
        instrumentation_scope=InstrumentationScope("s"),
    )
    event = otel_to_event(readable)
    assert_clean(event)
    assert "Broken" in event["message"]
    assert otel_to_event(object())["class_uid"] == 1008
    assert_clean(otel_to_event(object()))


# Properties -----------------------------------------------------------------------------------


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.binary(),
    st.builds(BrokenStr),
    st.builds(ValueError, st.text()),
    st.frozensets(st.integers()),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(), inner, max_size=3)
    ),
    max_leaves=10,
)
_keys = st.one_of(
    st.text(min_size=1),
    st.sampled_from(
        [
            "code.file.path",
            "code.lineno",
            "code.function",
            "exception.type",
            "exception.message",
            "exception.stacktrace",
            "thread.id",
            "py_mdr_internal",
        ]
    ),
)
_resource_keys = st.one_of(
    st.text(min_size=1),
    st.sampled_from(
        [
            "service.name",
            "service.namespace",
            "host.name",
            "host.id",
            "os.type",
            "os.version",
            "process.pid",
            "process.owner",
            "cloud.provider",
            "cloud.region",
            "cloud.account.id",
        ]
    ),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=_values,
    attributes=st.dictionaries(_keys, _values, max_size=5),
    resource=st.dictionaries(_resource_keys, _scalars, max_size=5),
    number=st.one_of(st.none(), st.integers(min_value=-3, max_value=30)),
    text=st.one_of(st.none(), st.text()),
    timestamp=st.one_of(st.none(), st.integers(min_value=-10, max_value=2**63)),
)
def test_any_record_maps_to_a_clean_valid_event(
    body: Any,
    attributes: dict[str, Any],
    resource: dict[str, Any],
    number: int | None,
    text: str | None,
    timestamp: int | None,
) -> None:
    record = LogRecord(
        timestamp=timestamp,
        body=body,
        severity_text=text,
        severity_number=number,  # type: ignore[arg-type]
        attributes=attributes,
    )
    readable = ReadableLogRecord(
        log_record=record,
        resource=RawResource(resource),  # type: ignore[arg-type]
        instrumentation_scope=InstrumentationScope("prop"),
    )
    event = otel_to_event(readable, vendor_name="acme")
    assert_clean(event)
    assert "mapping_error" not in event.get("unmapped", {})
    seconds, host, source = envelope_fields(readable)
    assert isinstance(seconds, float) and host and source
    if attributes.get("py_mdr_internal"):
        assert encode_record(readable, "acme") is None
    else:
        _assert_encoded_like_mapped(readable, "acme")


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str either")


class RaisesUnprintable:
    @property
    def log_record(self) -> Any:
        raise UnprintableError("hostile")


def test_an_error_that_cannot_print_still_gives_a_valid_event() -> None:
    event = otel_to_event(RaisesUnprintable())
    assert_clean(event)
    assert event["unmapped"]["mapping_error"].startswith("UnprintableError: ")


# The exporter's one-pass encoding -------------------------------------------------------------


def _without_identity(event: dict[str, Any]) -> dict[str, Any]:
    """The event minus what is new on every mapping (``uid``, ``sequence``)."""
    metadata = dict(event["metadata"])
    assert metadata.pop("uid") and metadata.pop("sequence")
    return {**event, "metadata": metadata}


def _assert_encoded_like_mapped(readable: Any, vendor_name: str | None = None) -> dict[str, Any]:
    encoded = encode_record(readable, vendor_name)
    assert encoded is not None
    text, seconds, host, source = encoded
    decoded: dict[str, Any] = json.loads(text)  # valid JSON, and no member written twice:
    assert json.loads(text, object_pairs_hook=_unique_pairs) == decoded
    mapped = otel_to_event(readable, vendor_name=vendor_name)
    assert _without_identity(decoded) == _without_identity(mapped)
    assert (seconds, host, source) == envelope_fields(readable, vendor_name)
    assert seconds == mapped["time"] / 1000
    return decoded


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), keys
    return dict(pairs)


def _bridge_records(pipe: Pipeline, scope: str) -> list[ReadableLogRecord]:
    """Records from the stdlib bridge: plain lines, extras, exceptions, inside a span."""
    tracer = TracerProvider().get_tracer("t")
    with _bridged(pipe, scope) as logger:
        logger.setLevel(logging.DEBUG)
        for number in range(40):
            logger.info("order %s shipped", number, extra={"order": number, "tags": ["a"]})
            logger.debug("plain")
            try:
                raise ValueError(f"bad {number}")
            except ValueError:
                logger.exception("failed")
            with tracer.start_as_current_span("work"):
                logger.warning("in a span", extra={"blob": b"\xfe", "nan": math.nan})
    return list(pipe.exporter.get_finished_logs()[-160:])


def test_encoded_record_has_the_content_of_the_mapped_event(pipe: Pipeline) -> None:
    records = _bridge_records(pipe, "test_otel_mapping.encode")
    assert len(records) == 160
    decoded = [_assert_encoded_like_mapped(record) for record in records]
    assert decoded[0]["unmapped"]["extra"] == {"order": 0, "tags": ["a"]}
    assert {"exception", "resource"} <= set(decoded[2]["unmapped"])
    assert decoded[3]["metadata"]["correlation_uid"] and decoded[3]["cloud"]["provider"] == "aws"
    assert decoded[0]["metadata"]["profiles"] == ["cloud"]
    assert decoded[0]["enrichments"][0]["data"]["function_name"] == "_bridge_records"
    for event in decoded[:8]:
        assert_clean(event)


@pytest.mark.parametrize(
    "fields",
    [
        {"body": "plain"},
        {"body": ""},
        {"body": None},
        {"body": {"order": "A1", "items": [1, 2], "empty": {}}},
        {"body": b"\xfe\x00"},
        {"body": [1, "two", None]},
        {"body": BrokenStr()},
        {"body": "x" * 70_000},  # longer than string_t: cut, and kept whole in unmapped
        {"body": "bad \udcff surrogate"},  # not UTF-8 encodable: the stdlib fallback encoder
        {"body": "t", "attributes": {"thread.id": 77, "k": "v"}},
        {"body": "t", "attributes": {"thread.id": 2**40}},
        {"body": "c", "attributes": {"code.filepath": "/a.py", "code.lineno": "7"}},
        {"body": "c", "attributes": {"code.function.name": "f"}},
        {"body": "e", "attributes": {"exception.type": "E", "exception.stacktrace": "tb\n"}},
        {"body": "s", "severity_number": SeverityNumber.ERROR, "severity_text": "oops"},
        {"body": "n", "event_name": "order.shipped", "timestamp": 1_700_000_000_123_456_789},
    ],
)
def test_encoded_odd_records_have_the_content_of_the_mapped_event(
    pipe: Pipeline, fields: dict[str, Any]
) -> None:
    _assert_encoded_like_mapped(pipe.emit(scope="odd", version="2.0", **fields))
    bare = Pipeline()  # no cloud, no scope version
    _assert_encoded_like_mapped(bare.emit(scope="", **fields), vendor_name="acme")


def test_encoded_record_without_constant_unmapped_entries() -> None:
    """A resource with nothing left over and a plain scope: no shared ``unmapped`` to splice."""
    for attributes in ({}, {"k": "v"}):
        record = LogRecord(timestamp=1_700_000_000 * NS, body="x", attributes=attributes)
        readable = ReadableLogRecord(
            log_record=record,
            resource=RawResource({"service.name": "s"}),  # type: ignore[arg-type]
            instrumentation_scope=InstrumentationScope("plain"),
        )
        decoded = _assert_encoded_like_mapped(readable)
        assert decoded.get("unmapped") == ({"extra": attributes} if attributes else None)


def test_encoded_scope_details_and_dropped_count() -> None:
    limited = Pipeline({"service.name": "svc"}, LogRecordLimits(max_attributes=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        limited.provider.get_logger("lib", "1.0", "https://schema", {"team": "a"}).emit(
            body="x", attributes={"a": 1, "b": 2}
        )
    record = limited.exporter.get_finished_logs()[-1]
    decoded = _assert_encoded_like_mapped(record)
    assert decoded["unmapped"]["dropped_attributes"] == 1
    assert decoded["unmapped"]["scope"]["version"] == "1.0"


def test_encode_record_skips_internal_records_and_never_raises(pipe: Pipeline) -> None:
    assert encode_record(pipe.emit(body="ours", attributes={"py_mdr_internal": True})) is None
    for hostile in (object(), RaisesUnprintable()):
        encoded = encode_record(hostile)
        assert encoded is not None
        event = json.loads(encoded[0])
        assert event["class_uid"] == 1008 and "mapping_error" in event["unmapped"]


def test_mapped_events_share_nothing_with_each_other(pipe: Pipeline) -> None:
    """The shape's templates are reused per record: what a caller changes stays in its event."""
    fields = {
        "body": "x",
        "timestamp": 1_700_000_000 * NS,
        "observed_timestamp": 1_700_000_001 * NS,
        "attributes": {"code.file.path": "/a.py", "code.line.number": 1, "k": "v"},
    }
    first = otel_to_event(pipe.emit(scope="shared", version="1", **fields))
    untouched = json.dumps(_without_identity(first), sort_keys=True)

    def scribble(value: Any) -> None:
        if isinstance(value, dict):
            for item in list(value.values()):
                scribble(item)
            value["scribbled"] = True
        elif isinstance(value, list):
            for item in value:
                scribble(item)
            value.append("scribbled")

    scribble(first)
    second = otel_to_event(pipe.emit(scope="shared", version="1", **fields))
    assert json.dumps(_without_identity(second), sort_keys=True) == untouched


# --- gaps found by breaking the code (issue 10) ------------------------------------------------


@pytest.mark.parametrize(
    ("number", "text", "expected"),
    [
        (SeverityNumber.ERROR, "debug", (4, "High")),
        (SeverityNumber.INFO, "CRITICAL", (1, "Informational")),
        (SeverityNumber.FATAL, "info", (5, "Critical")),
    ],
)
def test_the_severity_number_wins_over_a_disagreeing_text(
    pipe: Pipeline, number: SeverityNumber, text: str, expected: tuple[int, str]
) -> None:
    event = pipe.event(body="x", severity_number=number, severity_text=text)
    assert (event["severity_id"], event["severity"]) == expected
    assert event["metadata"]["log_level"] == text  # the text is kept, where MAPPING.md puts it


def test_service_namespace_wins_over_the_configured_vendor(pipe: Pipeline) -> None:
    # MAPPING.md: vendor_name = service.namespace, else the configured vendor name
    record = pipe.emit(body="x")
    event = otel_to_event(record, vendor_name="configured.vendor")
    assert event["metadata"]["product"]["vendor_name"] == "acme"
    encoded = encode_record(record, "configured.vendor")
    assert encoded is not None
    assert json.loads(encoded[0])["metadata"]["product"]["vendor_name"] == "acme"


def test_trace_and_span_ids_keep_their_leading_zeros() -> None:
    from opentelemetry.trace import TraceFlags

    record = ReadableLogRecord(
        log_record=LogRecord(
            timestamp=1_700_000_000 * NS,
            body="x",
            trace_id=0xABC,
            span_id=0x1F,
            trace_flags=TraceFlags(1),
        ),
        resource=Resource.create({"service.name": "svc"}),
        instrumentation_scope=InstrumentationScope("zeros"),
    )
    trace = {"trace_id": "0" * 29 + "abc", "span_id": "0" * 14 + "1f", "trace_flags": "01"}
    mapped = otel_to_event(record)
    encoded = encode_record(record)
    assert encoded is not None
    for event in (mapped, json.loads(encoded[0])):
        assert event["metadata"]["correlation_uid"] == trace["trace_id"]
        assert event["unmapped"]["trace"] == trace


def test_a_time_on_a_whole_millisecond_reads_the_same_as_through_mdr_handler(
    pipe: Pipeline,
) -> None:
    created = 1_700_000_000.123  # OpenTelemetry's handler keeps int(created * 1e9): ...122999808
    event = pipe.event(body="a", timestamp=int(created * 1e9))
    assert event["time"] == int(created * 1000) == 1_700_000_000_123


def test_a_timestamp_in_the_year_10000_is_taken_for_missing(pipe: Pipeline) -> None:
    observed = 1_700_000_009 * NS
    event = pipe.event(body="far", timestamp=253_402_300_800 * NS, observed_timestamp=observed)
    assert event["time"] == 1_700_000_009_000  # the observed time, so the event stays valid
