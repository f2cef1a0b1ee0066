"""What each gzip level costs and saves on the events ``MDRHandler`` sends.

Run: ``.venv/bin/python bench/gzip_levels.py [--records 8000]``. A handler sends ``--records``
lines (the bench's line: ``logger.info`` with 2 %-args and 3 ``extra`` fields) uncompressed to
the local receiver; the envelopes it received are written back as compact JSON in the order they
came, cut into bodies of ``batch_size`` (800) envelopes, and each body is compressed at every
level. Printed per record: bytes after gzip and the compression's CPU time, and both beside
level 7, py-mdr's default (``HECConfig.compress_level``), for both engines: the stdlib's zlib
and zlib-ng (what py-mdr uses, :mod:`py_mdr.hec.compression`). CPU times are the median of five
passes; the bytes do not vary.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import statistics
import time
from collections.abc import Callable

from zlib_ng import gzip_ng

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
    engines: dict[str, Callable[..., bytes]] = {"zlib": gzip.compress, "zlib-ng": gzip_ng.compress}
    rows = []
    for engine, compress in engines.items():
        for level in range(1, 10):
            size = sum(len(compress(body, compresslevel=level, mtime=0)) for body in data)
            times = []
            for _ in range(PASSES):
                start = time.process_time()
                for body in data:
                    compress(body, compresslevel=level, mtime=0)
                times.append(time.process_time() - start)
            rows.append((engine, level, size / count, statistics.median(times) / count * 1e6))
    base = {(engine, level): (size, cpu) for engine, level, size, cpu in rows}["zlib", default]
    raw = sum(map(len, data)) / count
    print(f"{count} records, {raw:.0f} B each as JSON, bodies of up to {BATCH} envelopes")
    versus = f"zlib {default}"
    print(
        f"{'engine':>8} {'level':>5} {'B/record':>9} {'us/record':>10} "
        f"{'bytes vs ' + versus:>16} {'CPU vs ' + versus:>14}"
    )
    for engine, level, size, cpu in rows:
        print(
            f"{engine:>8} {level:>5} {size:9.2f} {cpu:10.2f} {size / base[0]:15.2f}x "
            f"{cpu / base[1]:13.2f}x"
        )


if __name__ == "__main__":
    main()
