"""Processes as users run them: killed, forked, pooled, sharing a spool, through outages.

Every scenario runs in child interpreters and talks real HTTP to the receiver on loopback.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from processes import (
    child_env,
    closed_port_url,
    free_port,
    last_json,
    run_child,
    run_script,
    start_child,
)

from py_mdr.config import ConfigError
from py_mdr.handler import MDRHandler
from py_mdr.sink import HECSink

pytestmark = pytest.mark.timeout(120)

TOKEN = "test-token"


def numbers_by_tag(sink: HECSink) -> dict[str, list[int]]:
    """Messages of the form ``<tag> <n>``, grouped by tag, in arrival order."""
    found: dict[str, list[int]] = {}
    for event in sink.events:
        tag, _, number = event["message"].rpartition(" ")
        found.setdefault(tag, []).append(int(number))
    return found


def assert_exactly_once(sink: HECSink, expected: int) -> None:
    uids = Counter(event["metadata"]["uid"] for event in sink.events)
    assert len(uids) == expected, f"{len(uids)} distinct events, expected {expected}"
    assert max(uids.values()) == 1, "some events arrived twice"


def resume(sink: HECSink, spool: Path, expected: int, timeout: float = 30) -> MDRHandler:
    """A new process's handler on the same spool: it adopts and sends what the dead one left."""
    handler = MDRHandler(host=sink.url, token=TOKEN, spool_dir=str(spool), linger=0.05)
    deadline = time.monotonic() + timeout
    while sink.event_count < expected and time.monotonic() < deadline:
        handler.flush(1.0)
    return handler


# ---------------------------------------------------------------- killed with a spool

KILLED_HANDLER = """
import logging, os, signal, sys, time
from py_mdr.handler import MDRHandler
handler = MDRHandler(host=sys.argv[1], token="test-token", spool_dir=sys.argv[2], timeout=2,
                     retry={"initial_backoff": 0.05, "max_backoff": 0.2})
log = logging.getLogger("victim")
log.addHandler(handler)
log.setLevel(logging.INFO)
log.propagate = False
for i in range(1000):
    log.info("%s %d", sys.argv[3], i)
time.sleep(3)
os.kill(os.getpid(), signal.SIGKILL)
"""

KILLED_EXPORTER = """
import logging, os, signal, sys, time
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from py_mdr_otel import MDRExporter
provider = LoggerProvider()
exporter = MDRExporter(host=sys.argv[1], token="test-token", spool_dir=sys.argv[2], timeout=2)
provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
log = logging.getLogger("victim")
log.addHandler(LoggingHandler(logger_provider=provider))
log.setLevel(logging.INFO)
log.propagate = False
for i in range(1000):
    log.info("%s %d", sys.argv[3], i)
time.sleep(3)
os.kill(os.getpid(), signal.SIGKILL)
"""


def kill_children(script: str, spool: Path, tags: list[str]) -> None:
    """Run one child per tag at once, MDR unreachable; each kills itself with SIGKILL."""
    url = closed_port_url()
    children = [
        start_child(f"import sys; sys.argv[1:] = {[url, str(spool), tag]!r}\n" + script)
        for tag in tags
    ]
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL, err[-2000:]


@pytest.mark.parametrize("script", [KILLED_HANDLER, KILLED_EXPORTER], ids=["handler", "otel"])
def test_a_process_killed_during_an_outage_loses_nothing_that_reached_the_spool(
    sink: HECSink, tmp_path: Path, script: str
) -> None:
    kill_children(script, tmp_path, ["killed"])
    handler = resume(sink, tmp_path, 1000)
    try:
        assert_exactly_once(sink, 1000)
        assert numbers_by_tag(sink) == {"killed": list(range(1000))}  # in order, too
        assert handler.stats.spool_adopted == 1000
    finally:
        handler.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left behind


