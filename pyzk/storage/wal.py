"""The transaction log: append-only files of checksummed records (ZooKeeper's FileTxnLog).

Byte grammar
------------
A log lives in ``dataLogDir`` as files named ``log.<first zxid, 16 hex digits>``::

    file    := header record* zeros*
    header  := "PZKL" version:u16 flags:u16 dbid:u64                 (16 bytes)
    record  := length:u32 crc:u32 zxid:u64 payload[length]          (16-byte head)
    payload := a msgpack-encoded txn (pyzk.tree.txn.encode_txn)
    crc     := CRC32C over the 8 zxid bytes and the payload

All integers are big-endian. Files are preallocated in ``preAllocSize`` chunks, and
zeros are written a little ahead of the records (see ``TxnLog._write_zeros``), so an
all-zero record head marks the end of the log.

Theory of operation
-------------------
* **Append** (:meth:`TxnLog.append`) writes a whole batch with one ``pwrite`` and one
  ``fdatasync``. The caller acknowledges nothing in the batch before this returns; the
  asyncio shell runs it in a thread and feeds the next batch with everything that
  arrived meanwhile (group commit).
* **A failed append** (disk full, I/O error) abandons the file: it is cut back to its
  last durable record, so no partial or unacknowledged record can come back at
  recovery, and the next append starts a new file. :class:`LogWriteError` tells the
  caller that nothing in the batch is durable.
* **Reading** (:func:`read_log`) checks every record. A torn or corrupt *tail* (the last
  record cut short, a checksum mismatch with nothing valid after it, preallocated zeros)
  ends the log; recovery truncates it there with a log line. Damage followed by valid
  records is corruption in the middle: :class:`LogCorruptError` names the file and the
  offset, and the server refuses to start rather than drop acknowledged data.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import google_crc32c

log = logging.getLogger(__name__)

MAGIC = b"PZKL"
VERSION = 1
HEADER = struct.Struct(">4sHHQ")
RECORD = struct.Struct(">IIQ")  # length, crc, zxid
HEAD = RECORD.size  # 16
PREFIX = "log."
# Extend a file when less than this is left before its preallocated end (FileTxnLog).
PAD_SLACK = 4096
# Zeros are written (not only allocated) this far ahead of the write position.
ZERO_AHEAD = 2 * 1024 * 1024
_ZEROS = bytes(ZERO_AHEAD)
# No txn is anywhere near this; a larger length is damage, not data.
MAX_RECORD = 64 * 1024 * 1024


class LogWriteError(OSError):
    """A batch could not be made durable; nothing in it may be acknowledged."""


class LogCorruptError(Exception):
    """Damage before the end of the log: refusing to guess what was lost."""


def log_name(first_zxid: int) -> str:
    return f"{PREFIX}{first_zxid:016x}"


def zxid_of(name: str, prefix: str) -> int | None:
    if not name.startswith(prefix):
        return None
    try:
        return int(name[len(prefix) :], 16)
    except ValueError:
        return None


def log_files(log_dir: Path) -> list[tuple[int, Path]]:
    """Log files by first zxid, oldest first."""
    found = []
    for p in log_dir.iterdir() if log_dir.exists() else ():
        z = zxid_of(p.name, PREFIX)
        if z is not None and p.is_file():
            found.append((z, p))
    return sorted(found)


def encode_record(zxid: int, payload: bytes) -> bytes:
    zb = struct.pack(">Q", zxid)
    crc = google_crc32c.extend(google_crc32c.value(zb), payload)
    return RECORD.pack(len(payload), crc, zxid) + payload


def fsync_dir(path: Path) -> None:
    """Make a file's creation, rename or deletion in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TxnLog:
    """The writing end of the log. Blocking calls: run them off the event loop."""

    def __init__(
        self, log_dir: Path, prealloc_bytes: int = 64 * 1024 * 1024, sync: bool = True
    ) -> None:
        self.dir = log_dir
        self.prealloc = max(prealloc_bytes, PAD_SLACK * 2)
        self.sync = sync  # forceSync=no skips fdatasync (ZooKeeper's option; unsafe)
        self._fd: int | None = None
        self._path: Path | None = None
        self._pos = 0  # end of the last durable record
        self._size = 0  # preallocated size of the current file
        self._zeroed = 0  # end of the zeros actually written in it
        self.last_zxid = 0  # the last zxid made durable

    @property
    def current(self) -> Path | None:
        return self._path

    def append(self, records: list[tuple[int, bytes]]) -> None:
        """Make ``records`` ((zxid, payload) in zxid order) durable, or raise LogWriteError."""
        if not records:
            return
        data = b"".join(encode_record(z, p) for z, p in records)
        try:
            if self._fd is None:
                self._open(records[0][0])
            assert self._fd is not None
            self._ensure_space(len(data))
            os.pwrite(self._fd, data, self._pos)
            if self.sync:
                os.fdatasync(self._fd)
        except OSError as e:
            self._abandon()
            raise LogWriteError(e.errno, f"transaction log write failed: {e.strerror}") from e
        self._pos += len(data)
        self.last_zxid = records[-1][0]

    def roll(self) -> None:
        """Close the current file; the next append starts a new one (at snapshots)."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._path = None, None

    def close(self) -> None:
        self.roll()

    def _open(self, first_zxid: int) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / log_name(first_zxid)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.pwrite(fd, HEADER.pack(MAGIC, VERSION, 0, 0), 0)
            self._fd, self._path, self._pos = fd, path, HEADER.size
            self._size = self._zeroed = HEADER.size
            self._ensure_space(0)
            os.fsync(fd)
            fsync_dir(self.dir)
        except OSError:
            os.close(fd)
            self._fd, self._path = None, None
            path.unlink(missing_ok=True)
            raise

    def _ensure_space(self, n: int) -> None:
        """Preallocate zeros ahead of the write position (FileTxnLog.padFile)."""
        assert self._fd is not None
        need = self._pos + n + PAD_SLACK
        if need > self._size:
            new_size = self._size
            while new_size < need:
                new_size += self.prealloc
            os.posix_fallocate(self._fd, self._size, new_size - self._size)
            self._size = new_size
        if need > self._zeroed:
            self._write_zeros(min(max(need, self._zeroed + ZERO_AHEAD), self._size))

    def _write_zeros(self, end: int) -> None:
        """Overwrite the allocation up to ``end`` with zeros, made durable with the batch.

        Allocated but never-written blocks are "unwritten extents": the first write to one
        changes file metadata, so each fdatasync would also commit a journal transaction.
        Records written over real zeros leave metadata alone, and fdatasync has only data
        to flush: about 100 us less per 10 KB record here. ZooKeeper pads with a sparse
        file, which pays that cost on every sync.
        """
        assert self._fd is not None
        view = memoryview(_ZEROS)
        while self._zeroed < end:
            n = min(end - self._zeroed, len(_ZEROS))
            self._zeroed += os.pwrite(self._fd, view[:n], self._zeroed)

    def _abandon(self) -> None:
        """After a failed write: cut the file back to its last durable record and close it.

        Shrinking needs no free space, so it works on a full disk. If even that fails we
        cannot vouch for the file's tail, and stop: better to stop than to run wrong.
        """
        fd, path = self._fd, self._path
        self._fd, self._path = None, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, self._pos)
            os.fsync(fd)
        except OSError as e:
            log.critical("cannot cut back %s after a failed write: %s", path, e)
            raise SystemExit(f"pyzk: transaction log {path} is in an unknown state") from e
        finally:
            os.close(fd)
        if self._pos <= HEADER.size and path is not None:
            path.unlink(missing_ok=True)  # nothing durable in it: no empty files behind


# --- reading ------------------------------------------------------------------------------


@dataclass(slots=True)
class LogTail:
    """Where a log file's valid records end, and why."""

    path: Path
    offset: int
    reason: str  # "end", "zeros", "torn record", "checksum mismatch", ...


