"""Burst benchmark: a tight logging loop through six senders; endpoint fine, busy, or late.

Run: ``.venv/bin/python bench/burst.py [--rounds 3] [--records 20000]`` (also in ``make bench``).
Every sender runs in its own child process (bench/burst_child.py, with the setups of
bench/senders.py); the receivers live in this (parent) process, on loopback. One thread in the
child logs ``--records`` lines as fast as it can (``logger.info`` with 2 %-args and 3 ``extra``
fields), timing each call; then the sender is flushed (bounded by ``--flush-timeout``) and
closed, and the parent counts what its receiver got.

Senders: ``null`` (stdlib ``NullHandler``, the floor), ``mdr`` (``MDRHandler``, defaults),
``mdr+spool`` (the same with a fresh ``spool_dir``), ``otel+mdr`` (OTel SDK ``LoggerProvider``
+ default ``BatchLogRecordProcessor(MDRExporter)`` + opentelemetry-instrumentation-logging's
``LoggingHandler``), ``otel+mdr+spool`` (``MDRExporter(spool_dir=...)``) and ``otel+otlp``
(the same pipeline with the OTLP/HTTP exporter, gzip, to bench/otlp_sink.py).

Scenarios: ``fine`` (the receiver answers normally), ``busy`` (its first three event requests
get 503), ``down5s`` (nothing listens on the port until 5 s after the child's first log call,
then a receiver starts on that port).

Each round runs every sender x scenario once, in a shuffled order (seeded; the seed is printed);
the table gives the median and the range (min-max) over the rounds, and every ratio is taken
within a round, then summarized the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import random
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otlp_sink import OTLPSink

from py_mdr.sink import HECSink

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TOKEN = "bench-token"
DOWN_SECONDS = 5.0
SCENARIOS = ("fine", "busy", "down5s")
BUSY_FAILURES = 3  # event requests answered 503 in the busy scenario


@dataclass(frozen=True)
class Sender:
    name: str
    setup: str  # a key of senders.SENDERS
    receiver: str | None  # "hec", "otlp", or None (nothing is sent)
    spool: bool = False


SENDERS = (
    Sender("null", "null", None),
    Sender("mdr", "mdr_default", "hec"),
    Sender("mdr+spool", "mdr_spool", "hec", spool=True),
    Sender("otel+mdr", "mdr_exporter", "hec"),
    Sender("otel+mdr+spool", "mdr_exporter_spool", "hec", spool=True),
    Sender("otel+otlp", "otlp_gzip", "otlp"),
)


class Receiver:
    """A HECSink (``validate=False``: the parent stays cheap) or an OTLPSink, started on demand."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.error: str | None = None
        self.started_at: float | None = None
        self._hec: HECSink | None = None
        self._otlp: OTLPSink | None = None
        self._lock = threading.Lock()

    def start(self, port: int = 0, busy: bool = False) -> int:
        with self._lock:
            try:
                if self.kind == "hec":
                    self._hec = HECSink(token=TOKEN, port=port, validate=False).start()
                    if busy:
                        self._hec.fail_next(BUSY_FAILURES, 503, 9)
                    bound = self._hec.port
                else:
                    self._otlp = OTLPSink(port=port).__enter__()
                    if busy:
                        self._otlp.fail_next(BUSY_FAILURES, 503)
                    bound = self._otlp.port
            except OSError as error:
                self.error = f"receiver could not start on port {port}: {error}"
                return port
            self.started_at = time.monotonic()
            return bound

    def count(self) -> int:
        with self._lock:
            if self._hec is not None:
                return self._hec.event_count
            if self._otlp is not None:
                return self._otlp.records
            return 0

    def stop(self) -> None:
        with self._lock:
            if self._hec is not None:
                self._hec.stop()
            if self._otlp is not None:
                self._otlp.__exit__(None, None, None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens here until a receiver binds it


def url_for(kind: str | None, port: int) -> str:
    if kind == "otlp":
        return f"http://127.0.0.1:{port}/v1/logs"
    return f"http://127.0.0.1:{port}"


@dataclass
class Run:
    sender: str
    scenario: str
    round: int
    records: int
    ok: bool = False
    returncode: int | None = None
    result: dict[str, Any] = field(default_factory=dict)
    delivered: int | None = None  # None: nothing is sent (null)
    late: int = 0  # received after the child's flush returned (during close)
    receiver_late_s: float | None = None  # down5s: receiver start, seconds after READY
    spool_left_bytes: int = 0
    wall_s: float = 0.0
    close_s: float | None = None  # the child's handler.close() / provider.shutdown()
    stderr: str = ""
    problem: str = ""

    @property
    def delivered_pct(self) -> float | None:
        if self.delivered is None or not self.ok:
            return None
        return 100.0 * self.delivered / self.records

    @property
    def cpu_us_per_delivered(self) -> float | None:
        """CPU per delivered record; for null (nothing delivered) CPU per logged record."""
        if not self.ok:
            return None
        count = self.records if self.delivered is None else self.delivered
        return self.result["cpu_s"] * 1e6 / count if count else None

    def metric(self, name: str) -> float | None:
        if name == "delivered_pct":
            return self.delivered_pct
        if name == "cpu_us":
            return self.cpu_us_per_delivered
        if name == "close_s":
            return self.close_s
        if not self.ok:
            return None
        value = self.result.get(name)
        return float(value) if isinstance(value, (int, float)) else None


def child_env(spool: str | None, flush_timeout: float) -> dict[str, str]:
    """The parent's environment without MDR_* / OTEL_* (the senders run on their defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MDR_", "OTEL_"))}
    env["PYTHONPATH"] = str(HERE)
    env["BENCH_FLUSH_TIMEOUT"] = str(flush_timeout)
    if spool is not None:
        env["BENCH_SPOOL_DIR"] = spool
    return env


def dir_bytes(path: str) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def run_one(sender: Sender, scenario: str, round_: int, records: int, flush_timeout: float) -> Run:
    run = Run(sender.name, scenario, round_, records)
    receiver = Receiver(sender.receiver) if sender.receiver else None
    late_start = scenario == "down5s" and receiver is not None
    if receiver is None or late_start:
        port = free_port()
    else:
        port = receiver.start(0, busy=scenario == "busy")
    spool = tempfile.mkdtemp(prefix="burst-spool-") if sender.spool else None
    command = [sys.executable, str(HERE / "burst_child.py"), sender.setup]
    command += [url_for(sender.receiver, port), TOKEN, str(records)]
    timer: threading.Timer | None = None
    started = time.monotonic()
    ready: float | None = None
    delivered_at_flush: int | None = None
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=child_env(spool, flush_timeout),
        )
        # A child that hangs past every bound is killed (by its own pid), and the run reported.
        watchdog = threading.Timer(flush_timeout + 120.0, child.kill)
        watchdog.start()
        try:
            assert child.stdout is not None
            for line in child.stdout:
                if line == "READY\n":
                    ready = time.monotonic()
                    if late_start and receiver is not None:
                        timer = threading.Timer(DOWN_SECONDS, receiver.start, (port,))
                        timer.start()
                elif line.startswith("CLOSED "):
                    run.close_s = float(line.split()[1])
                elif line.startswith("{"):
                    run.result = json.loads(line)
                    if receiver is not None:
                        delivered_at_flush = receiver.count()
            run.returncode = child.wait()
        finally:
            watchdog.cancel()
            if timer is not None:
                timer.cancel()
                timer.join()
        run.wall_s = time.monotonic() - started
        err.seek(0)
        run.stderr = err.read()
    if receiver is not None:
        run.delivered = receiver.count()
        if delivered_at_flush is not None:
            run.late = run.delivered - delivered_at_flush
        if receiver.started_at is not None and ready is not None and late_start:
            run.receiver_late_s = receiver.started_at - ready
        if receiver.error:
            run.problem = receiver.error
        receiver.stop()
    if spool is not None:
        run.spool_left_bytes = dir_bytes(spool)
        shutil.rmtree(spool, ignore_errors=True)
        os.sync()  # the spool's writeback is done before the next child is measured
    run.ok = run.returncode == 0 and bool(run.result)
    if not run.ok:
        run.problem = run.problem or f"child exited {run.returncode} without a result"
    elif not run.result.get("flushed"):
        run.problem = f"flush did not finish within {flush_timeout:g} s"
    return run


# ---------------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    n: int

    def show(self, fmt: str, suffix: str = "") -> str:
        if self.low == self.high:
            return f"{self.median:{fmt}}{suffix}"
        return f"{self.median:{fmt}}{suffix} [{self.low:{fmt}}..{self.high:{fmt}}]"


def spread(values: Sequence[float | None]) -> Spread | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    return Spread(statistics.median(known), min(known), max(known), len(known))


def show(value: Spread | None, fmt: str, suffix: str = "") -> str:
    return "n/a" if value is None else value.show(fmt, suffix)


def by_key(runs: Sequence[Run]) -> dict[tuple[str, str, int], Run]:
    return {(r.sender, r.scenario, r.round): r for r in runs}


def print_table(runs: Sequence[Run], senders: Sequence[Sender], scenarios: Sequence[str]) -> None:
    columns = (
        ("delivered %", "delivered_pct", ".1f"),
        ("caller p50 us", "p50_us", ".2f"),
        ("caller p99 us", "p99_us", ".1f"),
        ("CPU us/delivered", "cpu_us", ".1f"),
        ("peak RSS MB", "peak_rss_mb", ".1f"),
        ("flush s", "flush_s", ".2f"),
        ("close s", "close_s", ".2f"),
    )
    rows: list[list[str]] = []
    for sender in senders:
        for scenario in scenarios:
            mine = [r for r in runs if r.sender == sender.name and r.scenario == scenario]
            if not mine:
                continue
            cells = [sender.name, scenario]
            for _, key, fmt in columns:
                cell = show(spread([r.metric(key) for r in mine]), fmt)
                if key == "delivered_pct" and sender.receiver is None:
                    cell = "n/a"
                if key == "cpu_us" and sender.receiver is None:
                    cell += " /logged"
                cells.append(cell)
            failed = sum(not r.ok for r in mine)
            cells.append(f"{len(mine) - failed}/{len(mine)}")
            rows.append(cells)
    header = ["sender", "scenario", *(c[0] for c in columns), "runs ok"]
    print_rows([header, *rows], "ll" + "r" * (len(header) - 2))


def print_rows(rows: Sequence[Sequence[str]], align: str, indent: str = "") -> None:
    """Columns padded to their widest cell; ``align`` holds one ``l`` or ``r`` per column."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(row, widths, align, strict=True)
        ]
        print(indent + "  ".join(cells).rstrip())


