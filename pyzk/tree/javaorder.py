"""The iteration order of a Java ``HashSet<String>``, which some replies expose.

ZooKeeper returns some sets as it iterates them (getEphemerals walks the session's
ephemeral ``HashSet``), so clients see Java's hash order. A ``HashMap`` puts a key in
bin ``spread(hashCode) & (capacity - 1)`` and keeps insertion order within a bin, also
across resizes; the capacity starts at 16 and doubles past three quarters full.
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


def java_hash_order(items: Iterable[str]) -> list[str]:
    """``items`` (in insertion order) as a Java HashSet of their count iterates them."""
    seq = list(items)
    mask = _capacity(len(seq)) - 1

    def bin_of(s: str) -> int:
        h = java_string_hash(s)
        return (h ^ (h >> 16)) & mask

    return sorted(seq, key=bin_of)  # a stable sort keeps insertion order within a bin
