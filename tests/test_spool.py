"""The disk spool on its own: framing, adoption between processes' files, damage, the bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from py_mdr.config import ConfigError
from py_mdr.delivery.spool import Spool, SpoolBatch, frame, parse_frames

pytestmark = pytest.mark.timeout(30)


def envelopes(start: int, count: int, size: int = 40) -> list[bytes]:
    return [f'{{"n":{n},"pad":"{"x" * size}"}}'.encode() for n in range(start, start + count)]


def drain(spool: Spool, max_records: int = 100, max_bytes: int = 1 << 20) -> list[bytes]:
    """Read and commit everything, as the sender does when MDR takes it all."""
    out: list[bytes] = []
    for _ in range(10_000):
        batch = spool.next_batch(max_records, max_bytes)
        if batch is None:
            return out
        out.extend(batch.envelopes)
        spool.commit(batch)
    raise AssertionError("the spool never ran dry")


def files(directory: Path, suffix: str) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.endswith(suffix))


def test_appended_records_come_back_in_order_and_leave_no_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(envelopes(0, 10))
    spool.append(envelopes(10, 5))
    assert spool.stats().records == 15
    assert drain(spool, max_records=4) == envelopes(0, 15)
    assert spool.stats().records == 0 and spool.own_resolved == 15
    spool.close()
    assert list(tmp_path.iterdir()) == []


def test_segments_rotate_and_are_deleted_once_accepted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    for start in range(0, 200, 20):
        spool.append(envelopes(start, 20))
    assert len(files(tmp_path, ".seg")) > 2
    assert drain(spool) == envelopes(0, 200)
    assert len(files(tmp_path, ".seg")) <= 1  # only the one still open for writing
    spool.close()
    assert files(tmp_path, ".seg") == []


def test_a_live_writer_is_never_adopted(tmp_path: Path) -> None:
    writer = Spool(tmp_path)
    writer.append(envelopes(0, 3))
    other = Spool(tmp_path)
    assert other.adopt() == 0
    assert other.next_batch(100, 1 << 20) is None
    writer.close()
    other.close()


def test_files_of_a_writer_that_is_gone_are_adopted_once(tmp_path: Path) -> None:
    gone = Spool(tmp_path)
    gone.append(envelopes(0, 30))
    batch = gone.next_batch(10, 1 << 20)
    assert batch is not None
    gone.commit(batch)  # the first 10 were accepted before it went away
    gone.close()  # releases its lock: what is left is anyone's
    first, second = Spool(tmp_path), Spool(tmp_path)
    assert first.adopt() == 20
    assert second.adopt() == 0  # the lock is taken: nobody sends them twice
    assert drain(first) == envelopes(10, 20)
    assert first.stats().adopted == 20 and first.own_resolved == 0
    assert list(tmp_path.iterdir()) == []  # segments, offsets and the lock file are gone
    first.close()
    second.close()


def test_a_torn_tail_is_skipped_and_counted(tmp_path: Path) -> None:
    gone = Spool(tmp_path)
    gone.append(envelopes(0, 5))
    gone.close()
    (segment,) = files(tmp_path, ".seg")
    with open(segment, "r+b") as handle:
        handle.truncate(segment.stat().st_size - 7)  # the last record cut mid-way
    spool = Spool(tmp_path)
    assert spool.adopt() == 4
    assert drain(spool) == envelopes(0, 4)
    assert spool.stats().damaged >= 1
    spool.close()


def test_flipped_bytes_lose_only_the_damaged_record(tmp_path: Path) -> None:
    gone = Spool(tmp_path)
    records = envelopes(0, 6)
    gone.append(records)
    gone.close()
    (segment,) = files(tmp_path, ".seg")
    data = bytearray(segment.read_bytes())
    third = sum(len(frame(r)) for r in records[:2]) + 20  # inside the third record's body
    data[third] ^= 0xFF
    segment.write_bytes(bytes(data))
    spool = Spool(tmp_path)
    spool.adopt()
    assert drain(spool) == records[:2] + records[3:]
    stats = spool.stats()
    assert stats.damaged >= 1
    spool.close()


def test_damage_in_a_length_field_resynchronizes_on_the_next_record() -> None:
    records = envelopes(0, 4)
    data = bytearray(b"".join(frame(r) for r in records))
    data[len(frame(records[0])) + 5] ^= 0x7F  # the second record's length
    found, consumed, damaged = parse_frames(bytes(data), final=True)
    assert found == [records[0], *records[2:]]
    assert consumed == len(data) and damaged == 1


def test_a_full_spool_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=16 * 1024, segment_bytes=4096)
    for start in range(0, 1000, 50):
        spool.append(envelopes(start, 50))
    stats = spool.stats()
    assert stats.bytes <= 16 * 1024 + 4096  # at most one segment over while it fills
    dropped = stats.dropped["spool_full"]
    kept = drain(spool)
    assert kept == envelopes(1000 - len(kept), len(kept))  # the newest survive, in order
    assert dropped + len(kept) == 1000
    assert spool.own_resolved == 1000
    spool.close()


def test_a_batch_released_unsent_is_read_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(envelopes(0, 3))
    batch = spool.next_batch(2, 1 << 20)
    assert isinstance(batch, SpoolBatch)
    spool.release(batch)
    assert drain(spool) == envelopes(0, 3)
    spool.close()


def test_an_unusable_directory_fails_the_constructor_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="a-file") as caught:
        Spool(blocker / "spool")
    assert "spool_dir" in str(caught.value) and "MDR_SPOOL_DIR" in str(caught.value)


def test_files_are_private_to_the_user(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append(envelopes(0, 1))
    for path in (tmp_path / "spool").iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
    spool.close()


def test_a_partly_accepted_batch_keeps_only_what_was_not_taken(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(envelopes(0, 5))
    batch = spool.next_batch(5, 1 << 20)
    assert batch is not None
    spool.requeue(batch, [batch.envelopes[1], batch.envelopes[3]])  # MDR took 0, 2 and 4
    assert spool.own_resolved == 3
    assert drain(spool) == [envelopes(0, 5)[1], envelopes(0, 5)[3]]  # nothing sent twice
    assert spool.own_resolved == 5
    spool.close()


def test_a_segment_read_in_several_batches_is_not_taken_for_damage(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=64 * 1024)
    for start in range(0, 1000, 100):
        spool.append(envelopes(start, 100))  # rotates: the early segments are no longer active
    assert drain(spool, max_records=7) == envelopes(0, 1000)
    stats = spool.stats()
    assert stats.damaged == 0 and stats.dropped == {}
    spool.close()