def read_file(
    path: Path, is_last: bool, after_zxid: int = 0
) -> Iterator[tuple[int, bytes] | LogTail]:
    """Valid (zxid, payload) records of one log file with zxid > ``after_zxid``, then
    its :class:`LogTail`.

    The file is mapped, not read: most of a fresh file is preallocated zeros, and start-up
    should touch only the pages that hold records.
    """
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < HEADER.size:
            yield LogTail(path, 0, "no header")
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield from _records(path, data, is_last, after_zxid)


def _records(
    path: Path, data: mmap.mmap, is_last: bool, after_zxid: int
) -> Iterator[tuple[int, bytes] | LogTail]:
    magic, version, _, _ = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise LogCorruptError(f"{path}: not a pyzk transaction log (bad header)")
    pos, end = HEADER.size, len(data)
    unpack, crc_of = RECORD.unpack_from, google_crc32c.value
    while True:
        # The usual case inline (this loop runs once per txn at start-up); anything else
        # goes to _check_record, which names what is wrong.
        if end - pos >= HEAD:
            length, crc, zxid = unpack(data, pos)
            stop = pos + HEAD + length
            if length <= MAX_RECORD and stop <= end:
                checked = data[pos + 8 : stop]  # zxid, payload
                if crc_of(checked) == crc and (length or crc or zxid):
                    if zxid > after_zxid:
                        yield zxid, checked[8:]
                    pos = stop
                    continue
        problem = _check_record(data, pos, end)
        assert problem is not None  # the inline check accepts exactly what it accepts
        if problem not in ("end", "zeros"):
            _refuse_if_middle(path, data, pos, is_last, problem)
        yield LogTail(path, pos, problem)
        return


