"""The SIGTERM opt-in, ``drain_on_sigterm``: each case in a process of its own."""

from __future__ import annotations

import signal
import threading

import pytest
from processes import run_child

from py_mdr import drain_on_sigterm
from py_mdr.sink import HECSink

pytestmark = pytest.mark.timeout(60)


def run_with(sink: HECSink, code: str) -> tuple[int, str, str]:
    result = run_child(f"import sys; sys.argv[1:] = {[sink.url]!r}\n" + code, timeout=30)
    return result.returncode, result.stdout, result.stderr


PREAMBLE = """
import logging, os, signal, sys, threading, time
from py_mdr import drain_on_sigterm
from py_mdr.handler import MDRHandler
log = logging.getLogger("sigterm")
log.addHandler(MDRHandler(host=sys.argv[1], token="test-token", linger=30.0))
log.propagate = False
"""

LANDS_ELSEWHERE = (
    PREAMBLE
    + """
drain_on_sigterm()
log.warning("queued before SIGTERM")

def elsewhere():
    time.sleep(0.3)
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # the kernel chose this thread

threading.Thread(target=elsewhere, daemon=True).start()
started = time.monotonic()
never = threading.Lock()
never.acquire()
try:
    never.acquire()  # only a signal of the main thread's own ends this wait
finally:
    print("waited", round(time.monotonic() - started, 2), flush=True)
"""
)


def test_a_sigterm_another_thread_received_still_drains_a_main_thread_blocked_in_a_lock(
    sink: HECSink,
) -> None:
    # CPython runs the handler only in the main thread, and only once it runs Python code: the
    # watcher repeats the signal to the main thread, whose wait it interrupts.
    code, out, err = run_with(sink, LANDS_ELSEWHERE)
    assert code == 143, err[-3000:]
    waited = float(out.split()[-1])
    assert 0.3 <= waited < 3.0, out
    assert sink.wait_for_events(1, timeout=5)
    assert sink.events[0]["message"] == "queued before SIGTERM"


CHAINED = (
    PREAMBLE
    + """
def theirs(signum, frame):
    print("their handler ran", flush=True)
    os._exit(7)

signal.signal(signal.SIGTERM, theirs)
drain_on_sigterm()
log.warning("queued before SIGTERM")
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(10)
"""
)


def test_a_handler_installed_before_runs_after_the_queue_is_flushed(sink: HECSink) -> None:
    code, out, err = run_with(sink, CHAINED)
    assert code == 7, err[-3000:]
    assert "their handler ran" in out
    assert sink.event_count == 1  # sent before their handler ended the process


IGNORED = (
    PREAMBLE
    + """
signal.signal(signal.SIGTERM, signal.SIG_IGN)
drain_on_sigterm()
print("still ignored", signal.getsignal(signal.SIGTERM) is signal.SIG_IGN, flush=True)
"""
)


THEIR_WAKEUP_FD = (
    PREAMBLE
    + """
import socket
reader, writer = socket.socketpair()
writer.setblocking(False)
signal.set_wakeup_fd(writer.fileno())
drain_on_sigterm()
kept = signal.set_wakeup_fd(writer.fileno()) == writer.fileno()
watching = any(t.name == "py-mdr-sigterm" for t in threading.enumerate())
print("kept", kept, "watching", watching, flush=True)
"""
)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (IGNORED, "still ignored True"),
        # An asyncio loop with signal handlers reads it; py-mdr then does without its watcher.
        (THEIR_WAKEUP_FD, "kept True watching False"),
    ],
    ids=["an ignored SIGTERM stays ignored", "an application's wakeup fd is kept"],
)
def test_what_the_application_set_up_itself_is_left_alone(
    sink: HECSink, script: str, expected: str
) -> None:
    code, out, err = run_with(sink, script)
    assert code == 0, err[-3000:]
    assert expected in out


PARKED = (
    PREAMBLE
    + """
drain_on_sigterm()
pid = os.fork()
if pid == 0:
    before = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    inherited = signal.set_wakeup_fd(-1)  # -1: the parent's watcher pipe was let go
    log.warning("from the child")
    after = getattr(signal.getsignal(signal.SIGTERM), "_py_mdr_drain", False)
    watching = any(t.name == "py-mdr-sigterm" for t in threading.enumerate())
    print("child", before, inherited, after, watching, flush=True)
    log.handlers[0].flush(5)
    os._exit(0)
os.waitpid(pid, 0)
print("parent", getattr(signal.getsignal(signal.SIGTERM), "_py_mdr_drain", False), flush=True)
"""
)


def test_a_forked_child_takes_the_drain_handler_back_with_its_first_record(sink: HECSink) -> None:
    # Until it queues something, a forked child has nothing to drain: SIGTERM keeps its default
    # action there, which ends an idle Pool worker wherever it waits.
    code, out, err = run_with(sink, PARKED)
    assert code == 0, err[-3000:]
    assert "child True -1 True True" in out
    assert "parent True" in out
    assert sink.wait_for_events(1, timeout=5)


BORN_INTO_SIGTERM = """
import os, signal, sys
# Registered before py-mdr's own hook, so it runs first in the child: a SIGTERM that arrives
# while the child is being born, before py-mdr could park its handler.
os.register_at_fork(after_in_child=lambda: os.kill(os.getpid(), signal.SIGTERM))
import logging
from py_mdr import drain_on_sigterm
from py_mdr.handler import MDRHandler
logging.getLogger().addHandler(MDRHandler(host=sys.argv[1], token="test-token"))
drain_on_sigterm()
pid = os.fork()
if pid == 0:
    print("the child lived on", flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child ended by signal", os.WTERMSIG(status) if os.WIFSIGNALED(status) else None, flush=True)
"""


def test_a_sigterm_sent_while_a_child_is_being_born_ends_it(sink: HECSink) -> None:
    # Pool.terminate() can signal a worker the scheduler has not run yet. Tripping the inherited
    # handler there, then parking, would lose the signal and leave the pool waiting forever.
    code, out, err = run_with(sink, BORN_INTO_SIGTERM)
    assert code == 0, err[-3000:]
    assert "the child lived on" not in out
    assert f"child ended by signal {int(signal.SIGTERM)}" in out


def test_it_must_be_called_from_the_main_thread() -> None:
    failures: list[BaseException] = []

    def call() -> None:
        try:
            drain_on_sigterm()
        except RuntimeError as error:
            failures.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(5)
    assert failures and "main thread" in str(failures[0])