def test_two_processes_sharing_a_spool_each_record_is_sent_once(
    sink: HECSink, tmp_path: Path
) -> None:
    kill_children(KILLED_HANDLER, tmp_path, ["first", "second"])
    # two new processes start at once on the same directory: each file is taken by one
    code = f"""
    import time
    from py_mdr.handler import MDRHandler
    handler = MDRHandler(host={sink.url!r}, token="test-token", spool_dir={str(tmp_path)!r})
    end = time.monotonic() + 20
    while time.monotonic() < end and not handler.flush(1):
        pass
    handler.close()
    """
    resumers = [start_child(code), start_child(code)]
    for resumer in resumers:
        _, err = resumer.communicate(timeout=60)
        assert resumer.returncode == 0, err[-2000:]
    assert_exactly_once(sink, 2000)
    found = numbers_by_tag(sink)
    assert found == {"first": list(range(1000)), "second": list(range(1000))}


def test_a_damaged_spool_file_delivers_every_intact_record(sink: HECSink, tmp_path: Path) -> None:
    kill_children(KILLED_HANDLER, tmp_path, ["damaged"])
    (segment,) = [p for p in tmp_path.iterdir() if p.name.endswith(".seg")]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flipped bits in one record in the middle
    segment.write_bytes(bytes(data[:-10]))  # and the last record cut short
    handler = resume(sink, tmp_path, 998, timeout=10)
    try:
        numbers = numbers_by_tag(sink)["damaged"]
        assert len(numbers) == 998 and numbers == sorted(numbers)
        assert len(set(numbers)) == 998
        assert handler.stats.spool_damaged >= 2
    finally:
        handler.close()


SMALL_SPOOL = """
import json, logging, resource, sys
from py_mdr.handler import MDRHandler
handler = MDRHandler(host=sys.argv[1], token="test-token", spool_dir=sys.argv[2],
                     max_spool_bytes=256 * 1024, close_timeout=0.5)
log = logging.getLogger("small")
log.addHandler(handler)
log.propagate = False
log.setLevel(logging.INFO)
rss = []
for round in range(4):
    for i in range(5000):
        log.info("spooled %d", round * 5000 + i)
    handler.flush(2)
    rss.append(int(open("/proc/self/statm").read().split()[1]) * 4)
stats = handler.stats
print(json.dumps({"rss_kb": rss, "dropped": stats.dropped, "spooled": stats.spooled}), flush=True)
"""


def test_a_small_spool_in_a_long_outage_drops_the_oldest_and_says_so(
    sink: HECSink, tmp_path: Path
) -> None:
    url = closed_port_url()
    result = run_child(f"import sys; sys.argv[1:] = {[url, str(tmp_path)]!r}\n" + SMALL_SPOOL)
    assert result.returncode == 0, result.stderr[-3000:]
    report = last_json(result.stdout)
    rss = report["rss_kb"]
    assert rss[-1] - rss[0] < 8 * 1024, rss  # memory flat while 15,000 more records came
    dropped = report["dropped"]["spool_full"]
    assert dropped > 10_000 and report["spooled"] == 20_000
    assert "spool was full" in result.stderr
    handler = resume(sink, tmp_path, 20_000 - dropped, timeout=20)
    try:
        numbers = numbers_by_tag(sink)["spooled"]
        assert len(numbers) == 20_000 - dropped
        # the newest survived, in order; so did the segment whose batch was being sent
        assert numbers == sorted(numbers) and numbers[-1] == 19_999
        gaps = [i for i in range(1, len(numbers)) if numbers[i] != numbers[i - 1] + 1]
        assert len(gaps) <= 1, gaps  # at most two runs: the one being sent, and the newest
    finally:
        handler.close()


# ---------------------------------------------------------------- process lifecycles

