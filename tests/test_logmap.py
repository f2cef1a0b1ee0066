"""stdlib LogRecord -> OCSF Event Log Activity dict: each row of MAPPING.md's stdlib table."""

from __future__ import annotations

import getpass
import gzip
import io
import json
import logging
import math
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from event_checks import BrokenEverything, BrokenStr, assert_clean
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from py_mdr import __version__, eventlog, internal, logmap
from py_mdr.ocsf_models import Product

SCHEMA = Path(__file__).resolve().parents[1].parent / "shared" / "ocsf" / "ocsf-1.3.0.json"
PRODUCT = {"name": "shop", "vendor_name": "acme.team"}


class Capturing(logging.Handler):
    """Does what MDRHandler.emit does on the caller's thread: capture, then keep the record."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        logmap.capture(record)
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, Capturing]]:
    logger = logging.getLogger(f"test_logmap.{uuid.uuid4().hex[:8]}")
    handler = Capturing()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def _record(logger: logging.Logger, msg: Any, *args: Any) -> logging.LogRecord:
    return logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, args, None)


def _event(handler: Capturing, index: int = -1, product: Any = PRODUCT) -> dict[str, Any]:
    return logmap.record_to_event(handler.records[index], product)


# Fixed part -----------------------------------------------------------------------------------


def test_fixed_part_and_captions(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    logger.info("hello")
    event = _event(handler)
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))["classes"]["event_log"]
    assert (event["class_uid"], event["class_name"]) == (1008, schema["caption"])
    assert (event["category_uid"], event["category_name"]) == (1, "System Activity")
    assert (event["activity_id"], event["activity_name"]) == (99, "Log")
    assert event["type_uid"] == 100899
    assert event["type_name"] == schema["attributes"]["type_uid"]["enum"]["100899"]["caption"]
    assert (event["log_type_id"], event["log_type"]) == (2, "Application")
    assert event["metadata"]["version"] == "1.3.0"
    assert event["metadata"]["log_version"] == __version__
    assert_clean(event)


# Rows of the stdlib table ---------------------------------------------------------------------


def test_time_is_record_created_and_logged_time_is_intake(
    logged: tuple[logging.Logger, Capturing],
) -> None:
    logger, handler = logged
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "old", (), None)
    record.created = 1_700_000_000.1234
    handler.handle(record)
    event = _event(handler)
    assert event["time"] == 1_700_000_000_123
    assert isinstance(event["metadata"]["logged_time"], int)
    assert event["metadata"]["logged_time"] > event["time"]  # taken in now, not at creation
    assert logmap.envelope_time(event) == 1_700_000_000.123


def test_message_is_the_percent_formatted_text(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    logger.info("user %s bought %d items", "bob", 3)
    assert _event(handler)["message"] == "user bob bought 3 items"


def test_a_failing_format_keeps_raw_message_and_argument_reprs(
    logged: tuple[logging.Logger, Capturing],
) -> None:
    logger, handler = logged
    # handed to our handler alone: other handlers (pytest's) would fail on this format
    handler.handle(_record(logger, "needs a number: %d", "not-a-number"))
    event = _event(handler)
    assert event["message"].startswith("needs a number: %d")
    assert "'not-a-number'" in event["message"]
    assert_clean(event)


def test_a_message_object_with_broken_str_does_not_raise(
    logged: tuple[logging.Logger, Capturing],
) -> None:
    logger, handler = logged
    handler.handle(_record(logger, BrokenStr()))
    handler.handle(_record(logger, "value %s", BrokenStr()))
    for record in handler.records:
        event = logmap.record_to_event(record, PRODUCT)
        assert "BrokenStr" in event["message"]
        assert_clean(event)


def test_log_name_and_provider(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    logger.warning("x")
    event = _event(handler)
    assert event["log_name"] == logger.name
    assert event["log_provider"] == "py-mdr"
    assert event["metadata"]["log_provider"] == "py-mdr"


def test_severity_and_log_level(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    logging.addLevelName(35, "NOTICEABLE")
    logger.log(35, "custom level")
    logger.critical("down")
    custom, critical = (logmap.record_to_event(r, PRODUCT) for r in handler.records)
    assert (custom["severity_id"], custom["severity"]) == (3, "Medium")
    assert custom["metadata"]["log_level"] == "NOTICEABLE"
    assert (critical["severity_id"], critical["severity"]) == (5, "Critical")
    assert critical["metadata"]["log_level"] == "CRITICAL"


def test_given_product_is_used(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    logger.info("x")
    assert _event(handler)["metadata"]["product"] == PRODUCT


def test_product_model_without_vendor_gets_the_fallback(
    logged: tuple[logging.Logger, Capturing],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MDR_VENDOR_NAME", raising=False)
    logger, handler = logged
    logger.info("x")
    product = _event(handler, product=Product(name="svc", version="1.0"))["metadata"]["product"]
    assert product == {"name": "svc", "version": "1.0", "vendor_name": "unknown"}


def test_default_product_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDR_PRODUCT_NAME", "billing")
    monkeypatch.setenv("MDR_VENDOR_NAME", "acme.payments")
    assert logmap.default_product(None) == {"name": "billing", "vendor_name": "acme.payments"}
    assert logmap.default_product({"name": "x"}) == {"name": "x", "vendor_name": "acme.payments"}
    record = logging.makeLogRecord({"msg": "x"})
    product = logmap.record_to_event(record)["metadata"]["product"]
    assert product == {"name": "billing", "vendor_name": "acme.payments"}


def test_default_product_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MDR_PRODUCT_NAME", raising=False)
    monkeypatch.delenv("MDR_VENDOR_NAME", raising=False)
    product = logmap.default_product(None)
    assert product == {"name": eventlog.program_name(), "vendor_name": "unknown"}
    assert product["name"]


def test_product_values_the_schema_wants_as_text_become_text() -> None:
    product = logmap.default_product({"name": "svc", "version": 2, "vendor_name": "acme"})
    assert product == {"name": "svc", "version": "2", "vendor_name": "acme"}
    event = logmap.record_to_event(logging.makeLogRecord({"msg": "x"}), {"uid": 7})
    assert event["metadata"]["product"]["uid"] == "7"
    assert_clean(event)


def test_actor_process_uses_the_callers_native_thread_id(
    logged: tuple[logging.Logger, Capturing],
) -> None:
    logger, handler = logged
    seen: list[int] = []

    def work() -> None:
        seen.append(threading.get_native_id())
        logger.info("from a thread")

    thread = threading.Thread(target=work, name="worker-7")
    thread.start()
    thread.join(5)
    event = _event(handler)  # mapped here, on another thread
    process = event["actor"]["process"]
    assert process["tid"] == seen[0] != threading.get_native_id()
    assert process["pid"] == os.getpid()
    assert process["name"] == handler.records[-1].processName
    assert event["unmapped"]["thread_name"] == "worker-7"


def test_actor_user_is_the_os_user(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    logger.info("x")
    try:
        expected = {"name": getpass.getuser()}
    except Exception:
        expected = {"uid": str(os.getuid())}
    assert _event(handler)["actor"]["user"] == expected


def test_os_user_lookup_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user() -> str:
        raise OSError("no passwd entry")

    monkeypatch.setattr(getpass, "getuser", no_user)
    eventlog.os_user.cache_clear()
    try:
        user = eventlog.os_user()
        assert user == ({"uid": str(os.getuid())} if hasattr(os, "getuid") else {})
        event = logmap.record_to_event(logging.makeLogRecord({"msg": "x"}), PRODUCT)
        assert_clean(event)
    finally:
        eventlog.os_user.cache_clear()


def test_device_and_src_endpoint_are_the_host(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    logger.info("x")
    event = _event(handler)
    host = socket.gethostname()
    key = "hostname" if eventlog._HOSTNAME.match(host) else "name"
    assert event["device"] == {key: host, "type_id": 0, "type": "Unknown"}
    assert event["src_endpoint"] == {key: host}


def test_a_host_name_outside_hostname_t_goes_to_name() -> None:
    assert eventlog.device("build_box_3") == {
        "name": "build_box_3",
        "type_id": 0,
        "type": "Unknown",
    }
    assert eventlog.device("web-1.example.com")["hostname"] == "web-1.example.com"


def test_file_information_enrichment(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    logger.info("x")
    record = handler.records[-1]
    assert _event(handler)["enrichments"] == [
        {
            "name": "file_information",
            "value": f"{record.pathname}:{record.lineno}",
            "data": {
                "module": "test_logmap",
                "function_name": "test_file_information_enrichment",
                "line_number": record.lineno,
                "path": record.pathname,
            },
        }
    ]


def test_exception_is_frozen_and_traceback_released(
    logged: tuple[logging.Logger, Capturing],
) -> None:
    logger, handler = logged
    stream = io.StringIO()
    printer = logging.StreamHandler(stream)  # a handler after ours still prints the traceback
    logger.addHandler(printer)
    try:
        try:
            raise ValueError("bad input 42")
        except ValueError:
            logger.exception("it failed")
    finally:
        logger.removeHandler(printer)
    record = handler.records[-1]
    assert record.exc_info is None
    exception = _event(handler)["unmapped"]["exception"]
    assert exception["type"] == "ValueError"
    assert exception["message"] == "bad input 42"
    assert exception["stacktrace"].startswith("Traceback (most recent call last):")
    assert exception["stacktrace"].endswith("ValueError: bad input 42")
    assert "ValueError: bad input 42" in stream.getvalue()


def test_exc_info_given_as_exception_instance(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    logger.error("oops", exc_info=KeyError("k"))
    assert _event(handler)["unmapped"]["exception"]["type"] == "KeyError"


@pytest.mark.parametrize(
    "exc_info",
    [True, (None, None, None), ("not a type", "not an exception", None), (BrokenStr, 3, 4)],
)
def test_odd_exc_info_values_never_raise(exc_info: Any) -> None:
    record = logging.makeLogRecord({"msg": "x", "exc_info": exc_info})
    logmap.capture(record)
    assert_clean(logmap.record_to_event(record, PRODUCT))


def test_hostile_objects_in_exception_and_message_slots_never_raise() -> None:
    record = logging.makeLogRecord(
        {
            "msg": BrokenEverything(),
            "exc_info": BrokenEverything(),
            "exc_text": BrokenEverything(),
            "stack_info": BrokenEverything(),
            "levelname": BrokenEverything(),
            "name": BrokenEverything(),
        }
    )
    logmap.capture(record)
    event = logmap.record_to_event(record, BrokenEverything())
    assert_clean(event)
    assert "BrokenEverything" in event["message"]


def test_stack_info_and_thread_name(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    logger.info("where am I", stack_info=True)
    unmapped = _event(handler)["unmapped"]
    assert unmapped["stack"].startswith("Stack (most recent call last):")
    assert unmapped["thread_name"] == threading.current_thread().name


def test_extra_and_adapter_attributes_go_to_unmapped_extra(
    logged: tuple[logging.Logger, Capturing],
) -> None:
    logger, handler = logged
    adapter = logging.LoggerAdapter(logger, {"tenant": "t-9"})
    adapter.info("x", extra={"ignored_by_adapter": 1})
    logger.info(
        "y",
        extra={
            "order": {"id": 7, "tags": {"b", "a"}, "note": None},
            "raw": b"ok\xff",
            "ratio": math.nan,
            "error": RuntimeError("nope"),
            "broken": BrokenStr(),
            "empty": "",
        },
    )
    assert _event(handler, 0)["unmapped"]["extra"] == {"tenant": "t-9"}
    extra = _event(handler, 1)["unmapped"]["extra"]
    assert extra["order"] == {"id": 7, "tags": ["a", "b"]}
    assert extra["raw"] == "ok\\xff"
    assert extra["ratio"] == "nan"
    assert extra["error"] == {"type": "RuntimeError", "message": "nope"}
    assert "BrokenStr" in extra["broken"]
    assert "empty" not in extra
    assert not set(extra) & logmap.STANDARD_ATTRIBUTES


def test_no_extra_means_no_extra_key(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    logger.info("plain")
    assert "extra" not in _event(handler)["unmapped"]


def test_uid_is_a_version_8_uuid_of_this_process_and_its_sequence(
    logged: tuple[logging.Logger, Capturing],
) -> None:
    logger, handler = logged
    for number in range(50):
        logger.info("n=%d", number)
    events = [logmap.record_to_event(r, PRODUCT) for r in reversed(handler.records)]
    events.reverse()
    uids = [uuid.UUID(e["metadata"]["uid"]) for e in events]
    assert [str(u) for u in uids] == [e["metadata"]["uid"] for e in events]  # canonical form
    assert len(set(uids)) == 50
    assert {u.version for u in uids} == {8} and {u.variant for u in uids} == {uuid.RFC_4122}
    sequences = [e["metadata"]["sequence"] for e in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == 50
    assert [u.int & (2**48 - 1) for u in uids] == sequences  # the sequence, in the last 48 bits
    assert len({u.int >> 48 for u in uids}) == 1  # one random prefix per process
    again = logmap.record_to_event(handler.records[0], PRODUCT)
    assert again["metadata"]["uid"] == events[0]["metadata"]["uid"]  # same event, same uid


def test_sequential_uids_cost_a_fraction_of_random_ones_on_the_wire() -> None:
    sequential = "".join(eventlog.event_uid(eventlog.next_sequence()) for _ in range(500))
    random_ = "".join(eventlog.new_uid() for _ in range(500))
    small = len(gzip.compress(sequential.encode(), 1))
    assert small * 4 < len(gzip.compress(random_.encode(), 1))


def test_new_uid_is_a_random_rfc4122_version_4_uuid() -> None:
    uids = [eventlog.new_uid() for _ in range(2_000)]
    parsed = [uuid.UUID(uid) for uid in uids]
    assert [str(u) for u in parsed] == uids  # canonical form: lower-case hex, 8-4-4-4-12
    assert {u.version for u in parsed} == {4}
    assert {u.variant for u in parsed} == {uuid.RFC_4122}
    assert len(set(uids)) == len(uids)
    assert {uid[0] for uid in uids} == set("0123456789abcdef")  # every group is random


def test_metadata_is_its_fixed_part_plus_the_per_event_part() -> None:
    product = {"name": "p", "vendor_name": "v"}
    whole = eventlog.metadata(product, "1.0", 7, 1_700_000_000_000, "INFO")
    fixed = eventlog.metadata_fixed(product, "1.0")
    own = eventlog.metadata_event(7, 1_700_000_000_000, "INFO")
    assert not set(fixed) & set(own)
    assert {**fixed, **own} == whole  # the uid too: it follows from the sequence
    assert eventlog.metadata_event(1, None, None).keys() == {"uid", "sequence"}
    assert "log_version" not in eventlog.metadata_fixed(product, "")


def test_uid_stream_differs_in_a_forked_child() -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report one uid and leave at once
        os.write(write, f"{eventlog.new_uid()} {eventlog.event_uid(1)}".encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 128).decode().split()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 2 and child[0] != eventlog.new_uid()
    assert child[1] != eventlog.event_uid(1)  # a new prefix in the child


def test_capture_twice_keeps_the_first_capture(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    try:
        raise OSError("disk")
    except OSError:
        logger.exception("x")
    record = handler.records[-1]
    first = getattr(record, logmap.CAPTURED)
    logmap.capture(record)
    assert getattr(record, logmap.CAPTURED) is first
    assert _event(handler)["unmapped"]["exception"]["type"] == "OSError"


def test_record_that_skipped_capture_is_captured_when_mapped() -> None:
    record = logging.makeLogRecord({"name": "direct", "msg": "a %s", "args": ("b",)})
    event = logmap.record_to_event(record, PRODUCT)
    assert event["message"] == "a b"
    assert_clean(event)


def test_hot_path_and_careful_path_agree(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    logger.info("x %s", "y", extra={"k": [1, 2]}, stack_info=True)
    item = logmap.compact(handler.records[-1])
    plain = logmap._map_plain(item, PRODUCT, "9.9")
    careful = logmap._map_careful(item, PRODUCT, "9.9")
    assert plain is not None
    for event in (plain, careful):
        del event["metadata"]["uid"]
    assert plain == careful


def test_overlong_message_is_cut_and_kept_whole(logged: tuple[logging.Logger, Capturing]) -> None:
    logger, handler = logged
    text = "x" * 70_000
    logger.info(text)
    event = _event(handler)
    assert len(event["message"]) == eventlog.MAX_STRING
    assert event["unmapped"]["message"] == text
    assert_clean(event)


def test_hostile_record_attributes_never_raise() -> None:
    record = logging.makeLogRecord(
        {
            "name": None,
            "levelno": "high",
            "levelname": None,
            "created": math.nan,
            "pathname": None,
            "lineno": "x",
            "funcName": None,
            "process": None,
            "processName": BrokenStr(),
            "threadName": None,
            "msg": None,
        }
    )
    event = logmap.record_to_event(record, None)
    assert_clean(event)


# Internal-record marking (py_mdr.internal) ---------------------------------------------------


def test_records_created_while_sending_are_marked() -> None:
    internal.install_record_marker()
    logger = logging.getLogger("test_logmap.marker")
    assert not internal.is_sending()
    with internal.sending():
        assert internal.is_sending()
        with internal.sending():
            pass
        assert internal.is_sending()  # nesting restores the outer state
        inside = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "m", (), None)
    outside = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "m", (), None)
    assert getattr(inside, internal.INTERNAL_ATTRIBUTE) is True
    assert not hasattr(outside, internal.INTERNAL_ATTRIBUTE)
    assert internal.is_internal_record(inside) and not internal.is_internal_record(outside)


def test_marker_installs_once_and_chains_the_previous_factory() -> None:
    original = logging.getLogRecordFactory()

    def custom(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = logging.LogRecord(*args, **kwargs)
        record.custom = "yes"
        return record

    try:
        logging.setLogRecordFactory(custom)
        internal.install_record_marker()
        installed = logging.getLogRecordFactory()
        assert installed is not custom
        internal.install_record_marker()
        assert logging.getLogRecordFactory() is installed  # no second wrapper
        with internal.sending():
            record = logging.getLogger("t").makeRecord("t", 20, __file__, 1, "m", (), None)
        assert getattr(record, "custom", None) == "yes"
        assert getattr(record, internal.INTERNAL_ATTRIBUTE, None) is True
    finally:
        logging.setLogRecordFactory(original)


def test_sending_flag_is_per_thread() -> None:
    seen: list[bool] = []
    with internal.sending():
        thread = threading.Thread(target=lambda: seen.append(internal.is_sending()))
        thread.start()
        thread.join(5)
    assert seen == [False]


def test_import_py_mdr_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, logging, py_mdr, py_mdr.logmap, py_mdr.eventlog, py_mdr.severity, "
        "py_mdr.internal\n"
        "py_mdr.logmap.record_to_event(logging.makeLogRecord({'msg': 'x'}))\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# Properties -----------------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.binary(),
    st.builds(BrokenStr),
    st.builds(BrokenEverything),
    st.builds(ValueError, st.text()),
    st.just(math.nan),
    st.just(math.inf),
    st.decimals(allow_nan=True),
    st.uuids(),
    st.datetimes(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(), st.integers()), inner, max_size=4),
        st.frozensets(st.integers(), max_size=4),
        st.tuples(inner, inner),
    ),
    max_leaves=12,
)
_extra_keys = st.text(min_size=1).filter(
    lambda k: k not in logmap.STANDARD_ATTRIBUTES and k not in {"exc_info", "stack_info"}
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=st.one_of(st.text(), _scalars),
    args=st.lists(_scalars, max_size=3),
    extra=st.dictionaries(_extra_keys, _values, max_size=4),
    level=st.integers(min_value=-5, max_value=80),
)
def test_any_record_maps_to_a_clean_valid_event(
    message: Any, args: list[Any], extra: dict[str, Any], level: int
) -> None:
    logger = logging.getLogger("test_logmap.property")
    record = logger.makeRecord(
        logger.name, level, __file__, 10, message, tuple(args), None, "fn", extra
    )
    logmap.capture(record)
    event = logmap.record_to_event(record, PRODUCT)
    assert_clean(event)
    assert event["metadata"]["product"] == PRODUCT


@settings(max_examples=80, deadline=None)
@given(
    overrides=st.dictionaries(
        st.sampled_from(
            [
                "name",
                "levelno",
                "levelname",
                "created",
                "pathname",
                "lineno",
                "funcName",
                "module",
                "process",
                "processName",
                "thread",
                "threadName",
                "msg",
                "args",
                "stack_info",
                "exc_info",
                "exc_text",
            ]
        ),
        _values,
        max_size=6,
    )
)
def test_records_with_odd_standard_attributes_never_raise(overrides: dict[str, Any]) -> None:
    record = logging.makeLogRecord({"msg": "m", **overrides})
    logmap.capture(record)
    assert_clean(logmap.record_to_event(record, None))


@pytest.mark.parametrize("created", [9223372036854776.0, 1e13, 1e16, -1e17])
def test_a_creation_time_far_off_falls_back_to_the_time_it_was_logged(created: float) -> None:
    record = logging.makeLogRecord({"msg": "m", "created": created})
    logmap.capture(record)
    event = logmap.record_to_event(record, None)
    assert event["time"] == event["metadata"]["logged_time"]
    assert_clean(event)


# ---------------------------------------------------------------- intake() and complete()


def _plain_record(extra: dict[str, Any] | None = None, argument: Any = None) -> logging.LogRecord:
    logger = logging.getLogger("intake.test")
    args = ("ann", [1] if argument is None else argument)
    return logger.makeRecord(
        "intake.test", logging.WARNING, "app.py", 7, "user %s has %s", args, None, extra=extra
    )


def test_intake_then_complete_gives_what_compact_gives() -> None:
    record = _plain_record({"request_id": "r-1", "attempt": 2})
    pending = logmap.intake(record)
    assert pending is not None
    queued = logmap.complete(pending)
    direct = logmap.compact(record)
    assert queued._replace(captured=()) == direct._replace(captured=())
    assert queued.captured[1:3] == (threading.get_native_id(), pytest.approx(queued.created, abs=1))
    assert queued.captured[0] < direct.captured[0]  # sequence numbers in intake order


def test_intake_freezes_the_message_but_not_the_record() -> None:
    argument: list[int] = [1]
    record = _plain_record({"request_id": "r-1"}, argument)
    before = dict(record.__dict__)
    pending = logmap.intake(record)
    assert pending is not None
    assert record.__dict__ == before  # other handlers see the record as it was
    argument.append(2)  # the application changes an argument after the call
    # A later handler's formatter adds its own attributes to the record meanwhile.
    logging.Formatter("%(asctime)s %(message)s").format(record)
    item = logmap.complete(pending)
    assert item.message == "user ann has [1]"
    assert item.extra == {"request_id": "r-1"}


@pytest.mark.parametrize(
    "make",
    [
        lambda: logging.makeLogRecord({"msg": "a", "exc_info": (ValueError, ValueError(), None)}),
        lambda: type("Custom", (logging.LogRecord,), {})("n", 20, "p", 1, "m", (), None),
        lambda: logging.makeLogRecord({"msg": "%d", "args": ("not a number",)}),
        lambda: logging.makeLogRecord({"msg": "m", logmap.CAPTURED: (1, 2, 3.0, None)}),
    ],
    ids=["exception", "record-subclass", "failing-format", "captured-before"],
)
def test_records_intake_cannot_take_go_to_compact(make: Any) -> None:
    assert logmap.intake(make()) is None


@pytest.mark.parametrize("created", [0.0, -1.0, 1.5])
def test_a_record_made_at_or_before_the_epoch_keeps_its_time(
    logged: tuple[logging.Logger, Capturing], created: float
) -> None:
    logger, handler = logged
    record = logger.makeRecord("t", logging.INFO, __file__, 1, "at the epoch", (), None)
    record.created = created
    logger.handle(record)
    assert _event(handler)["time"] == int(created * 1000)
