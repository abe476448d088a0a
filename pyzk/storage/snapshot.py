"""Snapshots of the tree and its sessions (ZooKeeper's FileSnap).

Byte grammar
------------
A snapshot lives in ``dataDir`` as ``snapshot.<last zxid, 16 hex digits>``::

    file    := header body footer
    header  := "PZKS" version:u16 flags:u16 zxid:u64                 (16 bytes)
    body    := item*                                                 (a msgpack stream)
    item    := ["a", id, [[perms, scheme, id], ...]]                  an ACL list, by id
             | ["n", [path...], [data...], [stat...], [acl_id...], [owner...]]
                                                                     up to CHUNK_ITEMS znodes
             | ["s", [session_id...], [timeout_ms...]]               the live sessions
    footer  := items:u64 crc:u32 "PZKE"                               (16 bytes)
    crc     := CRC32C of the body

Nodes come parents first, in columns (one list per field) so that msgpack decodes a
chunk of thousands of nodes in one C call; ``stat`` is the 68-byte jute Stat, ``owner``
the raw ephemeralOwner. An ACL list is written once, before the first chunk using it.

The file is written as ``<name>.tmp``, fsynced, then renamed, so a snapshot either
exists whole or not at all; the checksum catches later damage, and recovery then falls
back to an older snapshot.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crc32c
import msgpack

from pyzk.storage.wal import fsync_dir, zxid_of
from pyzk.tree.datatree import DataTree
from pyzk.tree.snapshot_view import SnapshotView, tree_from_columns
from pyzk.tree.txn import AclList

MAGIC = b"PZKS"
END_MAGIC = b"PZKE"
VERSION = 2
HEADER = struct.Struct(">4sHHQ")
FOOTER = struct.Struct(">QI4s")
PREFIX = "snapshot."
# Items encoded per chunk: small enough that the event loop keeps serving meanwhile.
CHUNK_ITEMS = 5000


class SnapshotError(Exception):
    """A snapshot file is damaged or not ours."""


def snapshot_name(zxid: int) -> str:
    return f"{PREFIX}{zxid:016x}"


def snapshot_files(data_dir: Path) -> list[tuple[int, Path]]:
    """Snapshot files by zxid, newest first."""
    found = []
    for p in data_dir.iterdir() if data_dir.exists() else ():
        z = zxid_of(p.name, PREFIX)
        if z is not None and p.is_file():
            found.append((z, p))
    return sorted(found, reverse=True)


class SnapshotEncoder:
    """Turns a :class:`SnapshotView` into file bytes, chunk by chunk (no I/O here)."""

    def __init__(self, view: SnapshotView) -> None:
        self.view = view
        self._records = view.records()
        self._acl_ids: dict[AclList, int] = {}
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self.crc = 0
        self.items = 0
        self._sessions_done = False

    def header(self) -> bytes:
        return HEADER.pack(MAGIC, VERSION, 0, self.view.zxid)

    def next_chunk(self) -> bytes | None:
        """The next piece of the body, or None when the body is complete."""
        out: list[bytes] = []
        pack, acl_ids = self._pack, self._acl_ids
        paths: list[str] = []
        datas: list[bytes | None] = []
        stats: list[bytes] = []
        aids: list[int] = []
        owners: list[int] = []
        for path, data, stat, acl, owner in self._records:
            aid = acl_ids.get(acl)
            if aid is None:
                aid = acl_ids[acl] = len(acl_ids)
                out.append(pack(["a", aid, [list(e) for e in acl]]))
            paths.append(path)
            datas.append(data)
            stats.append(stat)
            aids.append(aid)
            owners.append(owner)
            if len(paths) >= CHUNK_ITEMS:
                break
        if paths:
            out.append(pack(["n", paths, datas, stats, aids, owners]))
        elif not self._sessions_done:
            self._sessions_done = True
            sessions = self.view.sessions
            out.append(pack(["s", list(sessions), list(sessions.values())]))
        else:
            return None
        self.items += len(paths) or len(self.view.sessions)
        chunk = b"".join(out)
        self.crc = crc32c.crc32c(chunk, self.crc)
        return chunk

    def footer(self) -> bytes:
        return FOOTER.pack(self.items, self.crc, END_MAGIC)


class SnapshotFile:
    """Writes one snapshot file (blocking calls: run them off the event loop)."""

    def __init__(self, data_dir: Path, zxid: int) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.final = data_dir / snapshot_name(zxid)
        self.tmp = self.final.with_name(self.final.name + ".tmp")
        self._f = open(self.tmp, "wb")  # noqa: SIM115 - closed in finish/abort

    def write(self, data: bytes) -> None:
        self._f.write(data)

    def finish(self) -> Path:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self.tmp, self.final)
        fsync_dir(self.final.parent)
        return self.final

    def abort(self) -> None:
        self._f.close()
        self.tmp.unlink(missing_ok=True)


def write_snapshot(tree: DataTree, data_dir: Path) -> Path:
    """Write a whole snapshot at once (start-up, tools and tests)."""
    view = tree.begin_snapshot()
    try:
        enc = SnapshotEncoder(view)
        f = SnapshotFile(data_dir, view.zxid)
        f.write(enc.header())
        while (chunk := enc.next_chunk()) is not None:
            f.write(chunk)
        f.write(enc.footer())
        return f.finish()
    finally:
        view.close()


def encode_snapshot(tree: DataTree) -> bytes:
    """The whole snapshot as bytes, now (SNAP sync). Synchronous: the tree cannot change."""
    enc = SnapshotEncoder(SnapshotView(tree))
    chunks = [enc.header()]
    while (chunk := enc.next_chunk()) is not None:
        chunks.append(chunk)
    chunks.append(enc.footer())
    return b"".join(chunks)


@dataclass(slots=True)
class Loaded:
    zxid: int
    tree: DataTree


def read_snapshot(path: Path) -> Loaded:
    """Load and verify one snapshot file; SnapshotError if it is damaged."""
    data = path.read_bytes()
    if len(data) < HEADER.size + FOOTER.size:
        raise SnapshotError(f"{path}: too short to be a snapshot")
    magic, version, _, zxid = HEADER.unpack_from(data)
    _items, crc, end = FOOTER.unpack_from(data, len(data) - FOOTER.size)
    if magic != MAGIC or version != VERSION or end != END_MAGIC:
        raise SnapshotError(f"{path}: bad header or footer")
    body = memoryview(data)[HEADER.size : len(data) - FOOTER.size]
    if crc32c.crc32c(body) != crc:
        raise SnapshotError(f"{path}: checksum mismatch")
    tree = tree_from_columns(zxid, _columns(body))
    return Loaded(zxid, tree)


def _columns(body: memoryview) -> Iterator[tuple[Any, ...]]:
    """The body's chunks: ("n", paths, datas, stats, acls, owners) and ("s", ids, timeouts),
    with ACL ids already resolved to ACL lists."""
    acls: dict[int, AclList] = {}
    unpacker = msgpack.Unpacker(raw=False, use_list=False, max_buffer_size=len(body) + 1)
    unpacker.feed(body)
    try:
        for item in unpacker:
            kind = item[0]
            if kind == "n":
                _, paths, datas, stats, aids, owners = item
                yield "n", paths, datas, stats, [acls[a] for a in aids], owners
            elif kind == "a":
                acls[item[1]] = tuple(tuple(e) for e in item[2])
            elif kind == "s":
                yield item
    except (ValueError, KeyError, TypeError, msgpack.UnpackException) as e:
        raise SnapshotError(f"undecodable snapshot body: {e}") from e
