"""What a kill right after a burst loses with a spool: the backlog not yet on disk.

Run: ``.venv/bin/python bench/spool_kill.py [--records 20000] [--after 0.1] [--runs 3]``.

A child process logs ``--records`` lines as fast as it can through ``MDRHandler(spool_dir=...)``,
waits ``--after`` seconds and ends with ``os._exit`` (no exit handlers: a kill). A second
process then opens a handler on the same directory, which sends what the first left on disk,
and closes. The receiver counts which lines arrived: the lost ones are the burst's last lines,
those the worker had not yet mapped and written when the process died.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from py_mdr.sink import HECSink

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"

BURST = textwrap.dedent("""
    import logging, os, sys, time
    from py_mdr.handler import MDRHandler
    records, after = int(sys.argv[1]), float(sys.argv[2])
    log = logging.getLogger("burst")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(MDRHandler())
    started = time.perf_counter()
    for number in range(records):
        log.info("line %d", number)
    print(time.perf_counter() - started, flush=True)
    time.sleep(after)
    os._exit(0)
""")

ADOPT = textwrap.dedent("""
    from py_mdr.handler import MDRHandler
    handler = MDRHandler()
    handler.flush(30)
    handler.close()
""")


def one_run(sink: HECSink, records: int, after: float) -> tuple[float, int, int]:
    """(seconds the burst took, lines lost, duplicates) of one burst and kill."""
    sink.clear()
    with tempfile.TemporaryDirectory(prefix="spool-kill-") as spool:
        env = {**os.environ, "MDR_HOST": sink.url, "MDR_TOKEN": TOKEN, "MDR_SPOOL_DIR": spool}
        burst = subprocess.run(
            [sys.executable, "-c", BURST, str(records), str(after)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            cwd=ROOT,
        )
        subprocess.run([sys.executable, "-c", ADOPT], env=env, timeout=120, check=True, cwd=ROOT)
    time.sleep(0.2)
    numbers = [
        int(e["message"].rsplit(" ", 1)[1])
        for e in sink.events
        if str(e.get("message", "")).startswith("line ")
    ]
    return (
        float(burst.stdout.strip()),
        records - len(set(numbers)),
        len(numbers) - len(set(numbers)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Spool: what a kill after a burst loses.")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--after", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.records} lines logged at once, os._exit {args.after} s after the last one")
    with HECSink(token=TOKEN, validate=False) as sink:
        for run in range(1, args.runs + 1):
            took, lost, twice = one_run(sink, args.records, args.after)
            print(f"  run {run}: burst {took:.2f} s, lost {lost}, arrived twice {twice}")


if __name__ == "__main__":
    main()
