"""AsyncMDRClient against the real receiver: the event loop never stalls, MDRClient's rules hold."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable
from typing import Any

import pytest

import py_mdr
from py_mdr import config
from py_mdr.async_client import AsyncMDRClient
from py_mdr.client import MDRClient, MDRDeliveryError
from py_mdr.hec.reports import SendReport
from py_mdr.hec.retry import RetryPolicy
from py_mdr.sink import HECSink
from py_mdr.validate import validate

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=3.0)
HEARTBEAT = 0.005
EVENT = {"class_uid": 1008, "message": "from asyncio"}


async def with_heartbeat(work: Awaitable[Any]) -> tuple[float, float, BaseException | None]:
    """Run ``work`` while a 5 ms heartbeat ticks: (longest stall of a tick, seconds, error)."""
    done = asyncio.Event()
    stall = 0.0

    async def heartbeat() -> None:
        nonlocal stall
        for _ in range(20_000):  # bounded: 100 s of ticks at most
            if done.is_set():
                return
            before = time.monotonic()
            await asyncio.sleep(HEARTBEAT)
            stall = max(stall, time.monotonic() - before - HEARTBEAT)

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(HEARTBEAT * 4)  # the heartbeat is running before the send starts
    started = time.monotonic()
    error: BaseException | None = None
    try:
        await work
    except Exception as exc:
        error = exc
    took = time.monotonic() - started
    done.set()
    await beat
    return stall, took, error


def send_threads_left(wait: float = 2.0) -> list[threading.Thread]:
    """py-mdr's async threads still alive after up to ``wait`` seconds (they end on their own)."""
    for _ in range(int(wait / 0.01)):
        left = [t for t in threading.enumerate() if t.name.startswith("py-mdr-async")]
        if not left:
            break
        time.sleep(0.01)
    return left


def test_a_hanging_endpoint_never_stalls_the_loop_and_send_raises_in_time(sink: HECSink) -> None:
    sink.hang(30.0)

    async def main() -> tuple[float, float, BaseException | None]:
        async with AsyncMDRClient("async", host=sink.url, token=sink.token, timeout=0.5) as c:
            return await with_heartbeat(c.send(EVENT))

    stall, took, error = asyncio.run(main())
    assert isinstance(error, MDRDeliveryError)
    assert error.report.dropped == {"deadline": 1} and len(error.report.undelivered) == 1
    assert 0.45 <= took < 0.8  # raised at its timeout (0.5 s), with scheduling slack
    assert stall < 0.050, f"the heartbeat stalled {stall * 1000:.1f} ms"


def test_send_send_batch_and_health_deliver_as_mdr_client_does(sink: HECSink) -> None:
    async def main() -> tuple[SendReport, SendReport, bool]:
        async with AsyncMDRClient("async", host=sink.url, token=sink.token, retry=FAST) as c:
            one = await c.send(EVENT)
            many = await c.send_batch({**EVENT, "message": str(n)} for n in range(3))
            health = await c.health(timeout=2.0)
            return one, many, health.ok

    one, many, healthy = asyncio.run(main())
    assert one.delivered == 1 and many.delivered == 3 and healthy
    sent = [r.envelope_count for r in sink.requests if r.path == "/services/collector/event"]
    assert sent == [1, 3]  # the batch went as one request
    assert [validate(event) for event in sink.events] == [[]] * 4  # completed like MDRClient's
    (envelope, *_) = sink.envelopes
    assert envelope["sourcetype"] == "pymdr::async" and envelope["source"] == "async"


def test_a_dict_as_given_and_a_model_go_out_as_with_mdr_client(sink: HECSink) -> None:
    from py_mdr.ocsf_models.events.system_activity.event_log_activity import EventLogActivity

    async def main() -> None:
        async with AsyncMDRClient("async", host=sink.url, token=sink.token) as c:
            await c.send(EVENT, as_given=True)
            await c.send(EventLogActivity(message="model", log_name="n"))

    asyncio.run(main())
    given, model = sink.events
    assert given == EVENT and model["message"] == "model" and model["class_uid"] == 1008


