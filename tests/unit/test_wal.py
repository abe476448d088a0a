"""The transaction log format: every kind of tail damage, at every offset."""

from __future__ import annotations

import fcntl
import os
import struct
from pathlib import Path

import pytest

from pyzk.storage.wal import (
    HEAD,
    HEADER,
    ZERO_AHEAD,
    LogCorruptError,
    LogTail,
    LogWriteError,
    TxnLog,
    log_files,
    read_log,
    truncate_tail,
)

PREALLOC = 64 * 1024


def payload(i: int) -> bytes:
    return f"txn-{i}-".encode() * (i % 5 + 1)


def write_log(d: Path, zxids: range, batch: int = 3) -> TxnLog:
    wal = TxnLog(d, PREALLOC)
    items = [(z, payload(z)) for z in zxids]
    for i in range(0, len(items), batch):
        wal.append(items[i : i + batch])
    return wal


def records(d: Path, after: int = 0) -> tuple[list[int], list[LogTail]]:
    zxids, tails = [], []
    for item in read_log(d, after):
        if isinstance(item, LogTail):
            tails.append(item)
        else:
            zxids.append(item[0])
            assert item[1] == payload(item[0])
    return zxids, tails


def test_round_trip_and_preallocated_zeros(tmp_path: Path) -> None:
    wal = write_log(tmp_path, range(1, 21))
    wal.close()
    [(first, path)] = log_files(tmp_path)
    assert first == 1 and path.stat().st_size >= PREALLOC
    zxids, tails = records(tmp_path)
    assert zxids == list(range(1, 21))
    assert [t.reason for t in tails] == ["zeros"]


def test_read_after_a_zxid_spans_rolled_files(tmp_path: Path) -> None:
    wal = write_log(tmp_path, range(1, 11))
    wal.roll()
    wal.append([(z, payload(z)) for z in range(11, 16)])
    wal.close()
    assert [f for f, _ in log_files(tmp_path)] == [1, 11]
    assert records(tmp_path, after=7)[0] == list(range(8, 16))
    assert records(tmp_path, after=12)[0] == [13, 14, 15]


def record_offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    offs, pos = [], HEADER.size
    while pos + HEAD <= len(data) and any(data[pos : pos + HEAD]):
        offs.append(pos)
        pos += HEAD + int.from_bytes(data[pos : pos + 4], "big")
    offs.append(pos)  # the end of the last record
    return offs


def test_a_tail_cut_at_every_offset_keeps_every_whole_record(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_log(src, range(1, 6)).close()
    [(_, path)] = log_files(src)
    offs = record_offsets(path)
    data = path.read_bytes()
    for cut in range(offs[-2], offs[-1]):  # anywhere inside the last record
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / path.name).write_bytes(data[:cut])
        zxids, tails = records(d)
        assert zxids == [1, 2, 3, 4], cut
        if cut > offs[-2]:
            assert tails[0].offset == offs[-2]
            if any(data[offs[-2] : cut]):  # (a cut inside leading zero bytes reads as zeros)
                assert tails[0].reason.startswith("torn"), tails
                truncate_tail(tails[0])
                assert (d / path.name).stat().st_size == offs[-2]
        assert records(d)[0] == [1, 2, 3, 4]


def test_torn_tail_followed_by_preallocated_zeros(tmp_path: Path) -> None:
    write_log(tmp_path, range(1, 6)).close()
    [(_, path)] = log_files(tmp_path)
    offs = record_offsets(path)
    data = bytearray(path.read_bytes())
    for cut in range(offs[-2] + 1, offs[-1]):
        damaged = data[:cut] + bytes(len(data) - cut)  # the rest never reached the disk
        path.write_bytes(damaged)
        zxids, tails = records(tmp_path)
        assert zxids == [1, 2, 3, 4], cut
        assert tails[0].offset == offs[-2]