RoundValue = Callable[[dict[tuple[str, str, int], Run], int], float | None]


def per_round(runs: Sequence[Run], rounds: int, value: RoundValue) -> Spread | None:
    table = by_key(runs)
    return spread([value(table, r) for r in range(rounds)])


def ratio_of(metric: str, top: tuple[str, str], bottom: tuple[str, str]) -> RoundValue:
    def value(table: dict[tuple[str, str, int], Run], round_: int) -> float | None:
        a, b = table.get((*top, round_)), table.get((*bottom, round_))
        if a is None or b is None:
            return None
        x, y = a.metric(metric), b.metric(metric)
        if x is None or y is None or y == 0:
            return None
        return x / y

    return value


def difference_of(metric: str, top: tuple[str, str], bottom: tuple[str, str]) -> RoundValue:
    def value(table: dict[tuple[str, str, int], Run], round_: int) -> float | None:
        a, b = table.get((*top, round_)), table.get((*bottom, round_))
        if a is None or b is None:
            return None
        x, y = a.metric(metric), b.metric(metric)
        return None if x is None or y is None else x - y

    return value


def verdict(value: Spread | None, passes: Callable[[float], bool], strict: bool = False) -> str:
    """PASS/MISS on the median (noting a range that crosses the target); ``strict``: every round."""
    if value is None:
        return "n/a"
    if strict:
        return "PASS" if passes(value.low) and passes(value.high) else "MISS"
    mark = "PASS" if passes(value.median) else "MISS"
    if passes(value.low) != passes(value.high):
        mark += " (range crosses)"
    return mark


