"""The iteration order of a Java ``HashSet<String>``, which some replies expose.

ZooKeeper returns some sets as it iterates them (getEphemerals walks a *clone* of the
session's ephemeral ``HashSet``), so clients see Java's hash order. A ``HashMap`` puts a
key in bin ``spread(hashCode) & (capacity - 1)`` and keeps insertion order within a bin,
also across resizes; the capacity starts at 16 and doubles past three quarters full.
``clone()`` re-inserts the entries, in that order, into a table sized for their count
(``HashMap.putMapEntries``): ``tableSizeFor(size / 0.75 + 1)``, often smaller.
"""

from __future__ import annotations

from collections.abc import Iterable

_DEFAULT_CAPACITY = 16


def java_string_hash(s: str) -> int:
    """``String.hashCode()`` (over UTF-16 code units), as an unsigned 32-bit value."""
    b = s.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(b), 2):
        h = (31 * h + ((b[i] << 8) | b[i + 1])) & 0xFFFFFFFF
    return h


def _capacity(size: int) -> int:
    cap = _DEFAULT_CAPACITY
    while size > cap * 3 // 4:
        cap *= 2
    return cap


def _clone_capacity(size: int) -> int:
    t = int(size / 0.75 + 1.0)
    cap = 1
    while cap < t:
        cap *= 2
    return cap


def java_hash_order(items: Iterable[str], cloned: bool = True) -> list[str]:
    """``items`` (in insertion order) as a Java HashSet of them iterates them.

    ``cloned``: as the set's ``clone()`` iterates them (what getEphemerals answers).
    """
    seq = list(items)
    hashes = {}
    for s in seq:
        h = java_string_hash(s)
        hashes[s] = h ^ (h >> 16)
    mask = _capacity(len(seq)) - 1
    seq.sort(key=lambda s: hashes[s] & mask)  # stable: insertion order within a bin
    if cloned and seq:
        mask = _clone_capacity(len(seq)) - 1
        seq.sort(key=lambda s: hashes[s] & mask)
    return seq
