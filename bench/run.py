"""Logging-path benchmark: NullHandler floor, OTel SDK + OTLP/HTTP, MDRHandler, MDRExporter.

Run: ``make bench`` (or ``.venv/bin/python bench/run.py --records 20000``). Every sender runs in
its own child process, one after the other in this one run, against receivers on loopback that
live in this (parent) process, so the child's CPU and memory are the sender's alone. Prints, per
sender: caller p50/p99 microseconds per ``logger.info`` (2 %-args, 3 extra fields), CPU
microseconds per record in the logging process (all threads), records delivered, bytes per
record on the wire, peak RSS; then the ratios the targets are stated in.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from otlp_sink import OTLPSink

from py_mdr.sink import HECSink

HERE = Path(__file__).resolve().parent
TOKEN = "bench-token"


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens here any more


def run_child(
    sender: str, url: str, args: argparse.Namespace, flush_timeout: float
) -> dict[str, Any]:
    env = dict(os.environ, BENCH_FLUSH_TIMEOUT=str(flush_timeout), PYTHONPATH=str(HERE))
    command = [sys.executable, str(HERE / "senders.py"), sender, url, TOKEN, str(args.records)]
    command += [str(args.burst), str(args.pause_ms)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{sender} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--burst", type=int, default=200, help="calls between pauses")
    parser.add_argument("--pause-ms", type=float, default=20.0, help="0 for a tight loop")
    parser.add_argument(
        "--rounds", type=int, default=3, help="every sender runs this often, interleaved; medians"
    )
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {}
    with (
        HECSink(token=TOKEN, validate=False) as hec,
        HECSink(token=TOKEN, validate=False) as hanging,
        OTLPSink() as otlp,
    ):
        hanging.hang(3600)  # accepts every request and never answers
        plan = [
            ("NullHandler (floor)", "null", "-", 1.0, None),
            ("OTel SDK + OTLP/HTTP", "otlp", otlp.url, 60.0, "otlp"),
            ("OTel SDK + MDRExporter", "mdr_exporter", hec.url, 60.0, "hec"),
            ("MDRHandler", "mdr_handler", hec.url, 60.0, "hec"),
            ("MDRHandler, no redact/fold", "mdr_bare", hec.url, 60.0, "hec"),
            ("MDRHandler, endpoint down", "mdr_handler", closed_port_url(), 1.0, None),
            ("MDRHandler, endpoint hanging", "mdr_handler", hanging.url, 1.0, None),
        ]
        for _, (label, sender, url, flush_timeout, sink) in itertools.product(
            range(args.rounds), plan
        ):
            before = (len(hec.events), sum(r.body_bytes for r in hec.requests))
            otlp_before = (otlp.records, otlp.wire_bytes)
            result = run_child(sender, url, args, flush_timeout)
            if sink == "hec":
                delivered = len(hec.events) - before[0]
                wire = sum(r.body_bytes for r in hec.requests) - before[1]
            elif sink == "otlp":
                delivered = otlp.records - otlp_before[0]
                wire = otlp.wire_bytes - otlp_before[1]
            else:
                delivered, wire = 0, 0
            result["delivered"] = delivered
            result["bytes_per_record"] = wire / delivered if delivered else 0.0
            runs.setdefault(label, []).append(result)
            hec.clear()
    # A shared machine's speed drifts; the median of interleaved rounds steadies every ratio.
    rows = [
        (label, {k: statistics.median(r[k] for r in results) for k in results[0]})
        for label, results in runs.items()
    ]
    version = sys.version.split()[0]
    print(
        f"{args.records} records per sender in bursts of {args.burst} every {args.pause_ms} ms, "
        f"median of {args.rounds} interleaved rounds, python {version}, {os.cpu_count()} cores"
    )
    header = f"{'sender':28} {'p50 us':>7} {'p99 us':>7} {'cpu us/rec':>10} {'delivered':>9} "
    print(header + f"{'B/rec':>7} {'RSS MB':>7}")
    for label, r in rows:
        print(
            f"{label:28} {r['p50_us']:7.2f} {r['p99_us']:7.2f} {r['cpu_us_per_record']:10.2f} "
            f"{r['delivered']:9.0f}/{r['logged']:<6.0f} {r['bytes_per_record']:7.1f} "
            f"{r['peak_rss_mb']:7.1f}"
        )
    by = dict(rows)
    floor, otel = by["NullHandler (floor)"], by["OTel SDK + OTLP/HTTP"]
    print("\nratios (targets in brackets)")
    for label in ("MDRHandler", "MDRHandler, endpoint down", "MDRHandler, endpoint hanging"):
        r = by[label]
        print(
            f"  {label}: caller p50 {r['p50_us'] / floor['p50_us']:.2f}x floor [<= 2], "
            f"p99 {r['p99_us'] / floor['p99_us']:.2f}x floor [<= 3]"
        )
    handler_cpu = by["MDRHandler"]["cpu_us_per_record"] / otel["cpu_us_per_record"]
    exporter_cpu = by["OTel SDK + MDRExporter"]["cpu_us_per_record"] / otel["cpu_us_per_record"]
    print(f"  MDRHandler CPU/record: {handler_cpu:.2f}x OTel+OTLP [<= 0.5]")
    bare = by["MDRHandler, no redact/fold"]
    processing = by["MDRHandler"]["cpu_us_per_record"] / bare["cpu_us_per_record"]
    print(
        f"  redaction and folding: MDRHandler CPU/record {processing:.2f}x without them "
        f"[<= 1.10]; caller p50 {by['MDRHandler']['p50_us'] / floor['p50_us']:.2f}x floor "
        f"[<= 1.5], without them {bare['p50_us'] / floor['p50_us']:.2f}x"
    )
    print(f"  MDRExporter CPU/record: {exporter_cpu:.2f}x OTel+OTLP [<= 0.75]")


if __name__ == "__main__":
    main()
