"""The disk spool: envelopes are written here before they are sent, and removed once accepted.

Layout of a spool directory, shared by any number of processes:

- ``<owner>.lock``: one per live writer (``<owner>`` is ``<pid>-<random>``), held with an
  exclusive ``flock`` for as long as the process lives. A lock file nobody holds belongs to a
  process that is gone: the next process that starts or flushes takes the lock and sends what
  that owner left (adoption), so each record is sent by exactly one process.
- ``<owner>.<n>.seg``: append-only segments of framed records, rotated at ``segment_bytes``.
  A frame is ``magic (4) | length (4) | crc32 (4) | envelope``: a torn tail or flipped bytes are
  detected, skipped (resynchronizing on the next magic) and counted, never fatal.
- ``<owner>.<n>.done``: how far that segment was accepted by MDR (a byte offset), rewritten
  after each accepted batch. A segment wholly accepted is deleted with its ``.done`` file.

Durability: each appended batch is ``fdatasync``-ed unless ``fsync=False`` (then a process kill
still loses nothing, as the data is in the kernel, but a machine crash may lose the last batches).
The ``.done`` offset is not synced: after a machine crash, a few batches may be sent twice.

The bound ``max_bytes`` covers what this process keeps (its own segments and those it adopted):
when it is exceeded, the oldest segment gives way and its unsent records are counted as dropped
(the segment of the batch being sent, and the newest, are kept).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import threading
import zlib
from collections import deque
from dataclasses import dataclass, field

from py_mdr.config import ConfigError

__all__ = ["DEFAULT_MAX_SPOOL_BYTES", "Spool", "SpoolBatch", "SpoolStats"]

#: What one process may keep on disk unless told otherwise.
DEFAULT_MAX_SPOOL_BYTES = 256 * 1024 * 1024
_MAX_SEGMENT_BYTES = 8 * 1024 * 1024
_MIN_SEGMENT_BYTES = 4096
MAGIC = b"\xa5MDR"
_FRAME = struct.Struct(">4sII")
_HEADER = _FRAME.size
_MAX_RECORD = 64 * 1024 * 1024  # a larger length field is damage, not a record
_OPEN_APPEND = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
_OPEN_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_OPEN_RW = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
_sync = getattr(os, "fdatasync", os.fsync)


def frame(envelope: bytes) -> bytes:
    """One record as it is stored."""
    return _FRAME.pack(MAGIC, len(envelope), zlib.crc32(envelope)) + envelope


def parse_frames(
    data: bytes, *, limit: int | None = None, final: bool = False
) -> tuple[list[bytes], int, int]:
    """Records in ``data``: (envelopes, bytes consumed, damaged regions skipped).

    Stops after ``limit`` records, and before a frame that is not wholly inside ``data`` (the
    caller reads more), unless ``data`` runs to the end of the file (``final``): then such a
    frame is damage (a torn tail, or a damaged length) and the search goes on after it.
    """
    records: list[bytes] = []
    damaged = 0
    position = 0
    size = len(data)
    view = memoryview(data)
    while position + _HEADER <= size and (limit is None or len(records) < limit):
        magic, length, checksum = _FRAME.unpack_from(data, position)
        if magic == MAGIC and length <= _MAX_RECORD:
            end = position + _HEADER + length
            if end > size and not final:
                break
            body = bytes(view[position + _HEADER : end])
            if end <= size and zlib.crc32(body) == checksum:
                records.append(body)
                position = end
                continue
        damaged += 1
        found = data.find(MAGIC, position + 1)
        if found < 0:  # keep the last bytes: a magic may straddle the end of what was read
            position = max(position + 1, size - len(MAGIC) + 1)
            break
        position = found
    return records, position, damaged


@dataclass(eq=False)
class _Segment:
    owner: str
    number: int
    path: str
    adopted: bool
    size: int = 0  # bytes in the file
    records: int = 0  # records stored (own) or found intact (adopted)
    read_offset: int = 0  # where the next batch starts
    done_offset: int = 0  # accepted up to here
    done_records: int = 0
    write_fd: int | None = None  # the active own segment only
    read_fd: int | None = None
    done_fd: int | None = None
    damaged: int = 0

    @property
    def pending_bytes(self) -> int:
        return self.size - self.done_offset

    @property
    def pending_records(self) -> int:
        return self.records - self.done_records


@dataclass(eq=False)
class SpoolBatch:
    """Records read for one send, from one segment; hand it back to :meth:`Spool.commit`.

    The sender keeps its progress here: ``left`` (not taken by MDR yet), ``sent`` and
    ``refused`` (by reason) so far.
    """

    envelopes: list[bytes]
    segment: _Segment
    start: int
    end: int
    left: list[bytes] = field(default_factory=list)
    sent: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Nothing of it counts as sent: send it all again."""
        self.left = self.envelopes
        self.sent = 0
        self.refused = {}

    @property
    def adopted(self) -> bool:
        return self.segment.adopted


