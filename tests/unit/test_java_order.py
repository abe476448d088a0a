"""Java's String.hashCode, which orders the children ZooKeeper lists."""

from __future__ import annotations

import random

from pyzk.tree.java_order import java_string_hash


def reference(s: str) -> int:
    """String.hashCode by its definition: int arithmetic over UTF-16 code units."""
    h = 0
    units = s.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) % 2**32
    return h


def test_known_values() -> None:
    # From Java: "hello".hashCode() == 99162322, "Hello World".hashCode() == -862545276.
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("Hello World") == -862545276 % 2**32


def test_every_length_and_non_ascii() -> None:
    rng = random.Random(7)
    alphabet = "abcXYZ09-_.é漢\U0001f600"
    for n in range(0, 140):
        ascii_s = "".join(rng.choice("abcXYZ09-_.") for _ in range(n))
        mixed = "".join(rng.choice(alphabet) for _ in range(n))
        assert java_string_hash(ascii_s) == reference(ascii_s)
        assert java_string_hash(mixed) == reference(mixed)
