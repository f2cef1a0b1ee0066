"""One burst of one sender, in a child process of bench/burst.py.

Usage: ``python bench/burst_child.py SENDER URL TOKEN RECORDS`` (SENDER: a key of
``senders.SENDERS``; ``BENCH_FLUSH_TIMEOUT`` bounds the flush, ``BENCH_SPOOL_DIR`` is the spool
of the spool senders). Builds the sender, prints ``READY`` (the parent's clock for the
``down5s`` scenario starts there), then logs RECORDS lines in a tight loop on this one thread,
timing each call, flushes the sender (bounded), and prints one JSON line: caller latency
percentiles, CPU of the whole process (all threads, from just before the first call until the
flush returned), peak RSS. Then it closes the sender and prints ``CLOSED`` with the seconds that
took. The parent counts what was received.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from senders import FLUSH_TIMEOUT, SENDERS, peak_rss_mb


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads (``os.times``)."""
    times = os.times()
    return times.user + times.system


def main(sender: str, url: str, token: str, records: int) -> None:
    handler, finish = SENDERS[sender](url, token)
    logger = logging.getLogger("bench.app")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    clock = time.perf_counter_ns
    latencies = [0] * records
    print("READY", flush=True)
    wall_start = time.monotonic()
    cpu_start = cpu_seconds()
    for i in range(records):
        start = clock()
        logger.info(
            "order %d for %s", i, "customer", extra={"order_id": i, "region": "eu", "retry": False}
        )
        latencies[i] = clock() - start
    loop_wall = time.monotonic() - wall_start
    loop_cpu = cpu_seconds() - cpu_start
    flushed = finish()
    cpu = cpu_seconds() - cpu_start
    wall = time.monotonic() - wall_start
    latencies.sort()
    print(
        json.dumps(
            {
                "logged": records,
                "p50_us": latencies[records // 2] / 1000,
                "p99_us": latencies[records * 99 // 100] / 1000,
                "cpu_s": cpu,
                "loop_cpu_s": loop_cpu,
                "loop_s": loop_wall,
                "flush_s": wall - loop_wall,
                "flushed": flushed,
                "flush_timeout_s": FLUSH_TIMEOUT,
                "peak_rss_mb": peak_rss_mb(),
            }
        ),
        flush=True,
    )
    closing = time.monotonic()
    handler.close()
    print(f"CLOSED {time.monotonic() - closing:.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