@dataclass(frozen=True)
class SpoolStats:
    """A snapshot of the spool's counters."""

    directory: str = ""
    records: int = 0  # on disk, not yet accepted (own and adopted)
    bytes: int = 0
    written: int = 0  # records this process wrote
    adopted: int = 0  # intact records found in the files of processes that were gone
    damaged: int = 0  # damaged regions skipped
    dropped: dict[str, int] = field(default_factory=dict)  # spool_full, spool_damaged


def check_directory(directory: object) -> str:
    """The absolute path of a usable spool directory (created if missing), or ConfigError."""
    if not isinstance(directory, (str, os.PathLike)) or not os.fspath(directory):
        raise ConfigError(
            f"spool_dir must be a directory path (argument spool_dir= or MDR_SPOOL_DIR), "
            f"got {directory!r}"
        )
    path = os.path.abspath(os.fspath(directory))
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        probe = os.path.join(path, f".probe-{os.getpid()}-{os.urandom(4).hex()}")
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ConfigError(
            f"spool directory {path!r} is not usable ({error.strerror or error}): give a "
            "writable directory (argument spool_dir= or MDR_SPOOL_DIR), or none to keep "
            "records in memory only"
        ) from None
    return path


class Spool:
    """Framed segments in one directory: ``append`` (writer), ``next_batch``/``commit`` (sender).

    Thread-safe. ``append`` raises ``OSError`` when the disk refuses (the delivery then falls
    back to memory); reading and adoption never raise for damaged or vanished files.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_SPOOL_BYTES,
        segment_bytes: int | None = None,
        fsync: bool = True,
    ) -> None:
        """Open (and create) the spool in ``directory``, kept under ``max_bytes`` on disk.

        Raises :class:`~py_mdr.errors.ConfigError` when the directory is not usable or the bound
        is too small."""
        if type(max_bytes) is not int or max_bytes < 2 * _MIN_SEGMENT_BYTES:
            raise ConfigError(
                f"max_spool_bytes must be an integer >= {2 * _MIN_SEGMENT_BYTES}, got {max_bytes!r}"
            )
        self.directory = check_directory(directory)
        self.max_bytes = max_bytes
        default_segment = min(_MAX_SEGMENT_BYTES, max(_MIN_SEGMENT_BYTES, max_bytes // 4))
        self.segment_bytes = segment_bytes or default_segment
        self.fsync = bool(fsync)
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._owner: str | None = None
        self._owner_fd: int | None = None
        self._adopted_owners: dict[str, int] = {}  # owner -> its lock's fd, held while sending
        self._segments: deque[_Segment] = deque()
        self._active: _Segment | None = None
        self._reading: _Segment | None = None  # the segment of the batch being sent
        self._next_number = 0
        self._written = 0
        self._adopted = 0
        self._damaged = 0
        self._dropped: dict[str, int] = {}
        self._own_resolved = 0  # own records that left the spool: accepted, refused or dropped

    def __repr__(self) -> str:
        return f"Spool({self.directory!r})"

    # ------------------------------------------------------------------ writer
    def append(self, envelopes: list[bytes]) -> tuple[int, int]:
        """Store ``envelopes`` (synced per the policy); returns the (own, adopted) records dropped
        to stay within ``max_bytes``. Raises OSError when the disk refuses."""
        if not envelopes:
            return 0, 0
        frames = [frame(envelope) for envelope in envelopes]
        with self._lock:
            if self._owner is None:
                self._claim_owner()
            touched: list[tuple[_Segment, int, int]] = []  # (segment, size, records) before
            try:
                start = 0
                while start < len(frames):
                    segment = self._active or self._open_segment()
                    room = self.segment_bytes - segment.size
                    end, size = start, 0
                    while end < len(frames) and (size + len(frames[end]) <= room or end == start):
                        size += len(frames[end])
                        end += 1
                    if size > room and segment.size:  # not even one record fits: a new one
                        self._close_active()
                        continue
                    touched.append((segment, segment.size, segment.records))
                    self._write(segment, b"".join(frames[start:end]), end - start)
                    start = end
                    if segment.size >= self.segment_bytes:
                        self._close_active()
            except OSError:
                self._roll_back(touched)
                raise
            self._written += len(envelopes)
            return self._enforce_bound()

    def _write(self, segment: _Segment, data: bytes, count: int) -> None:
        fd = segment.write_fd
        assert fd is not None
        written = 0
        try:
            while written < len(data):
                written += os.write(fd, data[written:])
            if self.fsync:
                _sync(fd)
        finally:
            segment.size += written
        segment.records += count

    def _roll_back(self, touched: list[tuple[_Segment, int, int]]) -> None:
        """All or nothing: the caller sends the whole batch from memory instead."""
        self._close_active()  # whatever happens below, never append after a failed write
        for segment, size, records in reversed(touched):
            segment.records, segment.size = records, size  # reads stop at the old end
            with contextlib.suppress(OSError):
                os.truncate(segment.path, size)
            if size == 0 and segment.done_offset == 0:
                self._remove(segment)

    def _claim_owner(self) -> None:
        owner = f"{os.getpid()}-{os.urandom(4).hex()}"
        temporary = os.path.join(self.directory, f".{owner}.lock.tmp")
        fd = os.open(temporary, _OPEN_RW | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # renamed once locked: an adopter never sees an unlocked lock file of a live owner
            os.rename(temporary, os.path.join(self.directory, f"{owner}.lock"))
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        self._owner, self._owner_fd = owner, fd

    def _open_segment(self) -> _Segment:
        assert self._owner is not None
        number = self._next_number
        self._next_number += 1
        path = self._path(self._owner, number, "seg")
        fd = os.open(path, _OPEN_APPEND, 0o600)
        segment = _Segment(self._owner, number, path, adopted=False, write_fd=fd)
        self._segments.append(segment)
        self._active = segment
        return segment

    def _close_active(self) -> None:
        segment = self._active
        if segment is not None and segment.write_fd is not None:
            _close(segment.write_fd)
            segment.write_fd = None
        self._active = None

    def _enforce_bound(self) -> tuple[int, int]:
        own = adopted = 0
        while self._pending_bytes() > self.max_bytes:
            newest = self._segments[-1] if self._segments else None
            victim = next(
                (
                    s
                    for s in self._segments
                    if s is not self._active and s is not self._reading and s is not newest
                ),
                None,
            )
            if victim is None:
                break
            lost = victim.pending_records
            if victim.adopted:
                adopted += lost
            else:
                own += lost
            self._lose(victim, "spool_full", lost)
            self._remove(victim)
        return own, adopted

    # ------------------------------------------------------------------ sender
    def next_batch(self, max_records: int, max_bytes: int) -> SpoolBatch | None:
        """The oldest records not yet sent, from one segment; None when there are none."""
        with self._lock:
            for segment in list(self._segments):
                if segment.read_offset < segment.size:
                    batch = self._read(segment, max_records, max_bytes)
                    if batch is not None:
                        self._reading = segment
                        return batch
                elif segment is not self._active and segment.done_offset >= segment.size:
                    self._finish(segment)
            return None

    def _read(self, segment: _Segment, max_records: int, max_bytes: int) -> SpoolBatch | None:
        """Read from ``segment.read_offset``; damage is skipped and counted."""
        start = segment.read_offset
        want = max(max_bytes, _HEADER)
        while True:
            available = segment.size - start
            try:
                if segment.read_fd is None:
                    segment.read_fd = os.open(segment.path, _OPEN_READ)
                data = os.pread(segment.read_fd, min(want, available), start)
            except OSError:  # the file vanished or cannot be read: give the segment up
                self._give_up(segment)
                return None
            at_end = len(data) >= available
            records, consumed, damaged = parse_frames(data, limit=max_records, final=at_end)
            self._note_damage(segment, damaged)
            if not records and not consumed and not at_end:
                # one record larger than what was read: read exactly that much
                header = data[:_HEADER]
                if len(header) == _HEADER:
                    _, length, _ = _FRAME.unpack(header)
                    if _HEADER + length > want and length <= _MAX_RECORD:
                        want = _HEADER + length
                        continue
                consumed = 1  # not a frame start: skip a byte and resynchronize
                self._note_damage(segment, 1)
            limited = len(records) >= max_records  # stopped at the limit, not at damage
            if at_end and not limited and consumed < len(data) and segment is not self._active:
                # a torn tail: nothing after it will ever complete
                self._note_damage(segment, 1)
                consumed = len(data)
            end = start + consumed
            segment.read_offset = end
            if not records:
                if end >= segment.size:
                    self._settle_damage(segment, start, end)
                    return None
                start = end
                continue
            return SpoolBatch(records, segment, start, end)

    def _note_damage(self, segment: _Segment, count: int) -> None:
        # an adopted segment's damage was counted when it was scanned
        if count and not segment.adopted:
            self._damaged += count

    def commit(self, batch: SpoolBatch) -> None:
        """Everything in ``batch`` was accepted by MDR (or refused for good): forget it."""
        with self._lock:
            segment = batch.segment
            if self._reading is segment:
                self._reading = None
            if segment not in self._segments:
                return
            segment.done_records += len(batch.envelopes)
            if not segment.adopted:
                self._own_resolved += len(batch.envelopes)
            self._settle_damage(segment, batch.start, batch.end)

    def requeue(self, batch: SpoolBatch, keep: list[bytes]) -> None:
        """Part of ``batch`` was accepted: forget the batch, store ``keep`` again at the end.

        So the accepted part is not sent twice; ``keep`` moves behind newer records. Raises
        OSError (with ``batch`` released, to be read again whole) when the disk refuses.
        """
        if len(keep) >= len(batch.envelopes):
            self.release(batch)
            return
        try:
            self.append(keep)
        except OSError:
            self.release(batch)
            raise
        with self._lock:
            if not batch.segment.adopted and batch.segment in self._segments:
                self._own_resolved -= len(keep)  # not resolved: they wait again, at the end
        self.commit(batch)

    def release(self, batch: SpoolBatch) -> None:
        """``batch`` was not sent: read it again next time (e.g. the process is closing)."""
        with self._lock:
            segment = batch.segment
            if self._reading is segment:
                self._reading = None
            if segment in self._segments and segment.read_offset > batch.start:
                segment.read_offset = batch.start

    def _settle_damage(self, segment: _Segment, start: int, end: int) -> None:
        segment.done_offset = max(segment.done_offset, end)
        if segment.done_offset >= segment.size and segment is not self._active:
            lost = segment.pending_records  # records that sat in damaged bytes
            if lost > 0:
                self._lose(segment, "spool_damaged", lost)
                segment.done_records = segment.records
            self._finish(segment)
            return
        self._write_done(segment)

    def _write_done(self, segment: _Segment) -> None:
        try:
            if segment.done_fd is None:
                path = self._path(segment.owner, segment.number, "done")
                segment.done_fd = os.open(path, _OPEN_RW | os.O_CREAT, 0o600)
            os.pwrite(segment.done_fd, b"%020d\n" % segment.done_offset, 0)
        except OSError:  # a lost offset only means records may be sent twice after a crash
            pass

    def _finish(self, segment: _Segment) -> None:
        """A segment wholly accepted: delete it, and an adopted owner's lock after its last."""
        self._remove(segment)
        owner = segment.owner
        if segment.adopted and not any(s.owner == owner for s in self._segments):
            fd = self._adopted_owners.pop(owner, None)
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.directory, f"{owner}.lock"))
            if fd is not None:
                _close(fd)

    def _remove(self, segment: _Segment) -> None:
        for fd in (segment.write_fd, segment.read_fd, segment.done_fd):
            if fd is not None:
                _close(fd)
        segment.write_fd = segment.read_fd = segment.done_fd = None
        for suffix in ("seg", "done"):
            with contextlib.suppress(OSError):
                os.unlink(self._path(segment.owner, segment.number, suffix))
        if segment is self._active:
            self._active = None
        if segment is self._reading:
            self._reading = None
        with contextlib.suppress(ValueError):
            self._segments.remove(segment)

    def _give_up(self, segment: _Segment) -> None:
        self._lose(segment, "spool_damaged", segment.pending_records)
        self._damaged += 1
        self._remove(segment)

    # ------------------------------------------------------------------ adoption
    def adopt(self) -> int:
        """Take over the files of writers that are gone; returns the intact records found."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        found = 0
        for name in sorted(names):
            if not name.endswith(".lock") or name.startswith("."):
                continue
            owner = name[: -len(".lock")]
            with self._lock:
                if owner == self._owner or owner in self._adopted_owners:
                    continue
            taken = self._adopt_owner(owner, names)  # file I/O outside the lock
            if taken is not None:
                fd, segments, records = taken
                with self._lock:
                    self._adopted_owners[owner] = fd
                    self._segments.extend(segments)
                    self._adopted += records
                    self._damaged += sum(s.damaged for s in segments)
                found += records
        return found

    def _adopt_owner(self, owner: str, names: list[str]) -> tuple[int, list[_Segment], int] | None:
        """Lock a gone writer's files and scan them; None when the owner is alive or empty."""
        path = os.path.join(self.directory, f"{owner}.lock")
        try:
            fd = os.open(path, _OPEN_RW)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise OSError("the lock file was replaced")  # another adopter finished it
        except OSError:  # held by a live writer (or gone): not ours to take
            _close(fd)
            return None
        prefix = f"{owner}."
        numbers = sorted(
            int(name[len(prefix) : -len(".seg")])
            for name in names
            if name.startswith(prefix)
            and name.endswith(".seg")
            and name[len(prefix) : -len(".seg")].isdigit()
        )
        found = 0
        segments = []
        for number in numbers:
            segment = self._scan(owner, number)
            if segment is not None:
                segments.append(segment)
                found += segment.records - segment.done_records
        if not segments:
            with contextlib.suppress(OSError):
                os.unlink(path)
            _close(fd)
            return None
        return fd, segments, found

    def _scan(self, owner: str, number: int) -> _Segment | None:
        """An orphaned segment, its intact records counted from its accepted offset on."""
        path = self._path(owner, number, "seg")
        done = 0
        try:
            with open(self._path(owner, number, "done"), "rb") as handle:
                text = handle.read(64).strip()
                done = int(text) if text.isdigit() else 0
        except OSError:
            pass
        try:
            fd = os.open(path, _OPEN_READ)
        except OSError:
            return None
        segment = _Segment(owner, number, path, adopted=True, read_fd=fd)
        try:
            segment.size = os.fstat(fd).st_size
            done = min(done, segment.size)
            position = done
            while position < segment.size:
                data = os.pread(fd, min(4 * 1024 * 1024, segment.size - position), position)
                final = position + len(data) >= segment.size
                records, consumed, damaged = parse_frames(data, final=final)
                segment.records += len(records)
                segment.damaged += damaged
                if consumed == 0:
                    if len(data) >= segment.size - position:
                        segment.damaged += 1  # a torn tail
                        break
                    header = data[:_HEADER]
                    _, length, _ = _FRAME.unpack(header)
                    position += _HEADER + length  # a record longer than the chunk
                    segment.records += 1  # counted; its checksum is checked when sent
                    continue
                position += consumed
        except (OSError, struct.error):
            _close(fd)
            return None
        segment.read_offset = segment.done_offset = done
        return segment

    # ------------------------------------------------------------------ lifecycle
    def stats(self) -> SpoolStats:
        with self._lock:
            return SpoolStats(
                directory=self.directory,
                records=sum(s.pending_records for s in self._segments),
                bytes=self._pending_bytes(),
                written=self._written,
                adopted=self._adopted,
                damaged=self._damaged,
                dropped=dict(self._dropped),
            )

    @property
    def own_resolved(self) -> int:
        """Own records that left the spool (accepted, refused, or dropped) since start or fork."""
        return self._own_resolved

    def pending(self) -> tuple[int, int]:
        """Records on disk not yet accepted: (own, adopted)."""
        with self._lock:
            own = sum(s.pending_records for s in self._segments if not s.adopted)
            adopted = sum(s.pending_records for s in self._segments if s.adopted)
            return own, adopted

    def close(self) -> None:
        """Release every file and lock; what is left stays for the next process. Idempotent."""
        with self._lock:
            self._close_active()
            for segment in list(self._segments):
                if segment.done_offset >= segment.size:
                    self._remove(segment)
                    continue
                for fd in (segment.read_fd, segment.done_fd):
                    if fd is not None:
                        _close(fd)
                segment.read_fd = segment.done_fd = None
            own_left = any(not s.adopted for s in self._segments)
            if self._owner is not None and not own_left:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.directory, f"{self._owner}.lock"))
            for fd in [self._owner_fd, *self._adopted_owners.values()]:
                if fd is not None:
                    _close(fd)  # releases the lock: the files left are anyone's to adopt
            self._segments.clear()
            self._owner = self._owner_fd = None
            self._adopted_owners.clear()

    def after_fork_in_child(self) -> None:
        """In a forked child: drop the parent's descriptors (without unlocking), start afresh."""
        descriptors = [self._owner_fd, *self._adopted_owners.values()]
        for segment in self._segments:
            descriptors += [segment.write_fd, segment.read_fd, segment.done_fd]
        for fd in descriptors:
            if fd is not None:
                _close(fd)  # never LOCK_UN: the lock is shared with the parent's descriptor
        self._reset()

    # ------------------------------------------------------------------ helpers
    def _pending_bytes(self) -> int:
        return sum(s.pending_bytes for s in self._segments)

    def _lose(self, segment: _Segment, reason: str, count: int) -> None:
        if count > 0:
            self._dropped[reason] = self._dropped.get(reason, 0) + count
            if not segment.adopted:
                self._own_resolved += count

    def _path(self, owner: str, number: int, suffix: str) -> str:
        return os.path.join(self.directory, f"{owner}.{number:08d}.{suffix}")


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
