"""The handler's queue and worker on their own: batching, bounds, flush/close, fork, counters.

``process`` here is a plain recording function (the HTTP side is proved in test_handler.py);
waits are short and every one has a timeout.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from py_mdr.delivery import Delivery, estimate_size, sizing
from py_mdr.delivery import worker as delivery_module
from py_mdr.hec.reports import SendReport
from py_mdr.internal import is_sending

pytestmark = pytest.mark.timeout(30)


class Recorder:
    """A ``process`` callback that records batches; it can be held (to simulate a slow send)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.deadlines: list[float | None] = []
        self.threads: set[str] = set()
        self.sending_flags: list[bool] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.fail_with: Exception | None = None
        self.drop_reason: str | None = None

    def __call__(self, envelopes: list[bytes], deadline: float | None) -> SendReport:
        items = [int(envelope) for envelope in envelopes]
        self.entered.set()
        self.threads.add(threading.current_thread().name)
        self.sending_flags.append(is_sending())
        self.release.wait(10)
        if self.fail_with is not None:
            raise self.fail_with
        self.batches.append(list(items))
        self.deadlines.append(deadline)
        report = SendReport(retries=1)
        if self.drop_reason:
            report.drop(self.drop_reason, len(items))
        else:
            report.delivered = len(items)
        return report

    @property
    def items(self) -> list[int]:
        return [item for batch in self.batches for item in batch]


def encode_ints(items: list[int]) -> tuple[list[bytes], dict[str, int]]:
    """Each item's envelope is its number as text (so the recorder can read it back)."""
    return [str(item).encode() for item in items], {}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make(recorder: Recorder) -> Iterator[Callable[..., Delivery[int]]]:
    made: list[Delivery[int]] = []

    def build(**options: object) -> Delivery[int]:
        options.setdefault("linger", 0.05)
        delivery: Delivery[int] = Delivery(
            recorder,
            encode=encode_ints,
            **options,  # type: ignore[arg-type]
        )
        made.append(delivery)
        return delivery

    yield build
    recorder.release.set()
    for delivery in made:
        delivery.close(1.0)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "py-mdr-delivery" and t.is_alive()]


# ---------------------------------------------------------------- batching


def test_no_thread_until_first_put(make: Callable[..., Delivery[int]], recorder: Recorder) -> None:
    before = len(worker_threads())
    delivery = make()
    assert len(worker_threads()) <= before
    delivery.put(1, 10)
    assert delivery.flush(5)
    assert recorder.threads == {"py-mdr-delivery"}
    assert recorder.sending_flags == [True]  # the worker runs inside internal.sending()