MULTIPROCESSING = """
import logging, multiprocessing, sys
from py_mdr.handler import MDRHandler

URL, METHOD = sys.argv[1], sys.argv[2]
log = logging.getLogger("mp")


def configure():
    if not log.handlers:  # spawned and forkserver children start without the parent's set-up
        log.addHandler(MDRHandler(host=URL, token="test-token"))
        log.setLevel(logging.INFO)
        log.propagate = False


def work(tag):
    configure()
    for i in range(100):
        log.info("%s %d", tag, i)
    return tag


if __name__ == "__main__":
    configure()
    context = multiprocessing.get_context(METHOD)
    children = [context.Process(target=work, args=(f"{METHOD}-{n}",)) for n in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0, child.exitcode
    pool = context.Pool(2)
    assert pool.map(work, [f"{METHOD}-pool-{n}" for n in range(4)]) == [
        f"{METHOD}-pool-{n}" for n in range(4)
    ]
    pool.close()
    pool.join()
    print("done", flush=True)
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_children_and_pool_workers_deliver_every_record(
    sink: HECSink, method: str, tmp_path: Path
) -> None:
    script = tmp_path / "app.py"
    script.write_text(MULTIPROCESSING)
    result = run_script(script, sink.url, method, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    sink.wait_for_events(700, timeout=10)
    found = numbers_by_tag(sink)
    expected = [f"{method}-{n}" for n in range(3)] + [f"{method}-pool-{n}" for n in range(4)]
    assert sorted(found) == sorted(expected)
    assert all(found[tag] == list(range(100)) for tag in expected), {
        tag: len(numbers) for tag, numbers in found.items()
    }
    assert_exactly_once(sink, 700)


POOL_BLOCK = """
import logging, multiprocessing, os, sys, time
from py_mdr import drain_on_sigterm
from py_mdr.handler import MDRHandler

log = logging.getLogger("pool")
log.addHandler(MDRHandler(host=sys.argv[1], token="test-token", linger=5.0))
log.setLevel(logging.INFO)
log.propagate = False


def work(n):
    log.info("pool-%d-%d %d", os.getpid(), n, 0)
    return n


if __name__ == "__main__":
    drain_on_sigterm()  # inherited by the forked workers
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map(work, range(6)) == list(range(6))
    # leaving the block called terminate(): SIGTERM to each worker
    print("done", flush=True)
"""


def test_workers_of_a_with_pool_block_deliver_with_the_opt_in_helper(sink: HECSink) -> None:
    result = run_child(f"import sys; sys.argv[1:] = {[sink.url]!r}\n" + POOL_BLOCK, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sink.wait_for_events(6, timeout=10)
    assert sorted(int(e["message"].split("-")[2].split()[0]) for e in sink.events) == list(range(6))


def test_without_the_helper_a_terminated_pool_worker_loses_what_it_held(sink: HECSink) -> None:
    script = POOL_BLOCK.replace("    drain_on_sigterm()", "    pass")
    result = run_child(f"import sys; sys.argv[1:] = {[sink.url]!r}\n" + script, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    time.sleep(1.0)
    assert sink.event_count == 0  # the 5 s linger never ended: SIGTERM's default action killed


# ---------------------------------------------------------------- telling the user

WRONG_TOKEN_HANDLER = """
import logging, sys, time
from py_mdr.handler import MDRHandler
logging.getLogger().addHandler(MDRHandler(host=sys.argv[1], token="wr0ng-t0ken-s3cret"))
logging.getLogger().setLevel(logging.INFO)
print("logged", time.time(), flush=True)
logging.warning("the first record")
time.sleep(6)
print("exiting", time.time(), flush=True)
"""

WRONG_TOKEN_OTEL = """
import logging, sys, time
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from py_mdr_otel import MDRExporter
provider = LoggerProvider()
provider.add_log_record_processor(
    BatchLogRecordProcessor(MDRExporter(host=sys.argv[1], token="wr0ng-t0ken-s3cret")))
logging.getLogger().addHandler(LoggingHandler(logger_provider=provider))
logging.getLogger().setLevel(logging.INFO)
print("logged", time.time(), flush=True)
logging.warning("the first record")
time.sleep(6)
print("exiting", time.time(), flush=True)
"""


@pytest.mark.parametrize("script", [WRONG_TOKEN_HANDLER, WRONG_TOKEN_OTEL], ids=["handler", "otel"])
def test_a_wrong_token_is_told_on_stderr_while_the_application_runs(
    sink: HECSink, script: str
) -> None:
    child = start_child(f"import sys; sys.argv[1:] = {[sink.url]!r}\n" + script)
    arrivals: list[tuple[float, str]] = []

    def read_stderr() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            arrivals.append((time.time(), line))

    reader = threading.Thread(target=read_stderr)
    reader.start()
    assert child.stdout is not None
    out = child.stdout.read()  # not communicate(): it would read stderr too, racing the reader
    child.wait(timeout=30)
    reader.join(5)
    marks = dict(line.split(" ", 1) for line in out.splitlines())
    logged, exiting = float(marks["logged"]), float(marks["exiting"])
    told = [(at, line) for at, line in arrivals if "token" in line and "py-mdr" in line]
    assert told, "".join(line for _, line in arrivals)
    first_at, first_line = told[0]
    assert first_at - logged < 5.0 and first_at < exiting  # while the application still ran
    assert "MDR_TOKEN" in first_line  # says what to fix
    assert all("wr0ng-t0ken-s3cret" not in line for _, line in arrivals)


BIG_EXTRAS = """
import json, logging, sys
from py_mdr.handler import MDRHandler

