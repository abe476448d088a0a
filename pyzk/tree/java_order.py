"""Java's hash orders, which ZooKeeper's replies expose and clients can see.

ZooKeeper returns several sets as Java iterates them: a node's children (a
``HashSet<String>`` created with capacity 8), a session's ephemerals (getEphemerals walks
a *clone* of a ``HashSet``), a connection's auth ids (a ``ConcurrentHashMap``).

A ``HashMap`` puts a key in bin ``spread(hashCode) & (capacity - 1)``, with
``spread(h) = h ^ (h >>> 16)``, and keeps insertion order within a bin, also across
resizes; the capacity doubles when the size passes three quarters of it and never
shrinks. ``clone()`` re-inserts the entries, in iteration order, into a table sized for
their count (``HashMap.putMapEntries``: ``tableSizeFor(size / 0.75 + 1)``).
"""

from __future__ import annotations

from collections.abc import Iterable

CHILDREN_CAPACITY = 8  # DataNode.addChild: new HashSet<String>(8)
DEFAULT_CAPACITY = 16  # new HashSet<>()


def java_string_hash(s: str) -> int:
    """``String.hashCode()`` (over UTF-16 code units), as an unsigned 32-bit value."""
    h = 0
    if s.isascii():
        if len(s) <= 64:  # h stays below 2**320: one mask at the end is cheaper
            for unit in s.encode():
                h = 31 * h + unit
            return h & 0xFFFFFFFF
        for unit in s.encode():
            h = (31 * h + unit) & 0xFFFFFFFF
        return h
    b = s.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(b), 2):
        h = (31 * h + ((b[i] << 8) | b[i + 1])) & 0xFFFFFFFF
    return h


def java_hash(s: str) -> int:
    """``HashMap.hash(s)``: the spread hash whose low bits pick the bin."""
    h = java_string_hash(s)
    return h ^ (h >> 16)


def grown(capacity: int, size: int, initial: int = CHILDREN_CAPACITY) -> int:
    """The capacity once the set has held ``size`` elements (resize past 0.75 full)."""
    capacity = capacity or initial
    while size > capacity * 3 // 4:
        capacity *= 2
    return capacity


def ordered(hashes: dict[str, int], capacity: int) -> list[str]:
    """Names (name -> java_hash, in insertion order) as Java iterates them."""
    mask = (capacity or CHILDREN_CAPACITY) - 1
    return sorted(hashes, key=lambda name: hashes[name] & mask)


def _clone_capacity(size: int) -> int:
    t = int(size / 0.75 + 1.0)
    cap = 1
    while cap < t:
        cap *= 2
    return cap


def java_hash_order(items: Iterable[str], cloned: bool = True) -> list[str]:
    """``items`` (in insertion order) as a default ``HashSet`` of them iterates them.

    ``cloned``: as the set's ``clone()`` iterates them (what getEphemerals answers).
    """
    hashes = {s: java_hash(s) for s in items}
    seq = ordered(hashes, grown(0, len(hashes), DEFAULT_CAPACITY))
    if cloned and seq:
        mask = _clone_capacity(len(seq)) - 1
        seq.sort(key=lambda s: hashes[s] & mask)  # stable: iteration order within a bin
    return seq