def test_a_full_batch_goes_out_without_waiting_for_linger(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(batch_size=10, linger=30.0)
    for i in range(10):
        delivery.put(i, 1)
    assert wait_until(lambda: recorder.items == list(range(10)), 5)


def test_batches_hold_at_most_batch_size_in_order(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(batch_size=10, linger=30.0)
    for i in range(25):
        delivery.put(i, 1)
    assert delivery.flush(5)
    assert recorder.items == list(range(25))
    assert recorder.batches[0] == list(range(10))
    assert all(1 <= len(batch) <= 10 for batch in recorder.batches)


def test_a_lone_record_waits_about_linger_then_goes(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(batch_size=100, linger=0.3)
    start = time.monotonic()
    delivery.put(7, 1)
    assert wait_until(lambda: recorder.items == [7], 5)
    elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 3.0


def test_what_is_left_after_a_full_batch_waits_for_company_within_linger(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    # a burst of 15 with batch_size 10: the first 10 go at once; the 5 left over wait (a small
    # body of leftovers compresses badly) until the next 5 make a batch, or until the linger
    # of the burst's oldest item ends
    delivery = make(batch_size=10, linger=2.0)
    recorder.release.clear()  # hold the first send, so all 15 are queued before the worker looks
    for i in range(15):
        delivery.put(i, 1)
    assert recorder.entered.wait(5)
    recorder.release.set()
    assert wait_until(lambda: recorder.items == list(range(10)), 5)
    time.sleep(0.3)  # well within the linger: the leftovers are still waiting
    assert recorder.batches == [list(range(10))]
    for i in range(15, 20):
        delivery.put(i, 1)
    assert wait_until(lambda: len(recorder.batches) == 2, 5)
    assert recorder.batches[1] == list(range(10, 20))  # one full batch, not 5 and 5
    delivery.put(20, 1)
    started = time.monotonic()
    assert wait_until(lambda: recorder.items == list(range(21)), 6)
    assert 1.5 <= time.monotonic() - started < 5.0  # alone, it goes when its linger ends


def test_batches_are_bounded_by_bytes(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(batch_size=100, batch_bytes=100, linger=30.0)
    recorder.release.clear()
    for i in range(7):
        delivery.put(i, 40)  # the third crosses 100 bytes in the queue: the worker wakes
    recorder.release.set()
    assert delivery.flush(5)
    assert recorder.items == list(range(7))
    assert all(len(batch) <= 2 for batch in recorder.batches)  # 2 x 40 <= 100 < 3 x 40


def test_an_item_larger_than_a_batch_still_goes_alone(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(batch_bytes=100)
    delivery.put(1, 500)
    delivery.put(2, 10)
    assert delivery.flush(5)
    assert recorder.batches == [[1], [2]]


# ---------------------------------------------------------------- bounds


def test_record_bound_drops_and_counts(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    recorder.release.clear()
    delivery = make(max_records=5, batch_size=2, linger=0.0)
    delivery.put(0, 1)
    delivery.put(1, 1)
    assert recorder.entered.wait(5)  # the worker holds [0, 1] (or [0]) in a send that hangs
    accepted = [delivery.put(i, 1) for i in range(2, 20)]
    stats = delivery.stats()
    assert stats.queue_depth == 5 and stats.queue_peak == 5
    taken = stats.queued - stats.queue_depth  # what the worker took out before it got stuck
    assert taken in (1, 2)
    assert stats.dropped == {"queue_full": 20 - stats.queued}
    assert accepted.count(False) == stats.dropped["queue_full"]
    recorder.release.set()
    assert delivery.flush(5)
    assert delivery.stats().sent == stats.queued


def test_byte_bound_drops_and_counts(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(max_bytes=100, linger=30.0, batch_bytes=10_000)
    assert [delivery.put(i, 30) for i in range(4)] == [True, True, True, False]
    assert not delivery.put(99, 101)  # could never fit
    stats = delivery.stats()
    assert stats.queue_bytes == 90 and stats.queue_bytes_peak == 90
    assert stats.dropped == {"queue_full": 1, "oversize": 1}
    assert delivery.flush(5)
    assert recorder.items == [0, 1, 2]
    assert delivery.stats().queue_bytes == 0


def test_put_many_queues_in_order_and_counts_what_does_not_fit(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(max_records=6, max_bytes=100, linger=30.0, batch_bytes=10_000)
    assert delivery.put_many([(0, 10), (1, 10)]) == 0  # all fit: taken in at once
    delivery.append(2, 10)  # the lane goes in first, as with put()
    # past the record bound partway: the ones that fit go in, in order, the rest are counted
    assert delivery.put_many([(i, 10) for i in range(3, 9)]) == 3
    assert delivery.put_many([(50, 101)]) == 1  # could never fit
    stats = delivery.stats()
    assert (stats.queued, stats.queue_depth, stats.queue_peak) == (6, 6, 6)
    assert stats.queue_bytes == 60 and stats.queue_bytes_peak == 60
    assert stats.dropped == {"queue_full": 3, "oversize": 1}
    assert delivery.put_many([]) == 0
    assert delivery.flush(5)
    assert recorder.items == [0, 1, 2, 3, 4, 5]


def test_a_stretch_put_at_once_that_fills_a_batch_wakes_the_worker(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(batch_size=4, linger=30.0)
    assert delivery.put_many([(0, 1), (1, 1)]) == 0
    assert delivery.put_many([(2, 1), (3, 1), (4, 1)]) == 0  # crosses batch_size: sent now
    assert wait_until(lambda: recorder.items[:4] == [0, 1, 2, 3], timeout=5)


def test_block_mode_waits_for_room(make: Callable[..., Delivery[int]], recorder: Recorder) -> None:
    recorder.release.clear()
    delivery = make(max_records=2, batch_size=1, linger=0.0, block=True, block_timeout=5.0)
    delivery.put(0, 1)
    assert recorder.entered.wait(5)  # the worker holds item 0
    delivery.put(1, 1)
    delivery.put(2, 1)  # the queue is now full
    done = threading.Event()

    def put_and_tell() -> None:
        delivery.put(3, 1)
        done.set()

    threading.Thread(target=put_and_tell, daemon=True).start()
    assert not done.wait(0.2)  # blocked: no room
    recorder.release.set()
    assert done.wait(5)
    assert delivery.flush(5)
    assert recorder.items == [0, 1, 2, 3]
    assert delivery.stats().dropped == {}


def test_block_mode_gives_up_after_block_timeout(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    recorder.release.clear()
    delivery = make(max_records=1, batch_size=1, linger=0.0, block=True, block_timeout=0.2)
    delivery.put(0, 1)
    assert recorder.entered.wait(5)
    delivery.put(1, 1)
    start = time.monotonic()
    assert not delivery.put(2, 1)
    assert 0.15 <= time.monotonic() - start < 3
    assert delivery.stats().dropped == {"queue_full": 1}


# ---------------------------------------------------------------- flush and close


def test_flush_is_bounded(make: Callable[..., Delivery[int]], recorder: Recorder) -> None:
    recorder.release.clear()
    delivery = make()
    delivery.put(1, 1)
    start = time.monotonic()
    assert delivery.flush(0.2) is False
    assert time.monotonic() - start < 2
    recorder.release.set()
    assert delivery.flush(5) is True


def test_flush_from_the_worker_returns_at_once(make: Callable[..., Delivery[int]]) -> None:
    results: list[bool] = []
    holder: list[Delivery[int]] = []

    def process(envelopes: list[bytes], deadline: float | None) -> SendReport:
        results.append(holder[0].flush(10))  # would deadlock if it waited for itself
        return SendReport(delivered=len(envelopes))

    delivery: Delivery[int] = Delivery(process, encode=encode_ints, linger=0.0)
    holder.append(delivery)
    delivery.put(1, 1)
    assert delivery.flush(5)
    assert results == [False]
    delivery.close(1)


def test_close_drains_then_refuses(make: Callable[..., Delivery[int]], recorder: Recorder) -> None:
    delivery = make(linger=30.0)
    for i in range(10):
        delivery.put(i, 1)
    stats = delivery.close(5)
    assert recorder.items == list(range(10))
    assert recorder.deadlines[-1] is not None  # sends during close are bounded by its deadline
    assert stats.sent == 10 and stats.dropped == {} and stats.retried == 1
    assert not delivery.put(11, 1)
    assert delivery.stats().dropped == {"closed": 1}
    assert delivery.close(5) == delivery.stats()  # idempotent


def test_close_within_deadline_counts_what_is_left(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    recorder.release.clear()
    delivery = make(batch_size=2, linger=30.0)
    for i in range(10):
        delivery.put(i, 1)
    assert recorder.entered.wait(5)
    interrupted: list[float] = []
    start = time.monotonic()
    stats = delivery.close(0.5, interrupt=lambda: interrupted.append(time.monotonic() - start))
    elapsed = time.monotonic() - start
    assert elapsed < 1.5
    assert interrupted and interrupted[0] < 0.5  # before the deadline, after the drain time
    assert stats.in_flight == 2  # the send that never returned: outcome unknown
    assert stats.dropped == {"shutdown": 8}
    assert stats.queue_depth == 0 and stats.queue_bytes == 0


def test_process_errors_are_counted_and_shown_once(
    make: Callable[..., Delivery[int]], recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder.fail_with = RuntimeError("bug in process")
    delivery = make(batch_size=1, linger=0.0)
    for i in range(3):
        delivery.put(i, 1)
    assert delivery.flush(5)
    assert delivery.stats().dropped == {"error": 3}
    err = capsys.readouterr().err
    assert err.count("bug in process") == 1
    recorder.fail_with = None
    delivery.put(9, 1)
    assert delivery.flush(5) and recorder.items == [9]  # the worker survived


def test_transport_drops_are_counted_by_reason(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    recorder.drop_reason = "auth"
    delivery = make()
    for i in range(4):
        delivery.put(i, 1)
    assert delivery.flush(5)
    stats = delivery.stats()
    assert stats.dropped == {"auth": 4} and stats.sent == 0 and stats.dropped_total == 4


def test_stats_snapshot_is_a_copy(make: Callable[..., Delivery[int]]) -> None:
    delivery = make()
    delivery.count("emit_error")
    snapshot = delivery.stats()
    snapshot.dropped["emit_error"] = 99
    assert delivery.stats().dropped == {"emit_error": 1}
    assert pickle.loads(pickle.dumps(snapshot)) == snapshot


# ---------------------------------------------------------------- append (the lock-free lane)


def test_appended_and_put_items_go_out_in_the_order_they_came(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(batch_size=7, linger=0.01)
    for i in range(300):
        if i % 5 == 0:
            delivery.put(i, 1)
        else:
            delivery.append(i, 1)
    assert delivery.flush(5)
    assert recorder.items == list(range(300))
    assert delivery.stats().queued == delivery.stats().sent == 300


def test_appends_wake_a_lingering_worker_once_a_batch_is_there(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(batch_size=10, linger=30.0)
    delivery.put(0, 1)  # starts the worker, which then lingers for a fuller batch
    time.sleep(0.1)
    for i in range(1, 21):
        delivery.append(i, 1)
    # Long before the 30 s linger: the lane woke the worker as its batch filled up.
    assert wait_until(lambda: len(recorder.items) >= 10, 5)
    assert recorder.items[:10] == list(range(10))


def test_an_appended_item_is_not_left_waiting_for_the_idle_worker(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(batch_size=100, linger=0.05)
    delivery.put(0, 1)
    assert wait_until(lambda: recorder.items == [0], 5)
    time.sleep(0.1)  # the worker is idle now
    start = time.monotonic()
    delivery.append(1, 1)
    assert wait_until(lambda: recorder.items == [0, 1], 5)
    assert time.monotonic() - start < 0.9  # woken, not found by its idle re-check (1 s)


def test_the_lane_keeps_the_bounds_and_counts_what_does_not_fit(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    recorder.release.clear()  # the worker's first send hangs: nothing leaves the queue
    delivery = make(max_records=320, max_bytes=32_000, batch_size=1, linger=0.0)
    delivery.put(0, 1)
    assert recorder.entered.wait(5)
    deepest_lane = 0
    for i in range(1, 5001):
        delivery.append(i, 90)
        deepest_lane = max(deepest_lane, len(delivery._lane))
    delivery.append(9999, 2_000)  # larger than a lane item may be: put() takes it
    assert deepest_lane <= 320 // 16  # a sixteenth of the record bound
    stats = delivery.stats()  # takes the lane in
    assert stats.queue_depth <= 320 and stats.queue_bytes <= 32_000
    assert stats.dropped == {"queue_full": 5002 - stats.queued}
    recorder.release.set()
    assert delivery.flush(5)
    assert recorder.items == sorted(recorder.items)  # what was kept went out in order
    assert delivery.stats().sent == stats.queued


def test_items_appended_just_before_close_are_sent(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(linger=30.0)
    delivery.put(0, 1)
    for i in range(1, 50):
        delivery.append(i, 1)
    stats = delivery.close(5)
    assert recorder.items == list(range(50))
    assert stats.dropped == {}
    delivery.append(50, 1)  # after close: counted, like a put
    assert delivery.stats().dropped == {"closed": 1}


def test_block_mode_never_takes_the_lane(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    recorder.release.clear()
    delivery = make(max_records=32, batch_size=1, linger=0.0, block=True, block_timeout=0.2)
    delivery.put(0, 1)
    assert recorder.entered.wait(5)
    for i in range(1, 33):
        delivery.append(i, 1)
    start = time.monotonic()
    delivery.append(33, 1)  # the queue is full: waits block_timeout, then counts the drop
    assert time.monotonic() - start >= 0.15
    assert delivery.stats().dropped == {"queue_full": 1}
    recorder.release.set()


# ---------------------------------------------------------------- fork


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_forked_child_gets_an_empty_queue_and_its_own_worker(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    delivery = make(linger=30.0)
    forked: list[int] = []
    delivery.fork_hook = lambda: forked.append(1)
    delivery.put(1, 1)  # queued in the parent, not yet sent
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what its own worker sent, then leave at once
        code = 1
        try:
            before = delivery.stats()
            delivery.put(2, 1)
            flushed = delivery.flush(5)
            result = (before.queue_depth, before.queued, flushed, recorder.items, forked)
            os.write(write_end, pickle.dumps(result))
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    depth, queued, flushed, child_items, child_forked = pickle.loads(data)
    assert (depth, queued, flushed) == (0, 0, True)
    assert child_items == [2]  # the parent's item stayed the parent's
    assert child_forked == [1]
    assert delivery.flush(5)
    assert recorder.items == [1]


# ---------------------------------------------------------------- lifecycle details


def test_close_runs_finish_after_the_queue_is_drained(
    make: Callable[..., Delivery[int]], recorder: Recorder
) -> None:
    finished: list[tuple[list[int], float]] = []
    delivery = make(
        linger=30.0, finish=lambda deadline: finished.append((list(recorder.items), deadline))
    )
    for i in range(3):
        delivery.put(i, 1)
    assert delivery.flush(5)  # the worker is idle, the queue empty, when close comes
    assert len(finished) == 1  # a flush awaits the acknowledgements too
    start = time.monotonic()
    delivery.close(5)
    assert len(finished) == 2  # e.g. awaiting acknowledgements: it must get its turn
    items, deadline = finished[-1]
    assert items == [0, 1, 2]  # after every item was sent
    assert start < deadline <= start + 5  # bounded by the close deadline


def test_a_put_reentering_while_the_worker_starts_starts_no_second_worker(
    make: Callable[..., Delivery[int]], recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = make(linger=0.0)
    started: list[threading.Thread] = []

    class Reentering(threading.Thread):
        def start(self) -> None:
            started.append(self)
            if len(started) == 1:
                delivery.put(2, 1)  # what a signal handler that logs at this moment does
            super().start()

    def reentering_thread(target: Callable[[], object], name: str) -> threading.Thread:
        return Reentering(target=target, name=name, daemon=True)

    monkeypatch.setattr(delivery_module, "daemon_thread", reentering_thread)
    delivery.put(1, 1)
    assert delivery.flush(5)
    assert len(started) == 1
    assert sorted(recorder.items) == [1, 2]


# --- size estimate ------------------------------------------------------------------------------

_plain_values = st.one_of(
    st.text(max_size=40), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()
)


@given(
    st.dictionaries(
        st.one_of(st.text(max_size=20), st.integers()),
        st.one_of(_plain_values, st.lists(_plain_values, max_size=3)),
        max_size=20,
    )
)
def test_a_dict_of_strings_and_numbers_is_sized_as_the_walk_sizes_it(
    mapping: dict[object, object],
) -> None:
    # the one-loop path for plain attributes must agree with the general walk, which it skips
    assert estimate_size(mapping) == sizing._walk_size(mapping, 256)


def test_a_large_or_wide_value_counts_in_full() -> None:
    big = {"payload": "x" * 100_000}
    assert estimate_size(big) > 100_000
    assert estimate_size({"name": "é" * 1000}) > 4000  # not ASCII: up to 4 bytes a character
    nested = {"outer": {"inner": "y" * 50_000}}
    assert estimate_size(nested) > 50_000
    wide = {str(i): i for i in range(1000)}  # beyond the walk's budget: a flat rate per entry
    assert estimate_size(wide) >= 1000 * 3 * 8