def at_most(limit: float) -> Callable[[float], bool]:
    return lambda value: value <= limit


def print_ratios(runs: Sequence[Run], rounds: int, scenarios: Sequence[str]) -> None:
    print("\nratios: taken within each round, then median [min..max] over the rounds;")
    print("PASS/MISS on the median (delivered mdr: on every round)\n")
    rows = [["ratio", "measured", "target", "verdict"]]

    def add(label: str, value: Spread | None, fmt: str, unit: str, target: str, mark: str) -> None:
        rows.append([label, show(value, fmt, unit), target, mark])

    for scenario in scenarios:
        value = per_round(
            runs, rounds, ratio_of("p50_us", ("mdr+spool", scenario), ("null", scenario))
        )
        add(
            f"caller p50 mdr+spool / null, {scenario}",
            value,
            ".2f",
            "x",
            "<= 1.5x",
            verdict(value, at_most(1.5)),
        )
    for scenario in scenarios:
        value = per_round(runs, rounds, ratio_of("p50_us", ("mdr", scenario), ("null", scenario)))
        add(f"caller p50 mdr / null, {scenario}", value, ".2f", "x", "-", "")
    for scenario in scenarios:
        for name in ("mdr+spool", "mdr", "otel+mdr"):
            value = per_round(
                runs, rounds, ratio_of("cpu_us", (name, scenario), ("otel+otlp", scenario))
            )
            label = f"CPU/delivered {name} / otel+otlp, {scenario}"
            if name == "mdr+spool":
                add(label, value, ".2f", "x", "<= 0.6x", verdict(value, at_most(0.6)))
            else:
                add(label, value, ".2f", "x", "-", "")
    for scenario in scenarios:
        mdr = [r.delivered_pct for r in runs if r.sender == "mdr" and r.scenario == scenario]
        value = spread(mdr)
        add(
            f"delivered mdr, {scenario}",
            value,
            ".2f",
            "%",
            "100%",
            verdict(value, lambda v: v >= 100.0, strict=True),
        )
    for scenario in scenarios:
        if scenario != "fine":
            value = per_round(
                runs,
                rounds,
                difference_of("delivered_pct", ("otel+mdr", scenario), ("otel+mdr", "fine")),
            )
            add(
                f"delivered otel+mdr, {scenario} minus fine",
                value,
                "+.2f",
                " pt",
                "within 2 pt",
                verdict(value, lambda v: abs(v) <= 2.0),
            )
    print_rows(rows, "lrll", indent="  ")


