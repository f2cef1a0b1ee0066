"""What py-mdr tells on stderr, on its own: once per refusal, losses at start then once a minute."""

from __future__ import annotations

from py_mdr.delivery.report import SUMMARY_INTERVAL, Reporter, describe, reason_words
from py_mdr.hec.errors import HECAuthError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reporter(spooled: bool = False) -> tuple[Reporter, list[str], Clock]:
    lines: list[str] = []
    clock = Clock()
    return (
        Reporter(
            "MDRHandler to https://mdr:8088", spooled=spooled, clock=clock, write=lines.append
        ),
        lines,
        clock,
    )


def test_losses_are_told_when_they_start_then_summed_up_once_a_minute() -> None:
    told, lines, clock = reporter()
    told.losses({"queue_full": 3})
    assert len(lines) == 1 and "started losing records: 3 queue_full" in lines[0]
    for second in range(1, 60):
        clock.now += 1
        told.losses({"queue_full": 3 + second})
    assert len(lines) == 1  # quiet within the minute
    clock.now += 1
    told.losses({"queue_full": 70, "deadline": 5}, "could not connect")
    assert len(lines) == 2
    assert "lost 72 more record(s)" in lines[1]
    assert "67 queue_full (the memory queue was full)" in lines[1]
    assert "5 deadline" in lines[1] and "most recent error: could not connect" in lines[1]
    clock.now += SUMMARY_INTERVAL
    told.losses({"queue_full": 70, "deadline": 5})
    assert len(lines) == 2  # nothing new, nothing said


def test_a_refusal_is_told_once_per_kind_with_what_happens_to_records() -> None:
    told, lines, _ = reporter(spooled=True)
    error = HECAuthError("invalid token; check MDR_TOKEN", status=403, hec_code=4)
    told.refused("auth", error)
    told.refused("auth", error)
    assert len(lines) == 1
    assert "check MDR_TOKEN" in lines[0] and "kept in the spool" in lines[0]


def test_the_closing_summary_names_causes_in_words_and_what_is_left() -> None:
    told, lines, _ = reporter()
    told.final(sent=10, dropped={}, in_flight=0)
    assert lines == []  # nothing lost: nothing to say
    told.final(
        sent=10,
        dropped={"rejected_413": 1, "shutdown": 2},
        in_flight=3,
        left_in_spool=4,
        spool_dir="/var/spool/mdr",
        unconfirmed=5,
    )
    (line,) = lines
    assert "3 record(s) not delivered: 2 shutdown (still queued when close ran out" in line
    assert "1 rejected_413 (refused by MDR with HTTP 413)" in line
    assert (
        "3 still being sent at close" in line and "5 accepted by MDR but not acknowledged" in line
    )
    assert "4 left in the spool /var/spool/mdr" in line and line.endswith("10 sent")


def test_every_reason_reads_as_words() -> None:
    assert reason_words("not_hec") == "the endpoint did not answer like HEC"
    assert reason_words("some_new_reason") == "some new reason"
    assert describe({"a": 1, "b": 2}).startswith("2 b")
