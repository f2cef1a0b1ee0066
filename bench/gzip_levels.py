"""What each gzip level costs and saves on the events ``MDRHandler`` sends.

Run: ``.venv/bin/python bench/gzip_levels.py [--records 8000]``. A handler sends ``--records``
lines (the bench's line: ``logger.info`` with 2 %-args and 3 ``extra`` fields) uncompressed to
the local receiver; the envelopes it received are written back as compact JSON in the order they
came, cut into bodies of ``batch_size`` (800) envelopes, and each body is compressed at every
level. Printed per record: bytes after gzip and the compression's CPU time, and both beside
level 7, py-mdr's default (``HECConfig.compress_level``). CPU times are the median of five
passes; the bytes do not vary.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import statistics
import time

from py_mdr.handler import MDRHandler
from py_mdr.hec.config import HECConfig
from py_mdr.sink import HECSink

TOKEN = "bench-token"
BATCH = 800
PASSES = 5


def bodies(records: int) -> list[bytes]:
    """The envelopes of ``records`` bench lines, as bodies of up to ``BATCH`` envelopes."""
    with HECSink(token=TOKEN) as sink:
        handler = MDRHandler(host=sink.url, token=TOKEN, compress=False)
        logger = logging.getLogger("bench.app")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        extra = {"request_id": "r-1234", "tenant": "acme", "attempt": 2}
        for i in range(records):
            logger.info("user %s did %s", "alice", i, extra=extra)
            if i % 200 == 199:
                time.sleep(0.02)  # paced, as bench/run.py's paced mode
        handler.flush(60)
        logger.removeHandler(handler)
        handler.close()
        lines = [json.dumps(e, separators=(",", ":")).encode() for e in sink.envelopes]
    return [b"".join(lines[i : i + BATCH]) for i in range(0, len(lines), BATCH)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=8000)
    records = parser.parse_args().records
    data = bodies(records)
    count = records
    default = HECConfig(url="http://127.0.0.1", token=TOKEN).compress_level
    rows = []
    for level in range(1, 10):
        size = sum(len(gzip.compress(body, compresslevel=level, mtime=0)) for body in data)
        times = []
        for _ in range(PASSES):
            start = time.process_time()
            for body in data:
                gzip.compress(body, compresslevel=level, mtime=0)
            times.append(time.process_time() - start)
        rows.append((level, size / count, statistics.median(times) / count * 1e6))
    base = {level: (size, cpu) for level, size, cpu in rows}[default]
    raw = sum(map(len, data)) / count
    print(f"{count} records, {raw:.0f} B each as JSON, bodies of up to {BATCH} envelopes")
    print(
        f"{'level':>5} {'B/record':>9} {'us/record':>10} {'bytes vs ' + str(default):>12} "
        f"{'CPU vs ' + str(default):>10}"
    )
    for level, size, cpu in rows:
        print(f"{level:>5} {size:9.2f} {cpu:10.2f} {size / base[0]:11.2f}x {cpu / base[1]:9.2f}x")


if __name__ == "__main__":
    main()