def print_stderr(runs: Sequence[Run], senders: Sequence[Sender], scenarios: Sequence[str]) -> None:
    """What the children said on stderr and what else went wrong, per sender x scenario."""
    print("\nchild stderr and problems: distinct lines (lines differing only in digits count as")
    print("one; the first is shown), how often, in which rounds")
    quiet = True
    for sender in senders:
        for scenario in scenarios:
            mine = [r for r in runs if r.sender == sender.name and r.scenario == scenario]
            lines: Counter[str] = Counter()
            example: dict[str, str] = {}
            rounds: dict[str, set[int]] = {}
            for run in mine:
                for text in run.stderr.splitlines():
                    if text.strip():
                        key = "".join("#" if c.isdigit() else c for c in text.strip())
                        lines[key] += 1
                        example.setdefault(key, text.strip())
                        rounds.setdefault(key, set()).add(run.round + 1)
            notes = [f"round {r.round + 1}: {r.problem}" for r in mine if r.problem]
            notes += [
                f"round {r.round + 1}: {r.late} record(s) received after the flush returned"
                for r in mine
                if r.late
            ]
            notes += [
                f"round {r.round + 1}: {r.spool_left_bytes} bytes left in the spool after exit"
                for r in mine
                if r.spool_left_bytes
            ]
            notes += [
                f"round {r.round + 1}: close took {r.close_s:.2f} s after the flush returned"
                for r in mine
                if r.close_s is not None and r.close_s > 1.0
            ]
            if not (lines or notes):
                continue
            quiet = False
            print(f"  {sender.name} / {scenario}:")
            for note in sorted(notes):
                print(f"    NOTE {note}")
            for key, count in lines.most_common(8):
                where = ",".join(str(n) for n in sorted(rounds[key]))
                print(f"    {count:4}x (round {where}) {example[key][:400]}")
            if len(lines) > 8:
                print(f"    ... and {len(lines) - 8} more distinct line(s)")
    if quiet:
        print("  (nothing)")


