"""MDRHandler against the real receiver on loopback: what arrives, and what an outage does not do.

Outage runs that must show how a process ends (exit within the close deadline, the loss report)
run in a child interpreter; everything else runs in this process with short delays.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import logging.handlers
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from processes import closed_port_url

from py_mdr import internal
from py_mdr.config import ConfigError
from py_mdr.handler import MDRHandler
from py_mdr.hec.retry import RetryPolicy
from py_mdr.ocsf_models.events.system_activity.event_log_activity import EventLogActivity
from py_mdr.ocsf_models.objects.enrichment import Enrichment
from py_mdr.ocsf_models.objects.product import Product
from py_mdr.sink import HECSink

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=5.0)
SEVERITY = {
    logging.DEBUG: 99,
    logging.INFO: 1,
    logging.WARNING: 3,
    logging.ERROR: 4,
    logging.CRITICAL: 5,
}


class Keeper(logging.Handler):
    """Keeps the records a logger saw, to compare with what arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def handler_for(sink: HECSink, **options: Any) -> MDRHandler:
    options.setdefault("linger", 0.02)
    options.setdefault("retry", FAST)
    options.setdefault("close_timeout", 2.0)
    return MDRHandler(host=sink.url, token=sink.token, **options)


def run_child(code: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with this checkout importable and no MDR_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MDR_")}
    clean.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean,
        cwd=ROOT,
        check=False,
    )


def last_json(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert lines, output
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def delivery_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "py-mdr-delivery"]


# ---------------------------------------------------------------- the published API


class BetterHandler(MDRHandler):  # the published README's example, unchanged
    def map_log_record(self, record) -> EventLogActivity:  # type: ignore[no-untyped-def]
        a = super().map_log_record(record)
        a.enrichments.append(
            Enrichment(name="Additional information", value={"important": "stuff"})
        )
        return a


