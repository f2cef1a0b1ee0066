"""One mapping whichever door a stdlib record comes through, and what a handler's formatter does.

Every test sends through the real receiver on loopback and looks at what arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

from py_mdr.handler import MDRHandler
from py_mdr.hec.retry import RetryPolicy
from py_mdr.ocsf_models.events.system_activity.event_log_activity import EventLogActivity
from py_mdr.sink import HECSink
from py_mdr_otel import MDRExporter

pytestmark = pytest.mark.timeout(60)

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=5.0)
Attach = Callable[[logging.Handler, str], logging.Logger]


def handler_for(sink: HECSink, **options: Any) -> MDRHandler:
    return MDRHandler(host=sink.url, token=sink.token, linger=0.02, retry=FAST, **options)


def through_handler(sink: HECSink, attach: Attach, name: str) -> dict[str, Any]:
    handler = handler_for(sink)
    attach(handler, name).warning("x", extra={"order_id": 1})
    assert handler.flush(5)
    (event,) = [e for e in sink.events if e.get("log_name") == name]
    return dict(event)


def through_otel(sink: HECSink, attach: Attach, name: str) -> dict[str, Any]:
    exporter = MDRExporter(host=sink.url, token=sink.token, retry=FAST, timeout=5.0)
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    try:
        attach(LoggingHandler(logger_provider=provider), name).warning("x", extra={"order_id": 1})
        assert exporter.force_flush(5_000)
    finally:
        provider.shutdown()
    (event,) = [e for e in sink.events if e.get("log_name") == name]
    return dict(event)


def test_an_extra_field_lands_at_the_same_path_through_the_handler_and_through_otel(
    sink: HECSink, attach: Attach
) -> None:
    direct = through_handler(sink, attach, "doors.handler")
    bridged = through_otel(sink, attach, "doors.otel")
    assert direct["unmapped"]["extra"] == {"order_id": 1}
    assert bridged["unmapped"]["extra"] == {"order_id": 1}
    assert "attributes" not in bridged["unmapped"]
    assert direct["message"] == bridged["message"] == "x"
    assert direct["severity_id"] == bridged["severity_id"] == 3


def test_otel_attributes_with_an_ocsf_home_stay_out_of_extra(sink: HECSink, attach: Attach) -> None:
    exporter = MDRExporter(host=sink.url, token=sink.token, retry=FAST, timeout=5.0)
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider, log_code_attributes=True)
    logger = attach(handler, "doors.semconv")
    try:
        try:
            raise KeyError("sku-1")
        except KeyError:
            logger.exception("lookup failed", extra={"sku": "sku-1"})
        assert exporter.force_flush(5_000)
    finally:
        provider.shutdown()
    (event,) = sink.events
    assert event["unmapped"]["extra"] == {"sku": "sku-1"}
    assert event["unmapped"]["exception"]["type"] == "KeyError"
    assert event["enrichments"][0]["data"]["function_name"] == (
        "test_otel_attributes_with_an_ocsf_home_stay_out_of_extra"
    )


# --- a formatter set on the handler -----------------------------------------------------------


def test_a_formatter_formats_the_message_and_the_exception_is_still_mapped(
    sink: HECSink, attach: Attach
) -> None:
    handler = handler_for(sink)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(name)s: %(message)s"))
    logger = attach(handler, "doors.formatted")
    logger.info("card %s declined", "****1234", extra={"order": 42})
    try:
        int("twelve")
    except ValueError:
        logger.exception("could not price %s", "INV-1")
    assert handler.flush(5)
    plain, failed = sink.events
    assert plain["message"] == "[INFO] doors.formatted: card ****1234 declined"
    assert plain["unmapped"]["extra"] == {"order": 42}
    # a stdlib Formatter appends the traceback, as on a console; the exception is mapped as ever
    assert failed["message"].startswith("[ERROR] doors.formatted: could not price INV-1\n")
    assert failed["message"].endswith(
        "ValueError: invalid literal for int() with base 10: 'twelve'"
    )
    assert failed["unmapped"]["exception"]["type"] == "ValueError"
    assert "Traceback (most recent call last)" in failed["unmapped"]["exception"]["stacktrace"]


def test_without_a_formatter_the_message_is_the_record_message(
    sink: HECSink, attach: Attach
) -> None:
    handler = handler_for(sink)
    attach(handler, "doors.plain").info("card %s declined", "****1234")
    assert handler.flush(5)
    assert [e["message"] for e in sink.events] == ["card ****1234 declined"]


def test_the_formatter_leaves_other_handlers_their_record(sink: HECSink, attach: Attach) -> None:
    seen: list[str] = []

    class Keeper(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())
            seen.append(str(record.exc_info is not None))

    class Subclassed(MDRHandler):
        def map_log_record(self, record: logging.LogRecord) -> EventLogActivity:
            return super().map_log_record(record)

    handler = Subclassed(host=sink.url, token=sink.token, linger=0.02, retry=FAST)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = attach(handler, "doors.subclass")
    logger.addHandler(Keeper())
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("divided")
    assert handler.flush(5)
    (event,) = sink.events
    assert event["message"].startswith("ERROR divided\nTraceback")
    assert event["unmapped"]["exception"]["type"] == "ZeroDivisionError"
    assert seen == ["divided", "True"]


def test_a_formatter_that_fails_leaves_the_plain_message(sink: HECSink, attach: Attach) -> None:
    class Broken(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            raise RuntimeError("formatter bug")

    handler = handler_for(sink)
    handler.setFormatter(Broken())
    attach(handler, "doors.broken").warning("still %s", "sent")
    assert handler.flush(5)
    assert [e["message"] for e in sink.events] == ["still sent"]
    assert handler.stats.dropped == {}
