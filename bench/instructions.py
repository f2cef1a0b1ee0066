"""Instructions per record, counted by valgrind's callgrind: steadier than CPU time on a busy VM.

Run: ``.venv/bin/python bench/instructions.py [SENDER ...]`` (default: ``mdr_handler mdr_bare``;
the names are bench/senders.py's). Needs ``valgrind`` on the PATH. Each sender runs twice under
callgrind (all threads counted), logging 2,000 and then 6,000 paced records against a receiver
on loopback in this process; the difference divided by 4,000 is the pipeline's cost per record,
without the interpreter's start and the imports. Threads make the count vary by about 1% from
one run to the next.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from py_mdr.sink import HECSink

HERE = Path(__file__).resolve().parent
TOKEN = "bench-token"
FEW, MANY = 2_000, 6_000


def instructions(sender: str, url: str, records: int) -> int:
    """Every instruction of one ``senders.py`` run, all threads."""
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(HERE / "senders.py"),
        sender,
        url,
        TOKEN,
        str(records),
        "200",
        "20",
    ]
    env = dict(os.environ, PYTHONPATH=str(HERE), PYTHONHASHSEED="0")
    env["OTEL_BLRP_MAX_QUEUE_SIZE"] = str(records + 1_000)
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, check=True)
    found = re.search(r"refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output for {sender}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description="Instructions per record, by callgrind.")
    parser.add_argument("senders", nargs="*", default=["mdr_handler", "mdr_bare"])
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (on Debian: apt-get install valgrind)")
    with HECSink(token=TOKEN, validate=False) as hec:
        for sender in args.senders:
            few = instructions(sender, hec.url, FEW)
            many = instructions(sender, hec.url, MANY)
            print(f"{sender:20} {(many - few) / (MANY - FEW) / 1000:8.1f}k instructions per record")


if __name__ == "__main__":
    main()
