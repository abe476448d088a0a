"""A znode, packed: one ``bytes`` record per znode, and the children of those that have any.

Memory and start-up with a million znodes are set by how many Python objects each znode
costs, so a znode is a single ``bytes`` object (its *record*)::

    record := stat:68 meta:u32 data
    meta   := acl id (index into the tree's ACL table) | NULL_DATA if data is null

``stat`` is jute's 68-byte Stat as clients see it: almost every reply carries it, so
replies slice it out and writes re-encode it. A node with children also has a
:class:`Kids` in the tree's ``kids`` map, keyed by the node's path; its keys are the
children's full paths, the very string objects that key the tree's node map, so a
child costs one dict slot there and no string of its own.

ZooKeeper stores a parent's *create count* and reports ``cversion`` as
``2 * creates - numChildren`` (one create and one delete per child no longer present;
``DataNode.copyStat``). The wire form keeps the reported value; the create count, which
names sequential children, is recovered from it: ``(cversion + numChildren) // 2``.

The raw ephemeralOwner differs from the Stat's for containers and TTL nodes (they show
0); the tree keeps those few in its ``containers`` and ``ttls`` maps.
"""

from __future__ import annotations

import struct

from pyzk.tree.java_order import grown, java_hash, ordered

STAT = struct.Struct(">qqqqiiiqiiq")
STAT_SIZE = STAT.size  # 68

# Field positions in the unpacked Stat tuple.
CZXID, MZXID, CTIME, MTIME, VERSION, CVERSION, AVERSION = 0, 1, 2, 3, 4, 5, 6
OWNER, DATA_LENGTH, NUM_CHILDREN, PZXID = 7, 8, 9, 10

# Raw ephemeralOwner values that are not sessions (ZooKeeper's EphemeralType).
CONTAINER_OWNER = -(1 << 63)  # Long.MIN_VALUE
EXTENDED_MASK = 0xFF << 56  # top byte all ones: an "extended" type, the TTL one here
TTL_MAX_MS = (1 << 40) - 1  # TTLs live in the low 40 bits


def is_session_owner(owner: int) -> bool:
    """Does a raw ephemeralOwner name a session (a plain ephemeral node)?"""
    return owner != 0 and owner != CONTAINER_OWNER and (owner & EXTENDED_MASK) != EXTENDED_MASK


def client_owner(owner: int) -> int:
    """ephemeralOwner as clients see it: containers and TTL nodes report 0."""
    return owner if is_session_owner(owner) else 0


def ttl_owner(ttl_ms: int) -> int:
    """The raw ephemeralOwner of a TTL node (signed 64-bit, as ZooKeeper's long)."""
    raw = EXTENDED_MASK | ttl_ms
    return raw - (1 << 64)


def ttl_of(owner: int) -> int | None:
    """The TTL in ms of a TTL node's raw owner, else None."""
    if owner != CONTAINER_OWNER and (owner & EXTENDED_MASK) == EXTENDED_MASK:
        return owner & TTL_MAX_MS
    return None


NULL_DATA = 0x8000_0000  # meta bit: the data is null (jute buffer length -1), not empty
ACL_ID = 0x7FFF_FFFF
DATA_AT = STAT_SIZE + 4  # 72: where the data starts in a record
_META = struct.Struct(">I")
_META_AT = _META.unpack_from
_BUF_LEN = struct.Struct(">i").pack
_NULL_BUFFER = _BUF_LEN(-1)
OWNER_AT = 44  # byte offset of ephemeralOwner in the Stat
_Q_AT = struct.Struct(">q").unpack_from
_I_AT = struct.Struct(">i").unpack_from


def record(stat: bytes, acl_id: int, data: bytes | None) -> bytes:
    """A node's record from its parts."""
    if data is None:
        return stat + _META.pack(acl_id | NULL_DATA)
    return b"".join((stat, _META.pack(acl_id), data))


def with_data(rec: bytes, stat: bytes, data: bytes | None) -> bytes:
    """The record with a new Stat and data, its ACL kept."""
    if data is not None and not rec[STAT_SIZE] & 0x80:
        return b"".join((stat, rec[STAT_SIZE:DATA_AT], data))  # the meta as it is
    return record(stat, acl_id_of(rec), data)


def data_of(rec: bytes) -> bytes | None:
    return None if rec[STAT_SIZE] & 0x80 else rec[DATA_AT:]


def data_length(rec: bytes) -> int:
    return len(rec) - DATA_AT


def acl_id_of(rec: bytes) -> int:
    return _META_AT(rec, STAT_SIZE)[0] & ACL_ID  # type: ignore[no-any-return]