@pytest.mark.parametrize("where", ["head", "zxid", "payload"])
def test_checksum_mismatch_in_the_last_record_is_a_tail(tmp_path: Path, where: str) -> None:
    write_log(tmp_path, range(1, 6)).close()
    [(_, path)] = log_files(tmp_path)
    offs = record_offsets(path)
    data = bytearray(path.read_bytes())
    pos = {"head": offs[-2] + 5, "zxid": offs[-2] + 12, "payload": offs[-2] + HEAD + 2}[where]
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    zxids, tails = records(tmp_path)
    assert zxids == [1, 2, 3, 4]
    assert tails[0].reason == "checksum mismatch"


def test_damage_in_the_middle_refuses_to_start(tmp_path: Path) -> None:
    write_log(tmp_path, range(1, 6)).close()
    [(_, path)] = log_files(tmp_path)
    offs = record_offsets(path)
    data = bytearray(path.read_bytes())
    data[offs[2] + HEAD + 1] ^= 0x01  # a bit flip in record 3's payload
    path.write_bytes(bytes(data))
    with pytest.raises(LogCorruptError) as err:
        records(tmp_path)
    assert str(path) in str(err.value) and f"offset {offs[2]}" in str(err.value)


def test_damage_in_an_older_file_refuses_to_start(tmp_path: Path) -> None:
    wal = write_log(tmp_path, range(1, 6))
    wal.roll()
    wal.append([(6, payload(6))])
    wal.close()
    first = log_files(tmp_path)[0][1]
    offs = record_offsets(first)
    data = bytearray(first.read_bytes())
    data[offs[-2] + HEAD] ^= 0x01  # the last record of the *older* file
    first.write_bytes(bytes(data))
    with pytest.raises(LogCorruptError, match="later log files follow"):
        records(tmp_path)


def test_failed_write_leaves_only_durable_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = write_log(tmp_path, range(1, 4))
    real_pwrite = os.pwrite

    def torn_pwrite(fd: int, data: bytes, offset: int) -> int:
        real_pwrite(fd, data[: len(data) // 2], offset)  # half reaches the disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", torn_pwrite)
    with pytest.raises(LogWriteError):
        wal.append([(4, payload(4)), (5, payload(5))])
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    # The same zxids are retried (the pipeline refused them) into a new file.
    wal.append([(4, payload(4))])
    wal.close()
    zxids, tails = records(tmp_path)
    assert zxids == [1, 2, 3, 4]
    assert all(t.reason in ("end", "zeros") for t in tails)


FS_IOC_FIEMAP = 0xC020660B
FIEMAP_EXTENT_UNWRITTEN = 0x800


def unwritten_extents(path: Path, start: int, length: int) -> list[tuple[int, int]]:
    """(offset, length) of the extents in a range that are allocated but never written."""
    head = struct.Struct("=QQIIII")  # struct fiemap
    extent = struct.Struct("=QQQQQI12x")  # struct fiemap_extent
    count = 64
    buf = bytearray(head.pack(start, length, 1, 0, count, 0) + bytes(extent.size * count))
    with path.open("rb") as f:
        try:
            fcntl.ioctl(f.fileno(), FS_IOC_FIEMAP, buf)
        except OSError:
            pytest.skip("this filesystem does not map extents (FIEMAP)")
    mapped = head.unpack_from(buf)[3]
    found = []
    for i in range(mapped):
        logical, _, size, _, _, flags = extent.unpack_from(buf, head.size + i * extent.size)
        if flags & FIEMAP_EXTENT_UNWRITTEN:
            found.append((logical, size))
    return found


def test_records_land_on_zeros_already_written(tmp_path: Path) -> None:
    # Writing into an allocated-but-unwritten extent changes file metadata, which makes
    # every fdatasync commit a journal transaction; the log writes zeros ahead instead.
    wal = TxnLog(tmp_path, 8 * ZERO_AHEAD)
    wal.append([(1, payload(1))])
    assert wal.current is not None
    assert unwritten_extents(wal.current, 0, ZERO_AHEAD) == []
    big = [(z, bytes(ZERO_AHEAD // 4)) for z in range(2, 8)]  # past the first zeroed stretch
    wal.append(big)
    assert unwritten_extents(wal.current, 0, 2 * ZERO_AHEAD) == []
    wal.close()
    zxids = [item[0] for item in read_log(tmp_path, 0) if not isinstance(item, LogTail)]
    assert zxids == list(range(1, 8))
