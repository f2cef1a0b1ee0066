"""Where a logging call waits in a tight loop: the garbage collector, and the worker's turns.

Run: ``.venv/bin/python bench/caller_tail.py [--records 20000] [--runs 3]``.

One thread logs ``--records`` lines as fast as it can (as bench/run.py's *tight* mode) through a
``NullHandler`` or ``MDRHandler`` (defaults, against a receiver on loopback), each run in a child
process of its own. For ``MDRHandler`` it runs twice: with the garbage collector as it is, and
with it switched off for the timed loop. Each line gives the caller's p50 and p99, and the
collections that ran on the logging thread (per generation: how many, and their total time).
The difference between the two ``MDRHandler`` lines is what the collector adds to the tail; what
is left above the ``NullHandler`` is mostly the worker's turns with the interpreter lock.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from py_mdr.sink import HECSink

TOKEN = "bench-token"
CASES = {"null": ("null", False), "mdr": ("mdr", False), "mdr, collector off": ("mdr", True)}


def child(sender: str, url: str, records: int, collector_off: bool) -> dict[str, Any]:
    """One timed loop in this process; what the parent prints."""
    if sender == "null":
        handler: logging.Handler = logging.NullHandler()
    else:
        from py_mdr.handler import MDRHandler

        handler = MDRHandler(host=url, token=TOKEN)
    logger = logging.getLogger("bench.app")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    extra = {"request_id": "r-1234", "tenant": "acme", "attempt": 2}
    for number in range(200):  # warm up, then start from an empty queue
        logger.info("user %s did %s", "alice", number, extra=extra)
    handler.flush()

    logging_thread = threading.get_ident()
    collections = [[0, 0.0] for _ in range(3)]
    started = [0.0]

    def on_collect(phase: str, info: dict[str, Any]) -> None:
        if threading.get_ident() != logging_thread:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            entry = collections[info["generation"]]
            entry[0] += 1
            entry[1] += time.perf_counter() - started[0]

    gc.callbacks.append(on_collect)
    if collector_off:
        gc.disable()
    latencies = [0] * records
    clock = time.perf_counter_ns
    for number in range(records):
        before = clock()
        logger.info("user %s did %s", "alice", number, extra=extra)
        latencies[number] = clock() - before
    gc.enable()
    gc.callbacks.remove(on_collect)
    handler.flush()
    handler.close()
    latencies.sort()
    return {
        "p50": latencies[records // 2] / 1000,
        "p99": latencies[records * 99 // 100] / 1000,
        "collections": [(count, seconds * 1000) for count, seconds in collections],
    }


def run_child(sender: str, url: str, records: int, collector_off: bool) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", sender, url, str(records), str(collector_off)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Where a logging call waits in a tight loop.")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    with HECSink(token=TOKEN, validate=False) as hec:
        for _ in range(args.runs):
            for case, (sender, collector_off) in CASES.items():
                results[case].append(run_child(sender, hec.url, args.records, collector_off))
    print(f"{args.records} records in a tight loop, {args.runs} runs; median (min-max)")
    print(f"  {'':20} {'p50 us':>18} {'p99 us':>20}   collections on the logging thread")
    for case, runs in results.items():
        cells = [_spread([run[key] for run in runs]) for key in ("p50", "p99")]
        gens = []
        for generation in range(3):
            counts = [run["collections"][generation][0] for run in runs]
            took = [run["collections"][generation][1] for run in runs]
            gens.append(f"gen{generation} {_spread(counts, 0)} in {_spread(took)} ms")
        print(f"  {case:20} {cells[0]:>18} {cells[1]:>20}   {', '.join(gens)}")


def _spread(values: list[float], digits: int = 1) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sender, url, records, off = sys.argv[2:6]
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        print(json.dumps(child(sender, url, int(records), off == "True")))
    else:
        main()
