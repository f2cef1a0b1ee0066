"""Span exporters: CPU per span of MDRSpanExporter and of the OTLP span exporter (gzip on), each
above the SDK's own cost (a do-nothing exporter behind the same BatchSpanProcessor).

Run: ``.venv/bin/python bench/spans.py [--spans 20000] [--rounds 5]``. Each exporter runs in its
own child process (``bench/span_sender.py``), all one after the other in every round and the
rounds interleaved, against receivers on loopback that live in this process, so a child's
CPU is the exporter's and the SDK's alone; the children share one core, this process has the
others (``--unpinned``: any core). An exporter's own cost per span is its child's CPU per span
minus the do-nothing child's of the same round. Prints medians and ranges over the rounds, what
was delivered, and the ratio the target is stated in (our own <= 0.5x OTLP's own), for
MDRSpanExporter as configured by default (redaction on) and with ``redact=False``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from otlp_trace_sink import OTLPTraceSink

from py_mdr.sink import HECSink

HERE = Path(__file__).resolve().parent
TOKEN = "bench-token"
SENDERS = (
    ("null", "SDK + do-nothing exporter"),
    ("otlp", "OTLP/HTTP, gzip"),
    ("mdr", "MDR"),
    ("mdr_plain", "MDR, redact=False"),
)


def run_child(sender: str, url: str, spans: int, core: int | None) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(HERE), str(HERE.parent))))
    if core is not None:
        env["BENCH_CPU"] = str(core)
    done = subprocess.run(
        [sys.executable, str(HERE / "span_sender.py"), sender, url, TOKEN, str(spans)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{sender} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cpu: float = json.loads(lines[-1])["cpu_us_per_span"]
    return cpu


def child_core(unpinned: bool) -> int | None:
    """One core for the children, the others for this process (the receivers); None: any."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if unpinned or len(cores) < 2:
        return None
    # On one core a child's CPU time is its work, not also what two hyperthreads running the
    # exporter's threads side by side cost each other.
    os.sched_setaffinity(0, cores[:-1])
    return cores[-1]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f}  [{min(values):6.2f} .. {max(values):6.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved; at least 3")
    parser.add_argument("--unpinned", action="store_true", help="children may use every core")
    args = parser.parse_args()
    rounds = max(3, args.rounds)
    core = child_core(args.unpinned)
    cpu: dict[str, list[float]] = {sender: [] for sender, _ in SENDERS}
    with (
        HECSink(token=TOKEN, validate=False, max_events=10) as hec,
        HECSink(token=TOKEN, validate=False, max_events=10) as hec_plain,
        OTLPTraceSink() as otlp,
    ):
        urls = {"null": "-", "otlp": otlp.url, "mdr": hec.url, "mdr_plain": hec_plain.url}
        for _ in range(rounds):
            for sender, _ in SENDERS:
                cpu[sender].append(run_child(sender, urls[sender], args.spans, core))
        delivered = {"otlp": otlp.spans, "mdr": hec.event_count, "mdr_plain": hec_plain.event_count}
    sent = rounds * (args.spans + 1_000)  # the warm-up spans are delivered too
    floor = cpu["null"]
    own = {s: [t - f for t, f in zip(cpu[s], floor, strict=True)] for s in cpu if s != "null"}
    where = f"children on core {core}" if core is not None else "children on any core"
    print(
        f"{args.spans} server spans per run, {rounds} interleaved rounds, python "
        f"{sys.version.split()[0]}, {os.cpu_count()} cores, {where}; "
        "CPU us per span, median [min .. max]"
    )
    print(f"  {'exporter':28} {'process CPU':>24} {'own (above the SDK)':>26} delivered")
    for sender, label in SENDERS:
        mine = spread(own[sender]) if sender in own else f"{'-':>7}{'':17}"
        got = f"{delivered[sender]}/{sent}" if sender in delivered else "-"
        print(f"  {label:28} {spread(cpu[sender]):>24} {mine:>26} {got}")
    for sender, label in SENDERS[2:]:
        ratios = [mdr / otlp for mdr, otlp in zip(own[sender], own["otlp"], strict=True)]
        ratio = statistics.median(own[sender]) / statistics.median(own["otlp"])
        print(
            f"ratio {label} own / OTLP own: {ratio:.2f}x (per round {min(ratios):.2f} .. "
            f"{max(ratios):.2f}) [target <= 0.5]"
        )


if __name__ == "__main__":
    main()
