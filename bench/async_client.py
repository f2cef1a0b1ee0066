"""AsyncMDRClient: what a send costs the event loop, and what its thread costs per send.

Run: ``.venv/bin/python bench/async_client.py``. The receiver runs in a child process.

1. Stall: a 5 ms heartbeat runs while ``send`` waits on a receiver that hangs (1 s timeout);
   reports the heartbeat's longest and 99th-percentile late wake-up over several sends, and
   the same for the heartbeat alone (what the machine itself adds).
2. Cost: 1,000 sequential single-event sends to a receiver that answers at once, through
   ``MDRClient.send`` (blocking the loop), ``asyncio.to_thread(MDRClient.send)`` (the default
   executor) and ``AsyncMDRClient.send`` (its own sending thread); microseconds per send.
3. Hand-off: 3,000 no-op calls through a one-worker executor (what ``AsyncMDRClient`` uses),
   ``asyncio.to_thread`` and a new thread per call; microseconds per call. The network makes
   part 2 noisy on a busy machine; this is the part a design choice changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import sys
import time

from py_mdr.async_client import AsyncMDRClient, _in_thread, _sending_thread
from py_mdr.client import MDRClient, MDRDeliveryError

TOKEN = "bench-token"
EVENT = {"class_uid": 1008, "message": "bench", "log_name": "bench"}
SENDS = 1_000
HANDOFFS = 3_000
STALL_RUNS = 5
HEARTBEAT = 0.005
RECEIVER = """
import sys
from py_mdr.sink import HECSink
with HECSink(token=sys.argv[1], validate=False, max_events=100) as sink:
    if sys.argv[2] == "hang":
        sink.hang(30.0)
    print(sink.url, flush=True)
    sys.stdin.read()  # until the parent is done
"""


def receiver(mode: str) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", RECEIVER, TOKEN, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


async def stalls(url: str | None) -> list[float]:
    """The heartbeat's late wake-ups during the sends (or, without ``url``, as long idle)."""
    late: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        while not done.is_set():
            before = time.monotonic()
            await asyncio.sleep(HEARTBEAT)
            late.append(time.monotonic() - before - HEARTBEAT)

    beat = asyncio.create_task(heartbeat())
    if url is None:
        await asyncio.sleep(STALL_RUNS * 1.0)
    else:
        async with AsyncMDRClient("bench", host=url, token=TOKEN, timeout=1.0) as client:
            for _ in range(STALL_RUNS):
                with contextlib.suppress(MDRDeliveryError):
                    await client.send(EVENT)
    done.set()
    await beat
    return late


async def per_send(url: str) -> dict[str, float]:
    results: dict[str, float] = {}
    with MDRClient("bench", host=url, token=TOKEN) as blocking:
        blocking.send(EVENT)  # connection made before timing
        started = time.perf_counter()
        for _ in range(SENDS):
            blocking.send(EVENT)
        results["MDRClient.send (blocks the loop)"] = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(SENDS):
            await asyncio.to_thread(blocking.send, EVENT)
        results["asyncio.to_thread(MDRClient.send)"] = time.perf_counter() - started
    async with AsyncMDRClient("bench", host=url, token=TOKEN) as client:
        await client.send(EVENT)
        started = time.perf_counter()
        for _ in range(SENDS):
            await client.send(EVENT)
        results["AsyncMDRClient.send"] = time.perf_counter() - started
    return {name: seconds / SENDS * 1e6 for name, seconds in results.items()}


async def handoff() -> dict[str, float]:
    loop = asyncio.get_running_loop()
    own = _sending_thread()
    results: dict[str, float] = {}
    started = time.perf_counter()
    for _ in range(HANDOFFS):
        await loop.run_in_executor(own, _nothing)
    results["one-worker executor (AsyncMDRClient)"] = time.perf_counter() - started
    own.shutdown()
    started = time.perf_counter()
    for _ in range(HANDOFFS):
        await asyncio.to_thread(_nothing)
    results["asyncio.to_thread"] = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(HANDOFFS):
        await _in_thread(_nothing, "bench")
    results["a new thread per call"] = time.perf_counter() - started
    return {name: seconds / HANDOFFS * 1e6 for name, seconds in results.items()}


def _nothing() -> None:
    return None


def main() -> None:
    child, url = receiver("hang")
    try:
        late = asyncio.run(stalls(url))
    finally:
        child.communicate("")
    idle = asyncio.run(stalls(None))
    for what, ticks in ((f"{STALL_RUNS} sends to a hanging receiver", late), ("idle", idle)):
        p99 = statistics.quantiles(ticks, n=100)[98]
        print(
            f"heartbeat, {what} ({len(ticks)} ticks): "
            f"longest stall {max(ticks) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
        )
    child, url = receiver("answer")
    try:
        costs = asyncio.run(per_send(url))
    finally:
        child.communicate("")
    for name, micros in costs.items():
        print(f"{name:40s} {micros:8.0f} us per send")
    for name, micros in asyncio.run(handoff()).items():
        print(f"{name:40s} {micros:8.0f} us per hand-off")


if __name__ == "__main__":
    main()