def _check_record(data: mmap.mmap, pos: int, end: int) -> str | None:
    if pos == end:
        return "end"
    if end - pos < HEAD:
        return "zeros" if not any(data[pos:end]) else "torn record head"
    length, crc, zxid = RECORD.unpack_from(data, pos)
    if length == 0 and crc == 0 and zxid == 0:
        return "zeros"
    if length > MAX_RECORD or pos + HEAD + length > end:
        return "torn record"
    if google_crc32c.value(data[pos + 8 : pos + HEAD + length]) != crc:  # zxid, payload
        return "checksum mismatch"
    return None


def _refuse_if_middle(path: Path, data: mmap.mmap, pos: int, is_last: bool, problem: str) -> None:
    """Damage is a tail only if no data follows the damaged record, here or in a later file.

    Writes only ever append, so a torn write leaves a prefix of a record and zeros after
    it. Non-zero bytes past the damaged record's end mean records were written after it:
    the damage is in the middle of the log.
    """
    where = f"{path} at offset {pos}"
    if not is_last:
        raise LogCorruptError(f"{problem} in {where}, and later log files follow")
    written_end = len(data[:].rstrip(b"\0"))  # a copy, but only when the log is damaged
    length = RECORD.unpack_from(data, pos)[0] if len(data) - pos >= HEAD else 0
    record_end = pos + HEAD + min(length, MAX_RECORD)
    if record_end < written_end:
        raise LogCorruptError(
            f"{problem} in {where}, with {written_end - record_end} bytes of records after it"
        )


def read_log(log_dir: Path, after_zxid: int) -> Iterator[tuple[int, bytes] | LogTail]:
    """Records with zxid > ``after_zxid`` across the log files, and each file's tail."""
    files = log_files(log_dir)
    # The newest file starting at or before after_zxid+1 may hold later records too.
    start = 0
    for i, (first, _) in enumerate(files):
        if first <= after_zxid + 1:
            start = i
    for i, (_, path) in enumerate(files[start:], start):
        yield from read_file(path, i == len(files) - 1, after_zxid)


def truncate_tail(tail: LogTail) -> None:
    """Cut a torn or corrupt tail off, so the damage cannot be read again."""
    if tail.reason in ("end", "zeros"):
        return
    log.warning(
        "transaction log %s: %s at offset %d; truncating the log there",
        tail.path,
        tail.reason,
        tail.offset,
    )
    with open(tail.path, "r+b") as f:
        f.truncate(tail.offset)
        f.flush()
        os.fsync(f.fileno())


def truncate_after(log_dir: Path, zxid: int) -> None:
    """Drop every record after ``zxid`` from the log (ZAB's TRUNC), durably.

    The caller has closed its writer. Files that start after ``zxid`` go; the file that
    holds ``zxid`` is cut right after its record.
    """
    for first, path in log_files(log_dir):
        if first > zxid:
            path.unlink()
            continue
        cut = None
        for item in read_file(path, is_last=True):
            if isinstance(item, LogTail):
                break
            if item[0] > zxid:
                cut = _offset_of(path, item[0])
                break
        if cut is not None:
            with open(path, "r+b") as f:
                f.truncate(cut)
                f.flush()
                os.fsync(f.fileno())
    fsync_dir(log_dir)


def _offset_of(path: Path, zxid: int) -> int:
    data = path.read_bytes()
    pos = HEADER.size
    while pos + HEAD <= len(data):
        length, _, z = RECORD.unpack_from(data, pos)
        if z == zxid:
            return pos
        pos += HEAD + length
    raise LogCorruptError(f"{path}: zxid 0x{zxid:x} vanished while truncating")


def tail_entries(log_dir: Path, after: int, keep: int) -> list[tuple[int, bytes]]:
    """The last ``keep`` records with zxid > ``after`` (the consensus core's memory)."""
    out: list[tuple[int, bytes]] = []
    for item in read_log(log_dir, after):
        if not isinstance(item, LogTail):
            out.append(item)
            if len(out) > 2 * keep:
                del out[:keep]
    return out[-keep:] if keep else []