def test_seed_readme_examples_arrive_as_event_log_activities(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = MDRHandler(
        host=sink.url,
        token="test-token",
        ssl_verify=True,
        product=Product(name="<PROJECT>", vendor_name="<COMPANY>.<TEAM>"),
    )
    better = BetterHandler(
        host=sink.url,
        token="test-token",
        ssl_verify=True,
        product=Product(name="<PROJECT>", vendor_name="<COMPANY>.<TEAM>"),
    )
    keeper = Keeper()
    plain_log = attach(handler, "seed.plain")
    better_log = attach(better, "seed.better")
    plain_log.addHandler(keeper)
    better_log.addHandler(keeper)
    for log in (plain_log, better_log):
        log.debug("cache has %d entries", 3)
        log.info("user %s logged in from %s", "alice", "10.0.0.7")
        log.warning("disk %s at %d%%", "/var", 91)
        log.error("payment %s failed", "P-1")
        log.critical("shutting down")
    assert handler.flush(5) and better.flush(5)
    assert sink.wait_for_events(10, timeout=5)
    envelopes = sink.envelopes
    assert len(envelopes) == 10
    assert sink.problems == []  # every event valid OCSF; every envelope complete
    for record in keeper.records:
        matches = [
            e
            for e in envelopes
            if e["source"] == record.name and e["event"]["message"] == record.getMessage()
        ]
        assert len(matches) == 1, record.getMessage()
        envelope = matches[0]
        event = envelope["event"]
        assert event["class_uid"] == 1008 and event["class_name"] == "Event Log Activity"
        assert event["severity_id"] == SEVERITY[record.levelno]
        assert event["time"] == int(record.created * 1000)
        assert envelope["time"] == pytest.approx(event["time"] / 1000, abs=0.0011)
        assert envelope["sourcetype"] == f"pymdr::{record.name}"
        assert event["metadata"]["product"] == {
            "name": "<PROJECT>",
            "vendor_name": "<COMPANY>.<TEAM>",
        }
        extra = [e for e in event.get("enrichments", []) if e["name"] == "Additional information"]
        if record.name == "seed.better":
            assert extra == [
                {
                    "name": "Additional information",
                    "value": '{"important":"stuff"}',
                    "data": {"important": "stuff"},
                }
            ]
        else:
            assert extra == []
    assert {e["event"]["message"] for e in envelopes} >= {
        "user alice logged in from 10.0.0.7",
        "disk /var at 91%",
    }


def test_default_mapping_carries_exception_stack_extra_and_adapter_fields(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = handler_for(sink, source_type="billing", index=None)
    log = attach(handler, "mapping.app")
    try:
        raise KeyError("currency")
    except KeyError:
        log.exception("pricing failed for %s", "INV-1")
    log.info("with stack", stack_info=True)
    logging.LoggerAdapter(log, {"request_id": "r-9", "tenant": "acme"}).warning("adapted")
    log.info("extra", extra={"amount": 12, "tags": {"a"}, "blob": b"\xff"})
    assert handler.flush(5)
    events = {e["message"]: e for e in sink.events}
    exception = events["pricing failed for INV-1"]["unmapped"]["exception"]
    assert exception["type"] == "KeyError" and "currency" in exception["stacktrace"]
    assert "test_handler.py" in events["with stack"]["unmapped"]["stack"]
    assert events["adapted"]["unmapped"]["extra"] == {"request_id": "r-9", "tenant": "acme"}
    assert events["extra"]["unmapped"]["extra"] == {"amount": 12, "tags": ["a"], "blob": "\\xff"}
    assert {e["sourcetype"] for e in sink.envelopes} == {"pymdr::billing"}
    assert {e["source"] for e in sink.envelopes} == {"mapping.app"}
    assert sink.problems == []


def test_host_and_token_come_from_the_environment(
    sink: HECSink,
    monkeypatch: pytest.MonkeyPatch,
    attach: Callable[[logging.Handler, str], logging.Logger],
) -> None:
    monkeypatch.setenv("MDR_HOST", sink.url)
    monkeypatch.setenv("MDR_TOKEN", sink.token)
    handler = MDRHandler(linger=0.02)
    attach(handler, "env.app").info("configured from the environment")
    assert handler.flush(5)
    assert [e["message"] for e in sink.events] == ["configured from the environment"]


@pytest.mark.parametrize(
    ("arguments", "names"),
    [({"token": "t"}, ("host", "MDR_HOST")), ({"host": "h:8088"}, ("token", "MDR_TOKEN"))],
)
def test_missing_host_or_token_is_a_clear_error(
    arguments: dict[str, Any], names: tuple[str, str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        MDRHandler(**arguments)
    assert all(name in str(caught.value) for name in names)


@pytest.mark.parametrize(
    "arguments",
    [
        {"max_queue_records": 0},
        {"batch_size": -1},
        {"linger": -1},
        {"close_timeout": "soon"},
        {"product": 42},
        {"retry": {"deadline": 0}},
        {"source_type": ""},
    ],
)
def test_bad_settings_are_config_errors_naming_the_argument(arguments: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(arguments))):
        MDRHandler(host="h:8088", token="t", **arguments)


def test_constructor_does_no_network_io_and_starts_no_thread(sink: HECSink) -> None:
    before = len(delivery_threads())
    handler = MDRHandler(host=sink.url, token=sink.token)
    down = MDRHandler(host=closed_port_url(), token="t")
    assert len(delivery_threads()) <= before
    assert sink.requests == []
    handler.close()
    down.close()


# ---------------------------------------------------------------- outages


DOWN_CHILD = """
import atexit, json, logging, os, sys, time

def peak_rss_kb():
    try:
        with open("/proc/self/status") as status:  # VmHWM: this process only, reset by exec
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def report():
    s = handler.stats
    print(json.dumps({"queued": s.queued, "sent": s.sent, "dropped": s.dropped,
                      "peak": s.queue_peak, "bytes_peak": s.queue_bytes_peak,
                      "in_flight": s.in_flight}), flush=True)

atexit.register(report)  # before py-mdr is imported, so it runs after py-mdr's exit hook
from py_mdr.handler import MDRHandler
from py_mdr.hec.retry import RetryPolicy

handler = MDRHandler(host=os.environ["URL"], token="t0k3n-d0wn-5ecret", max_queue_records=10_000,
                     max_queue_bytes=32 * 1024 * 1024, close_timeout=1.0,
                     retry=RetryPolicy(initial_backoff=0.05, max_backoff=0.2, deadline=60))
logger = logging.getLogger("down.app")
logger.propagate = False
logger.setLevel(logging.INFO)
logger.addHandler(handler)
logger.info("warm up")
rss_before = peak_rss_kb()
depth = slowest = 0.0
for i in range(1, 100_000):
    start = time.perf_counter()
    logger.info("record %d of %s", i, "many", extra={"n": i})
    slowest = max(slowest, time.perf_counter() - start)
    if i % 500 == 0:
        depth = max(depth, handler.stats.queue_depth)
print(json.dumps({"logged_at": time.time(), "slowest": slowest, "depth": depth,
                  "rss_growth_kb": peak_rss_kb() - rss_before}), flush=True)
"""


def test_endpoint_down_for_the_whole_run() -> None:
    result = run_child(DOWN_CHILD, URL=closed_port_url())
    exited_at = time.time()
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    during, final = lines[0], lines[-1]
    logged = 100_000
    # every call returned, none waited for the network
    assert during["slowest"] < 0.5
    # memory stayed within the configured bound
    assert during["depth"] <= 10_000 and final["peak"] <= 10_000
    assert final["bytes_peak"] <= 32 * 1024 * 1024
    assert during["rss_growth_kb"] < 60 * 1024  # 10,000 queued records, not 100,000
    # exact accounting: what did not fit was dropped at once; what was queued, at close
    dropped = final["dropped"]
    assert final["sent"] == 0 and final["in_flight"] == 0
    assert dropped["queue_full"] == logged - final["queued"]
    taken = final["queued"] - dropped.get("shutdown", 0)  # what the worker had taken out
    # the batch stuck in retries until close hurried it, and those tried while closing
    assert taken >= 1
    assert dropped.get("closed", 0) + dropped.get("deadline", 0) == taken
    assert sum(dropped.values()) == logged
    # the loss is told when it starts and summed up at close, in words, without the token;
    # the exit kept the close deadline
    report = [line for line in result.stderr.splitlines() if line.startswith("py-mdr:")]
    assert len(report) == 2, report
    assert "started losing records" in report[0] and "memory queue was full" in report[0]
    assert f"at close: {logged} record(s) not delivered" in report[1]
    assert f"{dropped['queue_full']} queue_full (the memory queue was full)" in report[1]
    assert "t0k3n-d0wn-5ecret" not in result.stderr + result.stdout
    assert exited_at - during["logged_at"] < 1.0 + 1.5


def test_503_for_a_while_then_every_record_arrives_once_in_order(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    outage = 10.0  # seconds of "server is busy", as a real incident would last
    sink.down = True
    recovery = threading.Timer(outage, setattr, args=(sink, "down", False))
    recovery.start()
    policy = RetryPolicy(initial_backoff=0.05, max_backoff=0.5, deadline=60.0)
    handler = handler_for(sink, retry=policy, batch_size=50, linger=0.05)
    log = attach(handler, "busy.app")

    def work(number: int) -> None:
        for i in range(200):
            log.info("thread %d line %d", number, i, extra={"worker": number, "line": i})
            if i % 20 == 0:
                time.sleep(0.3)  # the lines span several seconds of the outage

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert handler.flush(outage + 20)
    recovery.join()
    refused = [r for r in sink.requests if r.status == 503]
    assert refused[-1].time - refused[0].time > outage - 1.0  # retried through the outage
    events = sink.events
    assert len(events) == 600
    assert len({e["metadata"]["uid"] for e in events}) == 600  # exactly once
    for number in range(3):
        mine = [e for e in events if e["unmapped"]["extra"]["worker"] == number]
        assert [e["unmapped"]["extra"]["line"] for e in mine] == list(range(200))  # in order
        sequences = [e["metadata"]["sequence"] for e in mine]
        assert sequences == sorted(sequences) and len(set(sequences)) == 200
    stats = handler.stats
    assert stats.sent == 600 and stats.dropped == {} and stats.retried >= len(refused)


HANG_CHILD = """
import json, logging, os, time
from py_mdr.handler import MDRHandler

def timed(logger, n):
    latencies = []
    for i in range(n):
        start = time.perf_counter()
        logger.info("user %s did %d", "alice", i, extra={"a": 1, "b": "x", "c": 2.5})
        latencies.append(time.perf_counter() - start)
    latencies.sort()
    return latencies[n // 2], latencies[n * 99 // 100], latencies[-1]

logger = logging.getLogger("hang.app")
logger.propagate = False
logger.setLevel(logging.INFO)
null = logging.NullHandler()
logger.addHandler(null)
timed(logger, 2000)
floor = timed(logger, 20_000)
logger.removeHandler(null)
handler = MDRHandler(host=os.environ["URL"], token=os.environ["TOKEN"], close_timeout=1.0,
                     linger=0.01)
logger.addHandler(handler)
logger.info("first")
time.sleep(0.3)  # the worker is now inside a request that never gets an answer
with_mdr = timed(logger, 20_000)
print(json.dumps({"floor": floor, "mdr": with_mdr, "logged_at": time.time()}), flush=True)
"""


def test_hanging_endpoint_leaves_the_application_unaffected(sink: HECSink) -> None:
    sink.hang(30)
    result = run_child(HANG_CHILD, URL=sink.url, TOKEN=sink.token)
    exited_at = time.time()
    assert result.returncode == 0, result.stderr[-3000:]
    data = last_json(result.stdout)
    floor, mdr = data["floor"], data["mdr"]
    assert mdr[2] < 0.5  # no call waited for the hanging request
    assert mdr[0] < max(4 * floor[0], 50e-6)  # p50 stays in the NullHandler's range
    assert exited_at - data["logged_at"] < 1.0 + 1.5  # close deadline, plus interpreter exit
    assert "still being sent at close" in result.stderr
    assert sink.requests == [] or all(r.status in (0, 200) for r in sink.requests)


def test_flush_and_close_are_bounded_while_the_endpoint_hangs(
    sink: HECSink,
    attach: Callable[[logging.Handler, str], logging.Logger],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink.hang(20)
    handler = handler_for(sink, close_timeout=0.5)
    log = attach(handler, "hang.inprocess")
    log.info("never answered")
    start = time.monotonic()
    assert handler.flush(0.3) is False
    assert time.monotonic() - start < 1.5
    start = time.monotonic()
    handler.close()
    assert time.monotonic() - start < 1.5
    assert handler.stats.in_flight == 1
    assert "1 still being sent at close (outcome unknown)" in capsys.readouterr().err


@contextlib.contextmanager
def _everything_at_debug(front: logging.Handler) -> Iterator[None]:
    """Root and urllib3 at DEBUG with ``front`` on the root logger, restored afterwards."""
    root, urllib3_logger = logging.getLogger(), logging.getLogger("urllib3")
    saved = (root.level, urllib3_logger.level)
    root.setLevel(logging.DEBUG)
    urllib3_logger.setLevel(logging.DEBUG)
    root.addHandler(front)
    try:
        yield
    finally:
        root.removeHandler(front)
        root.setLevel(saved[0])
        urllib3_logger.setLevel(saved[1])


def _assert_requests_settle(sink: HECSink, handler: MDRHandler, logger_name: str) -> None:
    """Five application lines arrive, and no request follows: a loop would keep sending."""
    for i in range(5):
        logging.getLogger(logger_name).info("line %d", i)
    assert sink.wait_for_events(5, timeout=5)
    assert handler.flush(5)
    time.sleep(0.5)
    settled = len(sink.requests)
    time.sleep(0.8)
    assert len(sink.requests) == settled <= 2
    assert sorted(e["log_name"] for e in sink.events) == [logger_name] * 5


def test_root_logger_at_debug_has_no_feedback_loop(sink: HECSink) -> None:
    handler = handler_for(sink)
    try:
        with _everything_at_debug(handler):
            _assert_requests_settle(sink, handler, "app.loop")
    finally:
        handler.close()


def test_no_feedback_loop_behind_a_queue_listener(sink: HECSink) -> None:
    # Python 3.12's dictConfig can put any handler behind a QueueHandler: the worker's urllib3
    # lines then reach MDRHandler on the listener's thread, where only their mark tells them apart.
    handler = handler_for(sink)
    relay: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(relay, handler)
    listener.start()
    try:
        with _everything_at_debug(logging.handlers.QueueHandler(relay)):
            _assert_requests_settle(sink, handler, "app.relayed")
    finally:
        listener.stop()
        handler.close()


def test_records_logged_while_py_mdr_sends_are_not_sent(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = handler_for(sink)
    log = attach(handler, "internal.app")
    with internal.sending():
        log.info("from inside py-mdr's own I/O")
    log.info("from the application")
    assert handler.flush(5)
    assert [e["message"] for e in sink.events] == ["from the application"]


# ---------------------------------------------------------------- lifecycle


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_forked_childs_lines_arrive(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = handler_for(sink, linger=30.0)
    log = attach(handler, "fork.app")
    log.info("parent, before the fork")  # stays queued in the parent (long linger)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            log.info("child %d says hello", os.getpid())
            code = 0 if handler.flush(10) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert handler.flush(10)
    by_message = {e["message"]: e for e in sink.events}
    assert len(sink.events) == 2  # the child did not resend the parent's queued record
    assert by_message["parent, before the fork"]["actor"]["process"]["pid"] == os.getpid()
    assert by_message[f"child {pid} says hello"]["actor"]["process"]["pid"] == pid


AT_EXIT_CHILD = """
import logging, os, time
from py_mdr.handler import MDRHandler
handler = MDRHandler(host=os.environ["URL"], token=os.environ["TOKEN"], linger=30.0,
                     close_timeout=5.0)
logger = logging.getLogger("exit.app")
logger.addHandler(handler)
logger.warning("left in the queue at exit %d", 1)
logger.warning("left in the queue at exit %d", 2)
print(time.time(), flush=True)
"""


def test_queued_records_are_sent_at_interpreter_exit(sink: HECSink) -> None:
    result = run_child(AT_EXIT_CHILD, URL=sink.url, TOKEN=sink.token)
    exited_at = time.time()
    assert result.returncode == 0, result.stderr[-3000:]
    assert [e["message"] for e in sink.events] == [
        "left in the queue at exit 1",
        "left in the queue at exit 2",
    ]
    assert exited_at - float(result.stdout.split()[0]) < 4.0  # no linger wait at exit
    assert "py-mdr:" not in result.stderr  # nothing lost, nothing to report


DICTCONFIG_CHILD = """
import logging, logging.config, os
logging.config.dictConfig({
    "version": 1,
    "handlers": {
        "factory": {"()": "py_mdr.handler.MDRHandler", "host": os.environ["URL"],
                    "token": os.environ["TOKEN"], "level": "INFO",
                    "product": {"name": "dc-app", "vendor_name": "dc-vendor"},
                    "source_type": "dc", "linger": 0.02,
                    "retry": {"initial_backoff": 0.01, "max_backoff": 0.05, "deadline": 5}},
        "klass": {"class": "py_mdr.handler.MDRHandler", "host": os.environ["URL"],
                  "token": os.environ["TOKEN"], "level": "WARNING", "linger": 0.02},
    },
    "root": {"level": "DEBUG", "handlers": ["factory", "klass"]},
})
logging.getLogger("dc.app").debug("below both levels")
logging.getLogger("dc.app").info("info for the factory-built handler")
logging.getLogger("dc.app").warning("warning for both")
"""


def test_dictconfig_builds_the_handler(sink: HECSink) -> None:
    result = run_child(DICTCONFIG_CHILD, URL=sink.url, TOKEN=sink.token)
    assert result.returncode == 0, result.stderr[-3000:]
    by_type: dict[str, list[str]] = {}
    for envelope in sink.envelopes:
        by_type.setdefault(envelope["sourcetype"], []).append(envelope["event"]["message"])
    assert by_type == {
        "pymdr::dc": ["info for the factory-built handler", "warning for both"],
        "pymdr::dc.app": ["warning for both"],
    }
    products = {
        json.dumps(e["event"]["metadata"]["product"], sort_keys=True)
        for e in sink.envelopes
        if e["sourcetype"] == "pymdr::dc"
    }
    assert products == {'{"name": "dc-app", "vendor_name": "dc-vendor"}'}


# ---------------------------------------------------------------- never breaking the application


def test_the_token_appears_in_no_output(
    sink: HECSink,
    attach: Callable[[logging.Handler, str], logging.Logger],
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "Sup3r-S3cret-T0ken-For-Tests"
    diagnostics = io.StringIO()
    hec_logger = logging.getLogger("py_mdr.hec")
    listener = logging.StreamHandler(diagnostics)
    hec_logger.addHandler(listener)
    saved_level = hec_logger.level
    hec_logger.setLevel(logging.DEBUG)
    try:
        handler = MDRHandler(
            host=sink.url, token=secret, retry=FAST, linger=0.02, close_timeout=1.0
        )  # the receiver expects another token: 403
        log = attach(handler, "secret.app")
        log.info("refused")
        assert handler.flush(5)
        handler.close()
        with pytest.raises(ConfigError) as missing_host:
            MDRHandler(token=secret)
    finally:
        hec_logger.removeHandler(listener)
        hec_logger.setLevel(saved_level)
    stats = handler.stats
    assert stats.dropped == {"auth": 1}
    captured = capsys.readouterr()
    texts = [
        captured.err,
        captured.out,
        diagnostics.getvalue(),
        repr(handler),
        str(stats),
        str(missing_host.value),
        repr(handler.stats.transport),
    ]
    assert "1 record(s) not delivered: 1 auth (MDR refused the token)" in captured.err
    assert "403" in diagnostics.getvalue() or "auth" in diagnostics.getvalue().lower()
    assert all(secret not in text for text in texts)


class Broken(MDRHandler):
    def map_log_record(self, record: logging.LogRecord) -> EventLogActivity:
        if record.getMessage().startswith("bad"):
            raise RuntimeError("the override failed")
        return super().map_log_record(record)


def test_a_failing_override_is_counted_shown_once_and_the_record_still_arrives(
    sink: HECSink,
    attach: Callable[[logging.Handler, str], logging.Logger],
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = Broken(host=sink.url, token=sink.token, linger=0.02, retry=FAST)
    log = attach(handler, "broken.app")
    for message in ("good 1", "bad 2", "bad 3"):
        log.info(message)  # never raises
    assert handler.flush(5)
    events = {e["message"]: e for e in sink.events}
    assert sorted(events) == ["bad 2", "bad 3", "good 1"]
    assert events["bad 2"]["unmapped"]["mapping_error"] == "RuntimeError: the override failed"
    assert "mapping_error" not in events["good 1"].get("unmapped", {})
    assert handler.stats.mapping_errors == 2 and handler.stats.dropped == {}
    err = capsys.readouterr().err
    assert err.count("--- Logging error ---") == 1 and "the override failed" in err


class Unprintable:
    def __str__(self) -> str:
        raise ValueError("no str")

    def __repr__(self) -> str:
        raise ValueError("no repr")


def test_hostile_arguments_never_raise_and_still_arrive(
    sink: HECSink,
    attach: Callable[[logging.Handler, str], logging.Logger],
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = handler_for(sink)
    log = attach(handler, "hostile.app")
    log.info("value %s", Unprintable())
    log.info("count %d", "not a number")
    log.info("an extra that cannot print", extra={"thing": Unprintable()})
    assert handler.flush(5)
    messages = sorted(e["message"] for e in sink.events)
    assert len(messages) == 3
    assert messages[0].startswith("an extra") and "count %d" in messages[1]
    assert "value %s" in messages[2]
    assert handler.stats.dropped == {} and handler.stats.mapping_errors == 0
    assert "Logging error" not in capsys.readouterr().err


def test_an_error_inside_emit_goes_to_handle_error_and_is_counted(
    sink: HECSink,
    attach: Callable[[logging.Handler, str], logging.Logger],
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = handler_for(sink)
    log = attach(handler, "emit.app")

    def broken_put(item: object, size: int) -> bool:
        raise RuntimeError("queue exploded")

    def broken_append(item: object, size: int) -> None:
        raise RuntimeError("queue exploded")

    handler._put = broken_put
    handler._append = broken_append  # the usual record's way into the queue
    log.info("lost")  # must not raise
    log.info("also lost", exc_info=(ValueError, ValueError("x"), None))  # the other way
    assert handler.stats.dropped == {"emit_error": 2}
    assert "queue exploded" in capsys.readouterr().err


def test_filters_and_levels_apply(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = handler_for(sink, level=logging.INFO)
    handler.addFilter(lambda record: "secret" not in record.getMessage())
    log = attach(handler, "filter.app")
    log.debug("too low")
    log.info("a secret line")
    log.info("kept")
    assert handler.flush(5)
    assert [e["message"] for e in sink.events] == ["kept"]


def test_stats_count_what_happened(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = handler_for(sink, batch_size=4)
    log = attach(handler, "stats.app")
    for i in range(10):
        log.info("n=%d", i)
    assert handler.flush(5)
    stats = handler.stats
    assert (stats.queued, stats.sent, stats.dropped, stats.queue_depth) == (10, 10, {}, 0)
    assert 1 <= stats.queue_peak <= 10 and stats.in_flight == 0
    assert stats.transport.events_sent == 10 and stats.transport.requests >= 3


def test_acknowledged_delivery_waits_for_acks_at_close(
    attach: Callable[[logging.Handler, str], logging.Logger],
) -> None:
    with HECSink(token="ack-token", use_ack=True) as acking:
        handler = MDRHandler(
            host=acking.url,
            token="ack-token",
            use_ack=True,
            linger=0.02,
            retry=FAST,
            close_timeout=5.0,
        )
        log = attach(handler, "ack.app")
        for i in range(3):
            log.info("acked %d", i)
        handler.close()
        assert len(acking.events) == 3
        assert handler.stats.transport.acks_pending == 0
        assert any(r.path == "/services/collector/ack" for r in acking.requests)


def test_the_examples_run_against_their_own_receiver() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MDR_")}
    clean["PYTHONPATH"] = str(ROOT)
    names = ["handler_basic", "handler_dictconfig", "handler_subclass", "handler_adapter"]
    children = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / f"{name}.py")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean,
            cwd=ROOT,
        )
        for name in names
    }
    outputs = {name: child.communicate(timeout=50) for name, child in children.items()}
    for name, child in children.items():
        out, err = outputs[name]
        assert child.returncode == 0, f"{name}: {err[-2000:]}"
        assert "the receiver got" in out and "Traceback" not in err, name
        assert "got 0 event" not in out, name


class ExcInfoKeeper(logging.Handler):
    """A later handler that needs ``exc_info`` (as Sentry's or OpenTelemetry's do)."""

    def __init__(self) -> None:
        super().__init__()
        self.exc_info: list[Any] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.exc_info.append(record.exc_info)


def test_handlers_after_ours_still_see_the_exception(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    handler = handler_for(sink)
    later = ExcInfoKeeper()
    log = attach(handler, "excinfo.app")
    log.addHandler(later)
    try:
        raise ValueError("kept for the next handler")
    except ValueError as error:
        raised = error
        log.exception("failed")
    assert handler.flush(5)
    assert len(later.exc_info) == 1 and later.exc_info[0] is not None
    assert later.exc_info[0][1] is raised
    exception = sink.events[0]["unmapped"]["exception"]
    assert exception["type"] == "ValueError" and "kept for the next handler" in exception["message"]


def test_closing_counts_none_of_its_own_http_stack_lines_as_lost(
    sink: HECSink,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = root.level
    handler = handler_for(sink)
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        logging.getLogger("app.close").info("sent before close")
        assert handler.flush(5)

        def failing_close() -> None:
            raise OSError("pool already gone")  # the transport logs this at DEBUG

        handler._transport._session.close = failing_close  # type: ignore[method-assign]
        handler.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)
    assert handler.stats.dropped == {}
    assert "could not deliver" not in capsys.readouterr().err
    assert [e["message"] for e in sink.events] == ["sent before close"]


# --- answers that are not HEC's, and receivers that trickle ---------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (b"<html><body><form>Sign in</form></body></html>", "text/html", "proxy"),
        (b'{"text":"Invalid data format","code":6}', "application/json", "like HEC"),
    ],
    ids=["html-login-page", "code-6"],
)
def test_a_200_that_is_not_hec_success_is_counted_as_dropped_not_sent(
    sink: HECSink,
    attach: Callable[[logging.Handler, str], logging.Logger],
    capfd: pytest.CaptureFixture[str],
    body: bytes,
    content_type: str,
    words: str,
) -> None:
    sink.answer_next(1, status=200, body=body, content_type=content_type)
    handler = handler_for(sink)
    log = attach(handler, "proxied.app")
    log.warning("behind a proxy")
    assert handler.flush(5)
    stats = handler.stats
    assert stats.sent == 0 and stats.dropped == {"not_hec": 1}
    assert sink.events == []
    handler.close()
    err = capfd.readouterr().err
    assert words in err and "not_hec" in err


def test_flush_and_close_are_bounded_while_the_receiver_trickles_its_answer(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    sink.trickle(0.5)  # 200 success, one byte every half second: minutes for the whole answer
    handler = handler_for(sink, timeout=2.0, close_timeout=3.0)
    log = attach(handler, "trickled.app")
    log.warning("slowly answered")
    started = time.monotonic()
    assert handler.flush(10)  # the send gave up at its 2 s deadline
    assert time.monotonic() - started < 3.0
    assert handler.stats.dropped == {"deadline": 1}
    log.warning("another")
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 3.0 + 1.0
    sink.trickle(0)


@pytest.mark.parametrize("legacy", [{}, {"dataset_name": "shop", "namespace": "prod"}])
def test_the_fast_paths_envelope_is_the_one_encode_envelope_writes(legacy: dict[str, str]) -> None:
    from py_mdr.hec.envelope import encode_envelope
    from py_mdr.logmap import compact

    handler = MDRHandler(
        host=closed_port_url(),
        token="t",
        index="main",
        dataset_name=legacy.get("dataset_name"),
        namespace=legacy.get("namespace"),
    )
    source = handler._legacy_source
    assert (source is None) == (not legacy)
    try:
        record = logging.getLogger("shop.orders").makeRecord(
            "shop.orders", logging.INFO, __file__, 7, "paid %s", ("ok",), None, func="pay"
        )
        record.created = 1_700_000_000.0499  # its milliseconds: 049, not 050
        envelope = handler._encode(compact(record))
        assert envelope is not None
        parsed = json.loads(envelope)
        expected = encode_envelope(
            json.dumps(parsed["event"], separators=(",", ":")).encode(),
            time=1_700_000_000.049,
            host=parsed["host"],
            source=source or "shop.orders",
            sourcetype="pymdr::shop.orders",
            index="main",
        )
        assert json.loads(expected) == parsed
        assert envelope.startswith(b'{"time":1700000000.049,"host":')
    finally:
        handler.close()


@pytest.mark.parametrize("character", ["x", "\u00e9", "\u0001"], ids=["ascii", "utf8", "escaped"])
def test_a_six_megabyte_line_arrives_cut_and_says_how_long_it_was(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger], character: str
) -> None:
    handler = handler_for(sink)
    log = attach(handler, "huge")
    text = character * 6_000_000
    log.warning(text)
    assert handler.flush(30)
    assert handler.stats.dropped == {}
    (event,) = sink.events
    assert event["message"] == text[:65_534] + "\u2026"
    assert event["unmapped"]["message"] == text[:699_999] + "\u2026"
    assert event["unmapped"]["message_length"] == 6_000_000


def test_close_cuts_a_long_backoff_short_and_sends_what_is_queued(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    """MDR answered "busy, come back in 30 s" and is fine again: closing does not wait 30 s,
    nor drop the records: it tries again at once."""
    sink.fail_next(1, 503, 9, retry_after="30")
    slow = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=60.0)
    handler = handler_for(sink, close_timeout=3.0, retry=slow)
    log = attach(handler, "hurried")
    for number in range(50):
        log.warning("queued %d", number)
    assert sink.wait_for_requests(1, timeout=10)  # the 503: the worker now waits 30 s
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 3.0
    assert sorted(e["message"] for e in sink.events) == sorted(f"queued {n}" for n in range(50))
    assert handler.stats.dropped == {} and handler.stats.sent == 50
