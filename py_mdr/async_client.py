"""``AsyncMDRClient``: ``MDRClient`` for asyncio code, without ever blocking the event loop.

Each send runs the blocking client on the client's own sending thread and the coroutine awaits
its result, so configuration, completion of dicts, errors, retries and the one deadline are
``MDRClient``'s (the deadline is set when the coroutine is called, so time queued behind another
send counts). Threads rather than an async HTTP library: the sending code stays one, no
dependency is added, and handing a send to a waiting thread costs tens of microseconds against
the milliseconds of the request (see the README's asyncio section for the measurement).

A send whose caller is cancelled stops being awaited at once; its thread goes on at most until
the send's deadline, and if it ends undelivered its report is kept in
:attr:`AsyncMDRClient.abandoned` (the envelopes included, to send again), never lost silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

from py_mdr.client import MDRClient, MDRDeliveryError
from py_mdr.hec.reports import HealthReport, SendReport, TransportStats
from py_mdr.hec.retry import RetryPolicy
from py_mdr.threads import daemon_thread

__all__ = ["AsyncMDRClient"]

_T = TypeVar("_T")

#: Reports of cancelled sends that were not delivered, kept at most (the oldest go first).
MAX_ABANDONED = 100


def _in_thread(function: Callable[[], _T], name: str) -> asyncio.Future[_T]:
    """Run ``function`` on a new daemon thread; the returned future (of the running loop) gets
    its result or exception. For calls too rare to keep a thread for (health, a send after
    ``aclose``); each thread ends when its call does."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def succeed(outcome: _T) -> None:
        if not future.cancelled():
            future.set_result(outcome)

    def fail(error: BaseException) -> None:
        if not future.cancelled():
            future.set_exception(error)

    def run() -> None:
        try:
            outcome = function()
        except BaseException as exc:  # handed over to the awaiting coroutine
            settle: Callable[[], None] = functools.partial(fail, exc)
        else:
            settle = functools.partial(succeed, outcome)
        # a loop closed meanwhile raises RuntimeError: nobody is waiting any more
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle)

    daemon_thread(run, name).start()
    return future


def _sending_thread() -> ThreadPoolExecutor:
    # One worker: the client sends one batch at a time anyway (acknowledgements and deadlines
    # are per send), and all its sends share one timeout, so a send queued here starts before
    # its own deadline: the one ahead of it ends by its earlier deadline.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="py-mdr-async-send")


_live: weakref.WeakSet[AsyncMDRClient] = weakref.WeakSet()


def _renew_after_fork() -> None:
    # the parent's sending thread does not exist in a child: its executor would never run a job
    for client in list(_live):
        client._sender = _sending_thread()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_after_fork)


class AsyncMDRClient:
    """``MDRClient`` for asyncio: ``async with AsyncMDRClient(name, host=..., token=...) as c:
    await c.send(event)``. Arguments, environment variables and defaults are ``MDRClient``'s.

    ``send``, ``send_batch`` and ``health`` never block the event loop; ``send`` raises
    :class:`~py_mdr.client.MDRDeliveryError` within ``timeout`` like the blocking client.
    Sends on one client go out one at a time (acknowledgements and deadlines are per send):
    time spent waiting behind another send counts against the deadline.
    """

    def __init__(
        self,
        name: str | None = None,
        host: str | None = None,
        token: str | None = None,
        ssl_verify: bool | str | None = None,
        *,
        index: str | None = None,
        ca_bundle: str | None = None,
        client_cert: str | tuple[str, str] | None = None,
        client_key: str | None = None,
        timeout: float | None = None,
        use_ack: bool | None = None,
        compress: bool | None = None,
        retry: RetryPolicy | Mapping[str, float] | None = None,
        dataset_name: str | None = None,
        namespace: str | None = None,
    ) -> None:
        """Check and resolve the settings as ``MDRClient`` does (it builds one and raises its
        errors); no network I/O, and no thread starts before the first send."""
        self._client = MDRClient(
            name,
            host,
            token,
            ssl_verify,
            index=index,
            ca_bundle=ca_bundle,
            client_cert=client_cert,
            client_key=client_key,
            timeout=timeout,
            use_ack=use_ack,
            compress=compress,
            retry=retry,
            dataset_name=dataset_name,
            namespace=namespace,
        )
        self._sender = _sending_thread()
        self._closed = False
        _live.add(self)
        self._running: set[asyncio.Future[Any]] = set()
        #: Reports of sends whose caller was cancelled and that then ended undelivered (at most
        #: ``MAX_ABANDONED``, newest last); ``undelivered`` holds their envelopes.
        self.abandoned: deque[SendReport] = deque(maxlen=MAX_ABANDONED)

    def __repr__(self) -> str:
        return f"AsyncMDRClient(name={self.name!r}, url={self.url!r})"

    @property
    def name(self) -> str:
        """The source name; events go out with sourcetype ``pymdr::<name>``."""
        return self._client.name

    @property
    def url(self) -> str:
        """The HEC base URL events go to."""
        return self._client.url

    @property
    def timeout(self) -> float:
        """Seconds one send may take, retries and waiting behind another send included."""
        return self._client.timeout

    @property
    def stats(self) -> TransportStats:
        """Counters of the transport, as ``MDRClient.stats`` (``stats()`` reads the same)."""
        return self._client.stats

    async def send(self, event: Any, *, as_given: bool = False) -> SendReport:
        """Send one OCSF model or dict, as ``MDRClient.send``; the loop runs on meanwhile."""
        return await self.send_batch((event,), as_given=as_given)

    async def send_batch(self, events: Iterable[Any], *, as_given: bool = False) -> SendReport:
        """Send several events, as ``MDRClient.send_batch``; the deadline starts now."""
        deadline = time.monotonic() + self._client.timeout
        batch = list(events)  # taken here: the worker thread must not run the caller's iterator
        job = functools.partial(self._client._send_until, batch, deadline, as_given)
        if self._closed:  # fails at once, as MDRClient's send after close does
            work = _in_thread(job, "py-mdr-async-send")
        else:
            work = asyncio.get_running_loop().run_in_executor(self._sender, job)
        self._running.add(work)
        work.add_done_callback(self._running.discard)
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            work.add_done_callback(self._keep_abandoned)
            raise

    async def health(self, timeout: float = 5.0) -> HealthReport:
        """Ask the endpoint's health check, as ``MDRClient.health`` (never raises)."""
        return await _in_thread(lambda: self._client.health(timeout), "py-mdr-async-health")

    async def aclose(self) -> None:
        """Release connections; sends still running end now (a retry wait) or by their deadline
        (a request in flight), and the loop runs on meanwhile. Idempotent."""
        self._closed = True
        self._client.close()
        if self._running:
            await asyncio.wait(list(self._running))
        self._sender.shutdown(wait=False)

    async def __aenter__(self) -> AsyncMDRClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _keep_abandoned(self, work: asyncio.Future[Any]) -> None:
        error = work.exception() if not work.cancelled() else None
        if isinstance(error, MDRDeliveryError):
            self.abandoned.append(error.report)