def stat_owner(rec: bytes) -> int:
    """ephemeralOwner as the Stat shows it: a session id or 0."""
    return _Q_AT(rec, OWNER_AT)[0]  # type: ignore[no-any-return]


def version_of(rec: bytes) -> int:
    return _I_AT(rec, 32)[0]  # type: ignore[no-any-return]


def data_and_stat(rec: bytes) -> bytes:
    """A getData reply body: the data as a jute buffer, then the Stat (one copy)."""
    view = memoryview(rec)
    if rec[STAT_SIZE] & 0x80:
        return b"".join((_NULL_BUFFER, view[:STAT_SIZE]))
    return b"".join((_BUF_LEN(len(rec) - DATA_AT), view[DATA_AT:], view[:STAT_SIZE]))


def fields(rec: bytes) -> list[int]:
    """The Stat's fields, to change some and pack them again (``STAT.pack``)."""
    return list(STAT.unpack_from(rec))


# What a child's create or delete changes in its parent: cversion (at byte 36), then
# numChildren and pzxid (56 and 60), read in one unpack and written as two packs around
# the unchanged bytes; a third of the cost of unpacking and packing all eleven fields.
_CHILD_FIELDS = struct.Struct(">i16xiq")
_CVERSION_PACK = struct.Struct(">i").pack
_NUM_CHILDREN_PZXID_PACK = struct.Struct(">iq").pack


def child_fields(rec: bytes) -> tuple[int, int, int]:
    """The node's (cversion, numChildren, pzxid)."""
    return _CHILD_FIELDS.unpack_from(rec, 36)


def with_child_fields(rec: bytes, cversion: int, num_children: int, pzxid: int) -> bytes:
    """The record with a new cversion, numChildren and pzxid (all else kept)."""
    return b"".join(
        (
            rec[:36],
            _CVERSION_PACK(cversion),
            rec[40:56],
            _NUM_CHILDREN_PZXID_PACK(num_children, pzxid),
            rec[STAT_SIZE:],
        )
    )


def creates(rec: bytes) -> int:
    """How many children were ever created here (names sequential children)."""
    f = STAT.unpack_from(rec)
    return (f[CVERSION] + f[NUM_CHILDREN]) // 2  # type: ignore[no-any-return]


class Kids:
    """A node's children: their full paths in insertion order, with what ZooKeeper's
    ``HashSet`` of their names would need to list them in its order.

    ``names`` maps each child's path to the Java hash of its name, computed on the first
    listing (None until then: a restart loads a million children without hashing them).
    ``capacity`` is the HashSet's table size: it grows with the set and never shrinks.
    """

    __slots__ = ("capacity", "names")

    def __init__(self, names: dict[str, int | None] | None = None, capacity: int = 0) -> None:
        self.names: dict[str, int | None] = {} if names is None else names
        self.capacity = capacity or grown(0, len(self.names))

    def add(self, path: str) -> None:
        names = self.names
        names[path] = None
        if len(names) > self.capacity * 3 // 4:  # grown()'s test, without the call
            self.capacity = grown(self.capacity, len(names))

    def copy(self) -> Kids:
        return Kids(dict(self.names), self.capacity)

    def listing(self, cut: int, keep: bool = True) -> list[str]:
        """The children's paths as ZooKeeper lists them; ``cut``: where a child's name
        starts in its path (:func:`name_cut`). ``keep``: remember the hashes computed."""
        names = self.names
        if keep:
            for path, h in names.items():
                if h is None:
                    names[path] = java_hash(path[cut:])
            return ordered(names, self.capacity)  # type: ignore[arg-type]
        hashes = {p: java_hash(p[cut:]) if h is None else h for p, h in names.items()}
        return ordered(hashes, self.capacity)


def name_cut(path: str) -> int:
    """Where a child's name starts in the paths of ``path``'s children."""
    return 1 if path == "/" else len(path) + 1


# A new node's Stat and meta in one pack (a create's hot path).
_STAT_META = struct.Struct(STAT.format + "I")


def new_record(zxid: int, time_ms: int, data: bytes | None, owner: int, acl_id: int) -> bytes:
    """The record of a freshly created leaf; its Stat is ``rec[:STAT_SIZE]``."""
    shown = owner and client_owner(owner)  # most nodes have no owner: no call
    if data is None:
        meta, data, dlen = acl_id | NULL_DATA, b"", 0
    else:
        meta, dlen = acl_id, len(data)
    head = _STAT_META.pack(zxid, zxid, time_ms, time_ms, 0, 0, 0, shown, dlen, 0, zxid, meta)
    return head + data if data else head