def print_times(runs: Sequence[Run], round_walls: Sequence[float], total: float) -> None:
    print("\ntimes (wall, parent's clock)")
    walls = ", ".join(f"{w:.1f}" for w in round_walls)
    print(f"  total {total:.1f} s; rounds: {walls} s")
    for scenario in SCENARIOS:
        mine = [r.wall_s for r in runs if r.scenario == scenario]
        if mine:
            print(
                f"  {scenario:7} {sum(mine):6.1f} s in {len(mine)} children "
                f"(median {statistics.median(mine):.1f} s, max {max(mine):.1f} s per child)"
            )
    late = [r.receiver_late_s for r in runs if r.receiver_late_s is not None]
    if late:
        print(
            f"  down5s: the receiver started {min(late):.2f}-{max(late):.2f} s after the child's "
            "READY line"
        )
    slowest = sorted(runs, key=lambda r: r.wall_s, reverse=True)[:4]
    print(
        "  slowest children: "
        + ", ".join(f"{r.sender}/{r.scenario} {r.wall_s:.1f} s" for r in slowest)
    )


def git_state() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "py_mdr", "py_mdr_otel").splitlines()
    if dirty:
        return f"{commit} + {len(dirty)} uncommitted change(s) in py_mdr/py_mdr_otel"
    return f"{commit} (py_mdr/py_mdr_otel clean)"


def print_header(args: argparse.Namespace, seed: int, scenarios: Sequence[str], state: str) -> None:
    """What ran where; flushed at once, so the progress on stderr follows it."""
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    print(f"date      {now}")
    print(f"platform  {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"python    {sys.version.split()[0]} ({sys.executable})")
    print(f"command   {shlex.join([sys.executable, *sys.argv])}")
    print(f"code      {state}")
    print(
        f"workload  {args.records} records per child in a tight loop on one thread "
        f"(same count in every scenario), flush bounded by {args.flush_timeout:g} s; "
        f"{args.rounds} interleaved rounds, shuffled with seed {seed}"
    )
    if "down5s" in scenarios:
        print(
            f"          down5s: nothing listens for {DOWN_SECONDS:g} s after the child's first "
            "call, then a receiver starts on that port"
        )
    print(
        "          CPU: os.times user+sys of the whole child, first call to flush returned; "
        "null's CPU is per logged record\n"
        "          null has no receiver: it runs once per scenario, as that scenario's floor\n"
        "          table cells: median [min..max] over the rounds\n",
        flush=True,
    )


@contextlib.contextmanager
def progress(label: str) -> Iterator[None]:
    print(label, end="", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        print(file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--flush-timeout", type=float, default=60.0, help="seconds, per child")
    parser.add_argument("--seed", type=int, default=None, help="of the shuffle (default: random)")
    parser.add_argument("--senders", default=",".join(s.name for s in SENDERS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    wanted = args.senders.split(",")
    senders = [s for s in SENDERS if s.name in wanted]
    scenarios = [s for s in SCENARIOS if s in args.scenarios.split(",")]
    if not senders or not scenarios or args.rounds < 1 or args.records < 100:
        parser.error("need a known sender and scenario, --rounds >= 1 and --records >= 100")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    shuffle = random.Random(seed)
    state = git_state()
    print_header(args, seed, scenarios, state)
    runs: list[Run] = []
    round_walls: list[float] = []
    began = time.monotonic()
    for round_ in range(args.rounds):
        plan = [(s, scenario) for s in senders for scenario in scenarios]
        shuffle.shuffle(plan)
        start = time.monotonic()
        with progress(f"round {round_ + 1}/{args.rounds}:"):
            for sender, scenario in plan:
                run = run_one(sender, scenario, round_, args.records, args.flush_timeout)
                runs.append(run)
                mark = "" if run.ok and not run.problem else "!"
                print(f" {sender.name}/{scenario}{mark}", end="", file=sys.stderr, flush=True)
        round_walls.append(time.monotonic() - start)
    total = time.monotonic() - began
    print_table(runs, senders, scenarios)
    print_ratios(runs, args.rounds, scenarios)
    print_stderr(runs, senders, scenarios)
    print_times(runs, round_walls, total)
    if git_state() != state:
        print(f"\nWARNING: the code changed during the run: now {git_state()}")


if __name__ == "__main__":
    main()
