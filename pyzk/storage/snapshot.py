"""Snapshots of the tree and its sessions (ZooKeeper's FileSnap).

Byte grammar
------------
A snapshot lives in ``dataDir`` as ``snapshot.<last zxid, 16 hex digits>``::

    file    := header body footer
    header  := "PZKS" version:u16 flags:u16 zxid:u64                 (16 bytes)
    body    := item*                                                 (a msgpack stream)
    item    := ["a", id, [[perms, scheme, id], ...]]                  an ACL list, by id
             | ["n", path, data, stat, acl_id, owner]               a znode
             | ["s", session_id, timeout_ms]                         a live session
    footer  := items:u64 crc:u32 "PZKE"                               (16 bytes)
    crc     := CRC32C of the body

Nodes come parents first; ``stat`` is the 68-byte jute Stat; ``owner`` the raw
ephemeralOwner. An ACL list is written once, before the first node that uses it.

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

import crc32c
import msgpack

from pyzk.storage.wal import fsync_dir, zxid_of
from pyzk.tree.datatree import DataTree, SnapshotView
from pyzk.tree.txn import AclList

MAGIC = b"PZKS"
END_MAGIC = b"PZKE"
VERSION = 1
HEADER = struct.Struct(">4sHHQ")
FOOTER = struct.Struct(">QI4s")
PREFIX = "snapshot."
# Items encoded per chunk: small enough that the event loop keeps serving meanwhile.
CHUNK_ITEMS = 2000


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
        for path, data, stat, acl, owner in self._records:
            aid = acl_ids.get(acl)
            if aid is None:
                aid = acl_ids[acl] = len(acl_ids)
                out.append(pack(["a", aid, [list(e) for e in acl]]))
            out.append(pack(["n", path, data, stat, aid, owner]))
            if len(out) >= CHUNK_ITEMS:
                break
        if not out and not self._sessions_done:
            self._sessions_done = True
            out = [pack(["s", sid, t]) for sid, t in self.view.sessions.items()]
            if not out:
                return None
        elif not out:
            return None
        self.items += len(out)
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
    sessions: dict[int, int] = {}
    # Sessions follow the nodes in the stream: they are all read once the nodes are.
    tree = DataTree.from_records(zxid, _nodes(body, sessions), sessions)
    return Loaded(zxid, tree)


def _nodes(
    body: memoryview, sessions: dict[int, int]
) -> Iterator[tuple[str, bytes | None, bytes, AclList, int]]:
    acls: dict[int, AclList] = {}
    unpacker = msgpack.Unpacker(raw=False, use_list=False, max_buffer_size=len(body) + 1)
    unpacker.feed(body)
    try:
        for item in unpacker:
            kind = item[0]
            if kind == "n":
                _, path, data, stat, aid, owner = item
                yield path, data, stat, acls[aid], owner
            elif kind == "a":
                acls[item[1]] = tuple(tuple(e) for e in item[2])
            elif kind == "s":
                sessions[item[1]] = item[2]
    except (ValueError, KeyError, msgpack.UnpackException) as e:
        raise SnapshotError(f"undecodable snapshot body: {e}") from e