def test_errors_are_mdr_clients(sink: HECSink) -> None:
    async def main() -> list[BaseException]:
        errors: list[BaseException] = []
        async with AsyncMDRClient("async", host=sink.url, token="wrong-token") as c:
            for bad in (c.send(EVENT), c.send("not an event"), c.send({})):
                try:
                    await bad
                except Exception as exc:
                    errors.append(exc)
        return errors

    refused, not_event, empty = asyncio.run(main())
    assert isinstance(refused, MDRDeliveryError) and refused.report.dropped == {"auth": 1}
    assert "wrong-token" not in str(refused)
    assert isinstance(not_event, TypeError) and isinstance(empty, ValueError)


def test_configuration_is_mdr_clients() -> None:
    async_parameters = inspect.signature(AsyncMDRClient.__init__).parameters
    assert async_parameters == inspect.signature(MDRClient.__init__).parameters
    with pytest.raises(config.ConfigError, match="MDR_HOST"):
        AsyncMDRClient("app", token="t")
    with pytest.raises(ValueError, match="printable ASCII"):
        AsyncMDRClient("has space", host="h:8088", token="t")
    client = AsyncMDRClient("app", host="h:8088", token="secret-token-1", timeout=7)
    assert client.timeout == 7 and client.url == "https://h:8088"
    assert "secret-token-1" not in repr(client)
    assert py_mdr.AsyncMDRClient is AsyncMDRClient
    assert py_mdr.client.AsyncMDRClient is AsyncMDRClient


def test_a_cancelled_send_returns_at_once_and_keeps_its_report(sink: HECSink) -> None:
    sink.hang(30.0)

    async def main() -> tuple[float, AsyncMDRClient]:
        client = AsyncMDRClient("async", host=sink.url, token=sink.token, timeout=1.0)
        send = asyncio.create_task(client.send(EVENT))
        await asyncio.sleep(0.2)  # the request is in flight, the receiver hangs
        started = time.monotonic()
        send.cancel()
        with pytest.raises(asyncio.CancelledError):
            await send
        cancelled_in = time.monotonic() - started
        await client.aclose()  # waits (without blocking the loop) for the abandoned send
        return cancelled_in, client

    cancelled_in, client = asyncio.run(main())
    assert cancelled_in < 0.05
    (report,) = client.abandoned
    assert not report.ok and report.delivered == 0 and len(report.undelivered) == 1
    assert send_threads_left() == []  # no thread outlives the send's deadline


def test_the_deadline_starts_at_the_call_even_behind_another_send(sink: HECSink) -> None:
    sink.hang(30.0)

    async def main() -> list[float]:
        async with AsyncMDRClient("async", host=sink.url, token=sink.token, timeout=0.8) as c:

            async def timed(delay: float) -> float:
                await asyncio.sleep(delay)
                started = time.monotonic()
                with pytest.raises(MDRDeliveryError):
                    await c.send(EVENT)
                return time.monotonic() - started

            return list(await asyncio.gather(timed(0), timed(0.2)))

    first, second = asyncio.run(main())
    assert first < 1.3 and second < 1.3  # the second waited behind the first, within its own


def test_wait_for_a_shorter_timeout_cancels_without_stalling(sink: HECSink) -> None:
    sink.hang(30.0)

    async def main() -> tuple[float, float, BaseException | None]:
        async with AsyncMDRClient("async", host=sink.url, token=sink.token, timeout=1.0) as c:
            return await with_heartbeat(asyncio.wait_for(c.send(EVENT), 0.2))

    stall, took, error = asyncio.run(main())
    assert isinstance(error, asyncio.TimeoutError) and took < 0.4 and stall < 0.050


def test_a_send_after_aclose_fails_as_mdr_clients_does(sink: HECSink) -> None:
    async def main() -> BaseException | None:
        client = AsyncMDRClient("async", host=sink.url, token=sink.token)
        await client.aclose()
        await client.aclose()  # idempotent
        try:
            await client.send(EVENT)
        except MDRDeliveryError as error:
            return error
        return None

    error = asyncio.run(main())
    assert isinstance(error, MDRDeliveryError) and error.report.dropped == {"closed": 1}
    assert sink.requests == [] and send_threads_left() == []