def rss_kb():
    return int(open("/proc/self/statm").read().split()[1]) * 4

handler = MDRHandler(host=sys.argv[1], token="test-token", max_queue_bytes=4 * 1024 * 1024,
                     close_timeout=0.5)
log = logging.getLogger("big")
log.addHandler(handler)
log.propagate = False
log.setLevel(logging.INFO)
log.info("warm-up")
before = rss_kb()
peak = 0
for i in range(5000):
    log.info("big %d", i, extra={"payload": "x" * 100_000 + str(i)})
    if i % 100 == 0:
        peak = max(peak, rss_kb())
print(json.dumps({"growth_kb": max(peak, rss_kb()) - before,
                  "dropped": handler.stats.dropped}), flush=True)
"""


def test_records_with_large_extra_values_stay_within_the_byte_bound() -> None:
    result = run_child(f"import sys; sys.argv[1:] = {[closed_port_url()]!r}\n" + BIG_EXTRAS)
    assert result.returncode == 0, result.stderr[-3000:]
    report = last_json(result.stdout)
    assert report["growth_kb"] <= 2 * 4 * 1024 + 8 * 1024, report
    assert report["dropped"]["queue_full"] > 4000  # the bound held by dropping, and counting


@pytest.fixture
def late_sink() -> Iterator[tuple[str, threading.Timer]]:
    """A receiver that comes up on a fixed port only after five seconds (MDR unreachable)."""
    port = free_port()
    started: list[HECSink] = []
    timer = threading.Timer(5.0, lambda: started.append(HECSink(port=port).start()))
    timer.start()
    yield f"http://127.0.0.1:{port}", timer
    timer.cancel()
    for receiver in started:
        receiver.stop()


# ---------------------------------------------------------------- servers stopped by SIGTERM

WSGI_APP = """
import logging
from py_mdr.handler import MDRHandler

log = logging.getLogger("web")
log.addHandler(MDRHandler())  # MDR_HOST and MDR_TOKEN from the environment
log.setLevel(logging.INFO)
log.propagate = False


