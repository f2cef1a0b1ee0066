"""The local receiver under abuse: peak memory while many large bodies arrive at once.

Run: ``.venv/bin/python bench/sink_memory.py [--clients 8] [--mb 90]``. A receiver
(``python -m py_mdr.sink --no-validate``) runs in a child process; ``--clients`` threads each
POST a ``--mb`` MB body to it at the same time, once with one huge event (refused: over 5 MB)
and once with 1 KB envelopes; the child's peak resident memory (VmHWM) is printed for each.
Pass ``--pythonpath DIR`` to measure another checkout of py-mdr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

import requests

ROOT = Path(__file__).resolve().parents[1]
AUTH = {"Authorization": "Splunk bench-token"}


def _bodies(megabytes: int) -> dict[str, bytes]:
    size = megabytes * 1_000_000
    head = b'{"time":1700000000,"host":"h","source":"s","sourcetype":"pymdr::bench","event":'
    one = head + b'{"message":"' + b"x" * (size - len(head) - 16) + b'"}}'
    small = json.dumps(
        {"time": 1, "host": "h", "source": "s", "sourcetype": "t", "event": {"message": "y" * 900}}
    ).encode()
    many = b"\n".join([small] * (size // (len(small) + 1)))
    return {"one huge event": one, "1 KB envelopes": many}


def _peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM: this measurement needs Linux")


def measure(label: str, data: bytes, clients: int, pythonpath: str) -> None:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    command = [sys.executable, "-m", "py_mdr.sink", "--port", "0", "--token", "bench-token"]
    with tempfile.TemporaryFile("w+") as printed:  # the receiver prints every event
        sink = subprocess.Popen(
            [*command, "--no-validate"], stdout=printed, text=True, env=env, cwd="/"
        )
        try:
            _run(label, data, clients, sink, printed)
        finally:
            sink.terminate()
            sink.wait(10)


def _banner(printed: TextIO) -> str:
    for _ in range(3000):  # up to 30 s
        printed.seek(0)
        line = printed.readline()
        if line.endswith("\n"):
            return line
        time.sleep(0.01)
    raise RuntimeError("the receiver did not start")


def _run(
    label: str, data: bytes, clients: int, sink: subprocess.Popen[str], printed: TextIO
) -> None:
    """Post ``data`` from ``clients`` threads at once; print the receiver's peak memory."""
    url = _banner(printed).split()[4]
    idle = _peak_kb(sink.pid)
    statuses: list[int] = []

    def post() -> None:
        try:
            answer = requests.post(
                url + "/services/collector/event", data=data, headers=AUTH, timeout=300
            )
            statuses.append(answer.status_code)
        except requests.RequestException as exc:
            statuses.append(-1)
            print(f"  {type(exc).__name__}: {exc}", file=sys.stderr)

    started = time.monotonic()
    threads = [threading.Thread(target=post) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    took = time.monotonic() - started
    peak = _peak_kb(sink.pid)
    print(
        f"{label:>16}: {clients} x {len(data) / 1e6:.0f} MB, answers {sorted(statuses)}, "
        f"{took:.1f} s; peak RSS {peak / 1024:.0f} MiB (idle {idle / 1024:.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--mb", type=int, default=90)
    parser.add_argument("--pythonpath", default=str(ROOT), help="the py-mdr checkout to measure")
    args = parser.parse_args()
    for label, data in _bodies(args.mb).items():
        measure(label, data, args.clients, args.pythonpath)


if __name__ == "__main__":
    main()
