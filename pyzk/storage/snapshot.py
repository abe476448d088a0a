"""Snapshots of the tree and its sessions (ZooKeeper's FileSnap).

Byte grammar
------------
A snapshot lives in ``dataDir`` as ``snapshot.<last zxid, 16 hex digits>``::

    file    := header body footer
    header  := "PZKS" version:u16 flags:u16 zxid:u64                 (16 bytes)
    body    := acls family* sessions                                 (a msgpack stream)
    acls    := ["a", [[[perms, scheme, id], ...], ...]]               the ACL table, by id
    family  := ["k", parent, [path...], [record...], [index, owner, ...]]
    sessions:= ["s", [session_id...], [timeout_ms...]]
    footer  := items:u64 crc:u32 "PZKE"                               (16 bytes)
    crc     := CRC32C of the body

A family is up to CHUNK_ITEMS children of ``parent`` (full paths) in the order
ZooKeeper lists them, with their records as the tree keeps them (``pyzk.tree.node``:
Stat, ACL id, data), and the raw ephemeralOwner of those that have one. Families come
parents first; the root is the one child of the parent "". Loading is then mostly C
work: msgpack decodes a family in one call and the tree takes its lists whole.

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
from typing import Any, BinaryIO

import google_crc32c
import msgpack

from pyzk.storage.nogc import gc_paused
from pyzk.storage.wal import fsync_dir, zxid_of
from pyzk.tree.datatree import DataTree
from pyzk.tree.node import record
from pyzk.tree.snapshot_view import Family, SnapshotView, tree_from_families
from pyzk.tree.txn import AclList

MAGIC = b"PZKS"
END_MAGIC = b"PZKE"
VERSION = 3  # packed records in families; 2 (columns of fields) is still read
HEADER = struct.Struct(">4sHHQ")
FOOTER = struct.Struct(">QI4s")
PREFIX = "snapshot."
# Items encoded per chunk: small enough that the event loop keeps serving meanwhile.
CHUNK_ITEMS = 5000
READ_SIZE = 1 << 20  # bytes read at a time when loading


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
        self._families = view.families(CHUNK_ITEMS)
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self.crc = 0
        self.items = 0
        self._stage = "acls"

    def header(self) -> bytes:
        return HEADER.pack(MAGIC, VERSION, 0, self.view.zxid)

    def next_chunk(self) -> bytes | None:
        """The next piece of the body, or None when the body is complete."""
        if self._stage == "acls":
            self._stage = "families"
            item: list[Any] = ["a", [[list(e) for e in acl] for acl in self.view.acls]]
        elif self._stage == "families" and (family := next(self._families, None)):
            item = ["k", *family]
        elif self._stage != "done":
            self._stage = "done"
            sessions = self.view.sessions
            item = ["s", list(sessions), list(sessions.values())]
        else:
            return None
        self.items += 1
        chunk: bytes = self._pack(item)
        self.crc = google_crc32c.extend(self.crc, chunk)
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
    """Load and verify one snapshot file; SnapshotError if it is damaged.

    The body is decoded as it is read, a chunk at a time, and checksummed on the way: a
    snapshot as large as the tree it holds is never in memory whole beside that tree.
    The checksum is compared at the end, so a damaged file is refused after decoding.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < HEADER.size + FOOTER.size:
            raise SnapshotError(f"{path}: too short to be a snapshot")
        magic, version, _, zxid = HEADER.unpack(f.read(HEADER.size))
        f.seek(size - FOOTER.size)
        _items, crc, end = FOOTER.unpack(f.read(FOOTER.size))
        if magic != MAGIC or version not in (2, VERSION) or end != END_MAGIC:
            raise SnapshotError(f"{path}: bad header or footer")
        f.seek(HEADER.size)
        body = _ChecksummedReader(f, size - HEADER.size - FOOTER.size)
        limit = body.left + 1
        unpacker = msgpack.Unpacker(
            body,
            raw=False,
            use_list=False,
            read_size=min(READ_SIZE, limit),
            max_buffer_size=limit,
        )
        load = _load if version == VERSION else _load_v2
        try:
            with gc_paused():
                tree = load(zxid, unpacker)
        except Exception as e:  # bytes not yet checksummed: any failure means damage
            raise SnapshotError(f"undecodable snapshot body: {e!r}") from e
    if body.left or body.crc != crc:
        raise SnapshotError(f"{path}: checksum mismatch")
    return Loaded(zxid, tree)


class _ChecksummedReader:
    """The body of a snapshot file as msgpack reads it: at most ``left`` bytes, with the
    CRC32C of what was read so far."""

    def __init__(self, f: BinaryIO, left: int) -> None:
        self.f, self.left, self.crc = f, left, 0

    def read(self, n: int) -> bytes:
        data = self.f.read(min(n, self.left))
        self.left -= len(data)
        self.crc = google_crc32c.extend(self.crc, data)
        return data


def _load(zxid: int, unpacker: msgpack.Unpacker) -> DataTree:
    kind, table = next(unpacker, ("", ()))
    if kind != "a":
        raise SnapshotError("the body does not start with the ACL table")
    acls = [tuple(tuple(e) for e in acl) for acl in table]
    sessions: dict[int, int] = {}  # filled by the last item, as the families are loaded
    return tree_from_families(zxid, acls, _families(unpacker, sessions), sessions)


def _load_v2(zxid: int, unpacker: msgpack.Unpacker) -> DataTree:
    """A snapshot of format 2: nodes depth first, in columns of fields, ACLs by id."""
    table: list[AclList] = []
    ids: dict[int, int] = {}  # the file's ACL id -> index in table
    families: list[Family] = []
    sessions: dict[int, int] = {}
    for item in unpacker:
        if item[0] == "a":
            ids[item[1]] = len(table)
            table.append(tuple(tuple(e) for e in item[2]))
        elif item[0] == "n":
            for path, data, stat, aid, owner in zip(*item[1:], strict=True):
                parent = "" if path == "/" else path[: path.rfind("/")] or "/"
                rec = record(stat, ids[aid], data)
                families.append((parent, [path], [rec], [0, owner] if owner else []))
        elif item[0] == "s":
            sessions.update(zip(item[1], item[2], strict=True))
    return tree_from_families(zxid, table, iter(families), sessions)


def _families(unpacker: msgpack.Unpacker, sessions: dict[int, int]) -> Iterator[Family]:
    """The body's families; the sessions item, last, fills ``sessions``."""
    for item in unpacker:
        if item[0] == "k":
            yield item[1:]
        elif item[0] == "s":
            sessions.update(zip(item[1], item[2], strict=True))
        else:
            raise SnapshotError(f"unknown snapshot item {item[0]!r}")
