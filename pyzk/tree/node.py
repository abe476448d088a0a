"""A znode and its Stat, kept in wire form.

Almost every reply carries a Stat, and most znodes are read far more often than they are
written, so a node keeps its Stat already encoded as jute's 68-byte record (``stat``).
Replies copy it as is; writes re-encode it. This is also several times smaller than
eleven Python ints per node.

ZooKeeper stores a parent's *create count* and reports ``cversion`` as
``2 * creates - numChildren`` (one create and one delete per child no longer present;
``DataNode.copyStat``). The wire form keeps the reported value; the create count, which
names sequential children, is recovered from it: ``(cversion + numChildren) // 2``.
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


class Node:
    __slots__ = ("acl", "capacity", "children", "data", "owner", "stat")

    def __init__(
        self,
        data: bytes | None,
        stat: bytes,
        acl: tuple[tuple[int, str, str], ...],
        owner: int = 0,
    ) -> None:
        self.data = data
        self.stat = stat  # jute Stat, as clients see it
        # name -> java_hash(name), in insertion order; created on first child (most nodes
        # are leaves). With ``capacity`` it gives ZooKeeper's listing order (java_order).
        self.children: dict[str, int] | None = None
        self.capacity = 0  # of the HashSet ZooKeeper would hold: 0 until the first child
        self.acl = acl
        self.owner = owner  # raw ephemeralOwner (session id, container or TTL marker)

    def fields(self) -> list[int]:
        return list(STAT.unpack(self.stat))

    @property
    def version(self) -> int:
        return STAT.unpack_from(self.stat)[VERSION]  # type: ignore[no-any-return]

    def add_child(self, name: str) -> None:
        kids = self.children
        if kids is None:
            kids = self.children = {}
        kids[name] = java_hash(name)
        self.capacity = grown(self.capacity, len(kids))

    def child_names(self) -> list[str]:
        """The children in the order ZooKeeper lists them."""
        return ordered(self.children, self.capacity) if self.children else []

    @property
    def num_children(self) -> int:
        return len(self.children) if self.children else 0

    def creates(self) -> int:
        """How many children were ever created here (names sequential children)."""
        f = STAT.unpack(self.stat)
        return (f[CVERSION] + f[NUM_CHILDREN]) // 2  # type: ignore[no-any-return]


def new_stat(
    zxid: int, time_ms: int, data: bytes | None, owner: int, creates: int = 0, aversion: int = 0
) -> bytes:
    """The Stat of a freshly created leaf."""
    dlen = len(data) if data else 0
    return STAT.pack(
        zxid, zxid, time_ms, time_ms, 0, 2 * creates, aversion, client_owner(owner), dlen, 0, zxid
    )
