"""The benchmark: every ratio py-mdr's performance targets are stated in, from one run.

Run: ``make bench`` or ``.venv/bin/python bench/run.py [--rounds 5] [--pairs 10]``.

Each sender logs ``--records`` lines (``logger.info`` with 2 %-args and 3 ``extra`` fields) in
a child process of its own (bench/senders.py), against receivers on loopback living in this
process, so the child's CPU and memory are the sender's alone. Two modes: ``paced`` (bursts of
200 calls, 20 ms apart: a busy service) and ``tight`` (one loop as fast as it can log). Senders:

- ``null``: stdlib ``logging`` with a ``NullHandler``, the floor of the logging call itself;
- ``otel+noop``: OpenTelemetry's SDK (``LoggerProvider``, default ``BatchLogRecordProcessor``,
  the logging handler) with an exporter that does nothing: the SDK's own cost, below every
  exporter; an exporter's *own* cost is its sender's CPU minus this;
- ``otel+otlp`` and ``otel+otlp+gzip``: the same with the OTLP/HTTP exporter, without and with
  gzip (py-mdr always sends gzip, so ``+gzip`` is the like-for-like comparison);
- ``otel+mdr``: the same with ``MDRExporter``; ``otel+mdr+spool`` with a disk spool;
- ``mdr``: ``MDRHandler`` with its defaults (redaction and storm folding on); ``mdr+spool``
  with a disk spool; ``mdr bare`` without redaction and folding.

The SDK's batch queue is sized to hold the whole run (``OTEL_BLRP_MAX_QUEUE_SIZE``), as
py-mdr's default queue does, so every sender delivers every record and CPU is divided by
records *delivered* (counted by the receivers). Rounds interleave the senders in a shuffled
order; every ratio is taken within a round, and the table shows the median and the range over
the rounds. One ratio sits near 1 and this noise hides it: what redaction and folding cost
(``mdr`` against ``mdr bare``). It is also measured in ``--pairs`` more pairs of those two
senders alone (in alternating order), and its line takes the rounds and the pairs together.
Also measured: the serializer (bench/serialize.py) and the import time of the
front doors. Absolute times drift with the machine; the ratios are the result.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from otlp_sink import OTLPSink
from serialize import rows as serializer_rows

from py_mdr.sink import HECSink

HERE = Path(__file__).resolve().parent
TOKEN = "bench-token"
WARM_UP = 200  # records each child logs (and flushes) before it starts timing
MODES = {"paced": (200, 20.0), "tight": (0, 0.0)}  # (burst, pause in ms); 0: the whole run
# label -> (senders.py name, receiver: "hec" | "otlp" | "noop", spool)
SENDERS: dict[str, tuple[str, str, bool]] = {
    "null": ("null", "none", False),
    "otel+noop": ("otel_noop", "noop", False),
    "otel+otlp": ("otlp", "otlp", False),
    "otel+otlp+gzip": ("otlp_gzip", "otlp", False),
    "otel+mdr": ("mdr_exporter", "hec", False),
    "otel+mdr+spool": ("mdr_exporter_spool", "hec", True),
    "mdr": ("mdr_default", "hec", False),
    "mdr+spool": ("mdr_spool", "hec", True),
    "mdr bare": ("mdr_bare", "hec", False),
}


def run_child(name: str, url: str, records: int, mode: str, spool: bool) -> dict[str, Any]:
    burst, pause = MODES[mode]
    env = dict(
        os.environ,
        PYTHONPATH=str(HERE),
        BENCH_FLUSH_TIMEOUT="120",
        OTEL_BLRP_MAX_QUEUE_SIZE=str(records + 2 * WARM_UP),
    )
    folder = tempfile.mkdtemp(prefix="bench-spool-") if spool else None
    if folder:
        env["BENCH_SPOOL_DIR"] = folder
    command = [sys.executable, str(HERE / "senders.py"), name, url, TOKEN, str(records)]
    command += [str(burst or records), str(pause)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=900, env=env, check=False
        )
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{name} ({mode}) failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def one_round(
    hec: HECSink, otlp: OTLPSink, records: int, order: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    results = {}
    for mode, label in order:
        name, receiver, spool = SENDERS[label]
        url = otlp.url if receiver == "otlp" else hec.url
        hec.clear()
        otlp_before = (otlp.records, otlp.wire_bytes)
        result = run_child(name, url, records, mode, spool)
        if receiver == "hec":
            delivered = len(hec.events)
            wire = sum(request.body_bytes for request in hec.requests)
        elif receiver == "otlp":
            delivered = otlp.records - otlp_before[0]
            wire = otlp.wire_bytes - otlp_before[1]
        elif receiver == "noop":
            delivered, wire = result["exported"], 0
        else:
            delivered, wire = result["logged"], 0
        timed = max(delivered - WARM_UP, 1)  # the warm-up was flushed before the clock started
        result["delivered"] = timed
        result["cpu_per_delivered"] = result["cpu_s"] / timed * 1e6
        result["bytes_per_record"] = wire / delivered if delivered else 0.0
        results[mode, label] = result
    hec.clear()
    return results


_NO_CACHE_OFF = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def start_ms(code: str, runs: int = 9) -> float:
    """Median wall time of ``python -c code``, with the bytecode cached, as after ``pip install``
    (an environment that sets ``PYTHONDONTWRITEBYTECODE`` would otherwise compile every module of
    an editable install from source on each start): one unmeasured run writes the cache first."""
    subprocess.run([sys.executable, "-c", code], check=True, env=_NO_CACHE_OFF)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=_NO_CACHE_OFF)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


# ------------------------------------------------------------------------------- report
Row = dict[tuple[str, str], dict[str, Any]]


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """``median (min-max)`` of a value over the rounds."""
    middle = fmt.format(statistics.median(values))
    if len(values) < 2:
        return middle
    return f"{middle} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def ratio_line(
    rounds: list[Row],
    name: str,
    value: Callable[[Row], float],
    target: float | None,
) -> str:
    values = [value(r) for r in rounds]
    mark = ""
    if target is not None:
        verdict = "met" if statistics.median(values) <= target else "MISSED"
        mark = f"  [target <= {target:g}x: {verdict}]"
    return f"  {name:62} {spread(values)}x{mark}"


def more_pairs(hec: HECSink, otlp: OTLPSink, records: int, pairs: int) -> list[Row]:
    """``pairs`` more runs of ``mdr`` and ``mdr bare`` in each mode, the order alternating."""
    rows: list[Row] = []
    for number in range(pairs):
        order = [(mode, label) for mode in MODES for label in ("mdr", "mdr bare")]
        rows.append(one_round(hec, otlp, records, order if number % 2 else order[::-1]))
    return rows


def report(rounds: list[Row], pairs: list[Row], records: int, seed: int, started: str) -> None:
    cores = os.cpu_count()
    print(
        f"py-mdr bench, {started}: {platform.machine()} {cores} cores, "
        f"Python {platform.python_version()}, {records} records per sender and mode, "
        f"{len(rounds)} rounds (seed {seed}); median (min-max) over the rounds"
    )
    for mode in MODES:
        shape = "bursts of 200 calls 20 ms apart" if mode == "paced" else "one tight loop"
        print(f"\n{mode}: {shape}")
        print(
            f"  {'sender':16} {'p50 us':>18} {'p99 us':>20} {'CPU us/delivered':>22} "
            f"{'delivered':>10} {'B/record':>18} {'RSS MB':>8}"
        )
        for label in SENDERS:
            got = [r[mode, label] for r in rounds]
            print(
                f"  {label:16} {spread([g['p50_us'] for g in got]):>18} "
                f"{spread([g['p99_us'] for g in got]):>20} "
                f"{spread([g['cpu_per_delivered'] for g in got]):>22} "
                f"{min(g['delivered'] for g in got):>6}/{records:<4} "
                f"{spread([g['bytes_per_record'] for g in got], '{:.1f}'):>18} "
                f"{statistics.median(g['peak_rss_mb'] for g in got):8.1f}"
            )

    def cpu(mode: str, label: str) -> Callable[[Row], float]:
        return lambda r: float(r[mode, label]["cpu_per_delivered"])

    def over(mode: str, a: str, b: str, key: str = "cpu_per_delivered") -> Callable[[Row], float]:
        return lambda r: float(r[mode, a][key] / r[mode, b][key])

    def own(mode: str, label: str) -> Callable[[Row], float]:
        return lambda r: cpu(mode, label)(r) - cpu(mode, "otel+noop")(r)

    def own_ratio(mode: str, spool: str) -> Callable[[Row], float]:
        return lambda r: own(mode, "otel+mdr" + spool)(r) / own(mode, "otel+otlp+gzip")(r)

    print("\nratios (each taken within a round)")
    for mode in MODES:
        print(f" {mode}:")
        otlp = "otel+otlp+gzip"
        processing = over(mode, "mdr", "mdr bare")
        lines: list[tuple[str, Callable[[Row], float], float | None]] = [
            ("MDRHandler CPU/delivered vs OTel+OTLP gzip", over(mode, "mdr", otlp), 0.35),
            ("MDRHandler CPU/delivered vs OTel+OTLP no gzip", over(mode, "mdr", "otel+otlp"), None),
            ("MDRExporter own CPU vs OTLP gzip's own (above otel+noop)", own_ratio(mode, ""), 0.4),
            ("MDRHandler+spool CPU/delivered vs OTLP gzip", over(mode, "mdr+spool", otlp), None),
            ("MDRExporter+spool own CPU vs OTLP gzip's own", own_ratio(mode, "+spool"), None),
        ]
        p99_target = 2.0 if mode == "paced" else 3.0
        for label in ("mdr", "mdr+spool", "mdr bare"):
            lines.append((f"{label} caller p50 vs null", over(mode, label, "null", "p50_us"), 1.5))
            lines.append(
                (f"{label} caller p99 vs null", over(mode, label, "null", "p99_us"), p99_target)
            )
        lines.append(
            (
                "bytes/record: MDRHandler vs OTLP gzip",
                over(mode, "mdr", "otel+otlp+gzip", "bytes_per_record"),
                1.5,
            )
        )
        lines.append(
            (
                "bytes/record: MDRExporter vs OTLP gzip",
                over(mode, "otel+mdr", "otel+otlp+gzip", "bytes_per_record"),
                1.5,
            )
        )
        for name, value, target in lines:
            print(ratio_line(rounds, name, value, target))
        print(
            ratio_line(
                rounds + pairs,
                f"redaction + folding: MDRHandler CPU vs without ({len(rounds + pairs)} pairs)",
                processing,
                1.1,
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 16)
    shuffle = random.Random(seed).shuffle
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rounds: list[Row] = []
    with HECSink(token=TOKEN, validate=False) as hec, OTLPSink() as otlp:
        for number in range(args.rounds):
            order = [(mode, label) for mode in MODES for label in SENDERS]
            shuffle(order)
            rounds.append(one_round(hec, otlp, args.records, order))
            print(f"round {number + 1} of {args.rounds} done", file=sys.stderr, flush=True)
        pairs = more_pairs(hec, otlp, args.records, args.pairs)
    report(rounds, pairs, args.records, seed, started)

    print("\nserializer: one fully populated Event Log Activity (bench/serialize.py)")
    serializer = serializer_rows()
    for name, us, floor_ratio in serializer:
        print(f"  {name:52} {us:8.2f} us  {floor_ratio:6.2f}x pydantic_core.to_json(final dict)")

    print(
        "\nimport time above `python -c pass`, bytecode cached (median of 9 runs each) "
        "[target < 100 ms]"
    )
    interpreter = start_ms("pass")  # measured once, subtracted from each
    for statement in (
        "from py_mdr.handler import MDRHandler",
        "import py_mdr_otel",
        "from py_mdr_otel import MDRExporter",
    ):
        took = start_ms(statement) - interpreter
        print(f"  {statement:44} {took:7.1f} ms  [{'met' if took < 100 else 'MISSED'}]")
    sdk = "import opentelemetry.sdk._logs"
    base = start_ms(sdk)
    above = start_ms(f"{sdk}; from py_mdr_otel import MDRExporter") - base
    print(f"  {'  of which the SDK it loads':44} {base - interpreter:7.1f} ms")
    print(f"  {'MDRExporter where the OTel SDK is loaded':44} {above:7.1f} ms")


if __name__ == "__main__":
    main()
