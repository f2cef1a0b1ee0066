"""MDRClient throughput: ``send_batch`` of 10,000 Event Log Activity models to a local receiver.

Run: ``.venv/bin/python bench/client.py``. Reports events per second, CPU microseconds per event
in this process (serialization, gzip and HTTP; the receiver runs in a child process so its work
is not counted), and bytes per event on the wire, with gzip and without.
"""

from __future__ import annotations

import subprocess
import sys
import time

from serialize import build

from py_mdr.client import MDRClient
from py_mdr.ocsf_models import EventLogActivity

EVENTS = 10_000
TOKEN = "bench-token"
RECEIVER = """
import sys, time
from py_mdr.sink import HECSink
with HECSink(token=sys.argv[1], validate=False, max_events=100) as sink:
    print(sink.url, flush=True)
    sys.stdin.read()  # until the parent is done
    print(sum(r.body_bytes for r in sink.requests), sink.event_count, flush=True)
"""


def run(compress: bool) -> tuple[float, float, float]:
    receiver = subprocess.Popen(
        [sys.executable, "-c", RECEIVER, TOKEN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdin is not None and receiver.stdout is not None
    url = receiver.stdout.readline().strip()
    events: list[EventLogActivity] = []
    for i in range(EVENTS):
        event = build()
        event.metadata.sequence = i
        events.append(event)
    with MDRClient("bench", host=url, token=TOKEN, compress=compress) as client:
        client.send_batch(events[:100])  # warm the connection
        wall, cpu = time.perf_counter(), time.process_time()
        client.send_batch(events)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out, _ = receiver.communicate("", timeout=60)
    wire, received = (int(v) for v in out.split())
    assert received == EVENTS + 100, received
    per_event_wire = wire / received
    return EVENTS / wall, cpu / EVENTS * 1e6, per_event_wire


def main() -> None:
    print(f"send_batch of {EVENTS} Event Log Activity events to a local receiver")
    print(f"{'body':8} {'events/s':>10} {'cpu us/event':>13} {'wire B/event':>13}")
    run(True)  # warm-up round: first-use costs (imports, caches) are not the steady state
    for compress in (True, False):
        rate, cpu, wire = run(compress)
        print(f"{'gzip' if compress else 'plain':8} {rate:10.0f} {cpu:13.1f} {wire:13.1f}")


if __name__ == "__main__":
    main()