def app(environ, start_response):
    log.info("request %s", environ["PATH_INFO"].strip("/"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""

ASGI_APP = """
import logging
from py_mdr import drain_on_sigterm
from py_mdr.handler import MDRHandler

log = logging.getLogger("web")
log.addHandler(MDRHandler())  # MDR_HOST and MDR_TOKEN from the environment
log.setLevel(logging.INFO)
log.propagate = False
drain_on_sigterm()  # uvicorn ends its workers with SIGTERM's default action after shutdown


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    log.info("request %s", scope["path"].strip("/"))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""


def serve_and_stop(sink: HECSink, tmp_path: Path, command: list[str], app: str) -> str:
    """Start the server (2 workers), answer 30 requests, SIGTERM it at once; its stderr."""
    (tmp_path / "web_app.py").write_text(app)
    port = free_port()
    words = {"PORT": str(port)}
    server = subprocess.Popen(
        [part.format(**words) for part in command],
        cwd=tmp_path,
        env=child_env(MDR_HOST=sink.url, MDR_TOKEN=TOKEN, PYTHONPATH=str(tmp_path)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{base}/ready", timeout=1).read()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "no server"
                time.sleep(0.1)
        for n in range(30):
            urllib.request.urlopen(f"{base}/r{n}", timeout=5).read()
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, err[-3000:]
    return err


def served(sink: HECSink) -> list[str]:
    sink.wait_for_events(31, timeout=5)
    return sorted(e["message"] for e in sink.events if e["message"] != "request ready")


def test_gunicorn_workers_stopped_by_sigterm_deliver_every_request(
    sink: HECSink, tmp_path: Path
) -> None:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    command = [gunicorn, "--workers", "2", "--bind", "127.0.0.1:{PORT}", "web_app:app"]
    serve_and_stop(sink, tmp_path, command, WSGI_APP)
    assert served(sink) == sorted(f"request r{n}" for n in range(30))


def test_uvicorn_workers_stopped_by_sigterm_deliver_every_request_with_the_helper(
    sink: HECSink, tmp_path: Path
) -> None:
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    command = [uvicorn, "web_app:app", "--workers", "2", "--host", "127.0.0.1"]
    command += ["--port", "{PORT}", "--lifespan", "off"]
    serve_and_stop(sink, tmp_path, command, ASGI_APP)
    assert served(sink) == sorted(f"request r{n}" for n in range(30))


# ---------------------------------------------------------------- nothing lost silently


def test_an_unusable_spool_directory_fails_the_constructor_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="not-a-directory"):
        MDRHandler(host="127.0.0.1:8088", token=TOKEN, spool_dir=str(blocker / "spool"))


DISK_FULL = """
import json, logging, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))  # the disk fills at 64 KiB
from py_mdr.handler import MDRHandler
handler = MDRHandler(host=sys.argv[1], token="test-token", spool_dir=sys.argv[2], linger=0.05)
log = logging.getLogger("full")
log.addHandler(handler)
log.propagate = False
log.setLevel(logging.INFO)
for i in range(2000):
    log.info("full %d", i)
flushed = handler.flush(30)
print(json.dumps({"flushed": flushed, "sent": handler.stats.sent}), flush=True)
"""


def test_a_full_disk_falls_back_to_memory_and_says_so_once(sink: HECSink, tmp_path: Path) -> None:
    result = run_child(f"import sys; sys.argv[1:] = {[sink.url, str(tmp_path)]!r}\n" + DISK_FULL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_json(result.stdout) == {"flushed": True, "sent": 2000}
    assert numbers_by_tag(sink) == {"full": list(range(2000))}  # every one, in order
    assert result.stderr.count("cannot be written") == 1, result.stderr


AFTER_CLOSE = """
import atexit, json, logging, sys
log = logging.getLogger("late")
log.propagate = False
log.setLevel(logging.INFO)
# registered before py-mdr is imported, so it runs after py-mdr's own exit hook
atexit.register(lambda: [log.info("after exit %d", i) for i in range(3)])
from py_mdr.handler import MDRHandler
handler = MDRHandler(host=sys.argv[1], token="test-token")
log.addHandler(handler)
log.info("before close")
handler.close()
log.info("after close")
print(json.dumps(handler.stats.dropped), flush=True)
"""


def test_records_logged_after_close_are_counted_and_told(sink: HECSink) -> None:
    result = run_child(f"import sys; sys.argv[1:] = {[sink.url]!r}\n" + AFTER_CLOSE)
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_json(result.stdout) == {"closed": 1}
    assert [e["message"] for e in sink.events] == ["before close"]
    told = [line for line in result.stderr.splitlines() if line.startswith("py-mdr:")]
    assert any("logged after close" in line for line in told), result.stderr
    assert any("3 more record(s) logged after close were not sent" in line for line in told), told


SIGNALS = """
import json, logging, signal, sys, time
from py_mdr.handler import MDRHandler
handler = MDRHandler(host=sys.argv[1], token="test-token", max_queue_records=200,
                     close_timeout=0.5, timeout=0.5, fold=sys.argv[2] == "fold")
log = logging.getLogger("signals")
log.addHandler(handler)
log.propagate = False
log.setLevel(logging.INFO)
calls = {"main": 0, "signal": 0}

def on_alarm(signum, frame):
    calls["signal"] += 1
    log.info("from a signal handler")

signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
end = time.monotonic() + 2
while time.monotonic() < end:
    log.info("from the main loop")
    calls["main"] += 1
signal.setitimer(signal.ITIMER_REAL, 0)
handler.close()
stats = handler.stats
print(json.dumps({"calls": calls, "sent": stats.sent, "dropped": stats.dropped,
                  "queued": stats.queued, "depth": stats.queue_depth,
                  "in_flight": stats.in_flight}), flush=True)
