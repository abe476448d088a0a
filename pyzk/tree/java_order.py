"""The order in which ZooKeeper lists a node's children: Java's HashSet iteration order.

ZooKeeper keeps children in a ``HashSet<String>`` created with capacity 8 and returns
them in its iteration order, which clients see (``ls`` in zkCli prints it as is). That
order is: by bucket — ``(h ^ (h >>> 16)) & (capacity - 1)`` with ``h`` Java's
``String.hashCode`` — and, within a bucket, by insertion (a resize splits buckets
keeping their relative order). The capacity doubles when the size passes three quarters
of it and never shrinks. We keep each child's spread hash and the capacity, and sort.
"""

from __future__ import annotations

INITIAL_CAPACITY = 8  # DataNode.addChild: new HashSet<String>(8)


def java_hash(s: str) -> int:
    """HashMap.hash(String.hashCode(s)): the value whose low bits pick the bucket."""
    h = 0
    for unit in _utf16_units(s):
        h = (31 * h + unit) & 0xFFFFFFFF
    return h ^ (h >> 16)


def _utf16_units(s: str) -> list[int]:
    if s.isascii():
        return list(s.encode())
    units = []
    for ch in s:
        o = ord(ch)
        if o > 0xFFFF:  # a surrogate pair in Java
            o -= 0x10000
            units += [0xD800 | (o >> 10), 0xDC00 | (o & 0x3FF)]
        else:
            units.append(o)
    return units


def grown(capacity: int, size: int) -> int:
    """The capacity after the set reached ``size`` elements (resize past 0.75 full)."""
    capacity = capacity or INITIAL_CAPACITY
    while size > capacity * 3 // 4:
        capacity *= 2
    return capacity


def ordered(children: dict[str, int], capacity: int) -> list[str]:
    """Children (name -> java_hash, in insertion order) as Java iterates them."""
    mask = (capacity or INITIAL_CAPACITY) - 1
    return sorted(children, key=lambda name: children[name] & mask)
