"""structlog through ``py_mdr.structlog.render_to_mdr`` and MDRHandler, to the real receiver.

The example runs as a user runs it (a subprocess, sending to this test's receiver on loopback);
the other tests configure structlog in this process and look at what arrived.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import structlog
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

from py_mdr.handler import MDRHandler
from py_mdr.hec.retry import RetryPolicy
from py_mdr.sink import HECSink
from py_mdr.structlog import render_to_mdr
from py_mdr_otel import MDRExporter

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=5.0)
Attach = Callable[[logging.Handler, str], logging.Logger]


def iso_ms(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1000)


def test_the_example_delivers_message_severity_pairs_exception_and_time(sink: HECSink) -> None:
    env = {**os.environ, "MDR_HOST": sink.url, "MDR_TOKEN": sink.token}
    before = datetime.now(timezone.utc).timestamp() * 1000
    result = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / "structlog_app.py")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    after = datetime.now(timezone.utc).timestamp() * 1000
    assert result.returncode == 0, result.stdout + result.stderr
    assert sink.problems == []
    events = {e["message"]: e for e in sink.events}
    assert list(events) == ["order placed", "stock is low", "payment failed"]

    placed, low, failed = events.values()
    assert [e["severity_id"] for e in (placed, low, failed)] == [1, 3, 4]
    assert [e["metadata"]["log_level"] for e in (placed, low, failed)] == [
        "INFO",
        "WARNING",
        "ERROR",
    ]
    # the key-value pairs (the bound context too) where stdlib extra= fields land; the level
    # and the timestamp are mapped, not repeated as pairs
    assert placed["unmapped"]["extra"] == {
        "order_id": "order-7",
        "items": 3,
        "request_id": "req-42",
    }
    assert low["unmapped"]["extra"] == {"sku": "sku-1", "left": 2, "request_id": "req-42"}
    assert failed["unmapped"]["extra"] == {"order_id": "order-7", "request_id": "req-42"}
    exception = failed["unmapped"]["exception"]
    assert exception["type"] == "ValueError"
    assert exception["message"] == "cannot charge 0 cents for order-7"
    assert 'in charge\n    raise ValueError(f"cannot charge' in exception["stacktrace"]
    # the code location is the application's line, not structlog's
    assert {e["enrichments"][0]["data"]["module"] for e in events.values()} == {"structlog_app"}
    for event in events.values():
        assert before - 1 <= event["time"] <= after + 1
    assert [e["log_name"] for e in events.values()] == ["shop.orders"] * 3


def test_the_readme_snippet_delivers_under_w_error(sink: HECSink, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    (snippet,) = [b for b in blocks if "from py_mdr.structlog import render_to_mdr" in b]
    code = snippet.replace('"route.to.hec.endpoint:8088"', repr(sink.url))
    code = code.replace('"A-VALID-TOKEN"', repr(sink.token))
    assert code != snippet
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDR_")}
    result = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (event,) = sink.events
    assert (event["message"], event["severity_id"]) == ("card declined", 3)
    assert event["unmapped"]["extra"] == {"order_id": 42}


@pytest.fixture
def structlog_to(attach: Attach) -> Iterator[Callable[[HECSink, list[Any]], Any]]:
    """structlog configured with the given processors before ``render_to_mdr``."""

    def configure(sink: HECSink, processors: list[Any]) -> Any:
        handler = MDRHandler(host=sink.url, token=sink.token, linger=0.02, retry=FAST)
        attach(handler, "structlog.test")
        structlog.configure(
            processors=[*processors, render_to_mdr],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=False,
        )
        return handler

    yield configure
    structlog.reset_defaults()


def test_timestamp_becomes_time_in_each_form_timestamper_writes(
    sink: HECSink, structlog_to: Callable[[HECSink, list[Any]], Any]
) -> None:
    handler = structlog_to(sink, [])
    log = structlog.get_logger("structlog.test")
    log.info("iso utc", timestamp="2026-05-04T03:02:01.250000Z")
    log.info("iso offset", timestamp="2026-05-04T05:02:01.250+02:00")
    log.info("seconds", timestamp=1_777_777_777.5)
    log.info("custom format", timestamp="04/05/2026 03:02")
    assert handler.flush(5)
    events = {e["message"]: e for e in sink.events}
    expected = iso_ms("2026-05-04T03:02:01.250+00:00")
    assert events["iso utc"]["time"] == events["iso offset"]["time"] == expected
    assert events["seconds"]["time"] == 1_777_777_777_500
    assert "extra" not in events["iso utc"].get("unmapped", {})
    # a format it cannot read stays a key-value pair; the record's own time stands
    assert events["custom format"]["unmapped"]["extra"] == {"timestamp": "04/05/2026 03:02"}
    assert (
        abs(events["custom format"]["time"] - events["custom format"]["metadata"]["logged_time"])
        < 1000
    )
    assert {v["time"] for v in sink.envelopes if v["event"]["message"] == "seconds"} == {
        1_777_777_777.5
    }


def test_a_timestamp_that_parses_but_is_no_time_stays_a_pair(
    sink: HECSink, structlog_to: Callable[[HECSink, list[Any]], Any]
) -> None:
    handler = structlog_to(sink, [])
    log = structlog.get_logger("structlog.test")
    log.info("milliseconds", timestamp=1_577_934_245_678)  # reads as seconds: year 51970
    log.info("before 1970", timestamp="1960-01-01T00:00:00Z")
    assert handler.flush(5)
    events = {e["message"]: e for e in sink.events}
    assert events["milliseconds"]["unmapped"]["extra"] == {"timestamp": 1_577_934_245_678}
    assert events["before 1970"]["time"] == iso_ms("1960-01-01T00:00:00+00:00")
    assert "extra" not in events["before 1970"].get("unmapped", {})


def test_positional_arguments_reserved_keys_and_level_key(
    sink: HECSink, structlog_to: Callable[[HECSink, list[Any]], Any]
) -> None:
    handler = structlog_to(sink, [structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name])
    log = structlog.get_logger("structlog.test")
    log.warning("card %s declined", "****1234", name="alice", module="billing", process=7)
    log.debug("quiet", stack_info=True)
    assert handler.flush(5)
    declined, quiet = sink.events
    assert declined["message"] == "card ****1234 declined"
    assert declined["severity_id"] == 3
    # logging refuses these names in extra=: they arrive with a trailing underscore
    assert declined["unmapped"]["extra"] == {"name_": "alice", "module_": "billing", "process_": 7}
    assert quiet["severity_id"] == 99  # DEBUG is "Other"
    assert "test_positional_arguments_reserved_keys_and_level_key" in quiet["unmapped"]["stack"]


def test_a_hostile_event_dict_never_raises_into_the_application(
    sink: HECSink, structlog_to: Callable[[HECSink, list[Any]], Any]
) -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

        __str__ = __repr__

    handler = structlog_to(sink, [])
    log = structlog.get_logger("structlog.test")
    log.info("odd values", value=Unprintable(), timestamp=10**400, when=datetime.max)
    log.info("plain")
    assert handler.flush(5)
    assert [e["message"] for e in sink.events] == ["odd values", "plain"]
    assert "timestamp" in sink.events[0]["unmapped"]["extra"]  # too far off: kept as a pair


def test_through_opentelemetry_the_pairs_land_at_the_same_path(
    sink: HECSink, attach: Attach
) -> None:
    exporter = MDRExporter(host=sink.url, token=sink.token, retry=FAST, timeout=5.0)
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    attach(LoggingHandler(logger_provider=provider), "structlog.otel")
    structlog.configure(
        processors=[structlog.processors.TimeStamper(fmt="iso", utc=True), render_to_mdr],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    try:
        structlog.get_logger("structlog.otel").warning("stock is low", sku="sku-1", left=2)
        assert exporter.force_flush(5_000)
    finally:
        structlog.reset_defaults()
        provider.shutdown()
    (event,) = sink.events
    assert (event["message"], event["severity_id"]) == ("stock is low", 3)
    assert event["unmapped"]["extra"] == {"sku": "sku-1", "left": 2}  # no timestamp, no marker


def test_renderer_output_is_logging_call_arguments() -> None:
    logger = logging.getLogger("structlog.args")
    args, kwargs = render_to_mdr(
        logger,
        "error",
        {"event": "boom", "exc_info": True, "logger": "structlog.args", "level": "error", "k": 1},
    )
    assert args == ("boom",)
    assert kwargs == {"exc_info": True, "extra": {"k": 1}}


def test_the_module_imports_without_structlog_installed() -> None:
    code = (
        "import sys; sys.modules['structlog'] = None\n"  # as if it were not installed
        "from py_mdr.structlog import render_to_mdr\n"
        "print(render_to_mdr(None, 'info', {'event': 'e', 'k': 1}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(('e',), {'extra': {'k': 1}})"