"""


def test_counts_add_up_exactly_with_a_signal_handler_logging_during_overflow() -> None:
    result = run_child(f"import sys; sys.argv[1:] = {[closed_port_url(), 'no']!r}\n" + SIGNALS)
    assert result.returncode == 0, result.stderr[-3000:]
    report = last_json(result.stdout)
    calls = report["calls"]
    assert calls["signal"] > 100 and report["dropped"]["queue_full"] > 0  # it did overflow
    logged = calls["main"] + calls["signal"]
    assert report["depth"] == 0 and report["in_flight"] == 0
    assert report["sent"] + sum(report["dropped"].values()) == logged, report


def test_events_unconfirmed_at_close_are_told() -> None:
    with HECSink(use_ack=True) as sink:
        sink.hold_acks(True)
        code = f"""
        import logging
        from py_mdr.handler import MDRHandler
        handler = MDRHandler(host={sink.url!r}, token="test-token", use_ack=True,
                             close_timeout=1.0, linger=0.05)
        log = logging.getLogger("acked")
        log.addHandler(handler)
        log.propagate = False
        for number in range(10):  # one body, one ackId: ten events unconfirmed
            log.warning("never acknowledged %d", number)
        handler.close()
        """
        result = run_child(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "10 accepted by MDR but not acknowledged before close" in result.stderr


def test_the_spool_directory_can_come_from_the_environment(
    sink: HECSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attach: Callable[[logging.Handler, str], logging.Logger],
) -> None:
    monkeypatch.setenv("MDR_SPOOL_DIR", str(tmp_path / "from-env"))
    handler = MDRHandler(host=sink.url, token=TOKEN, linger=0.01)
    attach(handler, "spool.env").warning("through the disk")
    assert handler.flush(5)
    assert handler.stats.spooled == 1 and handler.stats.sent == 1
    assert (tmp_path / "from-env").is_dir()
    assert [e["message"] for e in sink.events] == ["through the disk"]


def test_a_signal_handler_logging_while_repeats_are_folded_never_deadlocks() -> None:
    result = run_child(
        f"import sys; sys.argv[1:] = {[closed_port_url(), 'fold']!r}\n" + SIGNALS, timeout=30
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = last_json(result.stdout)
    assert report["calls"]["signal"] > 100 and report["depth"] == 0
    assert "Logging error" not in result.stderr


def test_close_with_a_spool_ends_as_soon_as_the_spool_is_empty(
    sink: HECSink, tmp_path: Path
) -> None:
    for round_ in range(5):  # the wait it guards against came from a race: try it a few times
        handler = MDRHandler(host=sink.url, token=TOKEN, spool_dir=str(tmp_path), linger=0.01)
        log = logging.getLogger(f"spool.close.{round_}")
        log.addHandler(handler)
        log.propagate = False
        log.warning("one line")
        assert handler.flush(5)
        started = time.monotonic()
        handler.close()
        log.removeHandler(handler)
        assert time.monotonic() - started < 0.5
    assert sink.event_count == 5


# ---------------------------------------------------------------- signals stay the main thread's


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="no per-thread signal masks")
def test_py_mdr_threads_leave_signals_to_the_main_thread(
    sink: HECSink, attach: Callable[[logging.Handler, str], logging.Logger]
) -> None:
    # A SIGTERM the kernel hands to a py-mdr thread would not wake a main thread blocked in a
    # lock (a Pool worker waiting for its next task): the application's handler would never run.
    seen: list[set[int]] = []

    def mask_of_this_thread(event: dict[str, object]) -> dict[str, object]:
        seen.append(set(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
        return event

    handler = MDRHandler(host=sink.url, token="test-token", processors=[mask_of_this_thread])
    attach(handler, "tests.signals").warning("from the main thread")
    assert handler.flush(5)
    assert seen, "the processor ran on the worker"
    worker_mask = seen[0]
    assert {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1} <= worker_mask
    assert signal.SIGSEGV not in worker_mask  # a thread's own fault stays its own
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # main: untouched
    assert sink.event_count == 1
