"""Quotas, as ZooKeeper keeps them under /zookeeper/quota.

Theory of operation
-------------------
A quota on ``/app`` is two nodes that clients (zkCli's setquota) create:
``/zookeeper/quota/app/zookeeper_limits`` holds the limits and
``/zookeeper/quota/app/zookeeper_stats`` the usage, both as ``StatsTrack`` text:
``count=N,bytes=B``, and with hard limits ``count=N,bytes=B=;byteHardLimit=..;
countHardLimit=..`` (the extra ``=`` hides the new keys from old parsers).

The tree keeps the set of quota roots (ZooKeeper's PathTrie): creating a limits node
adds one, deleting it removes it; creating a stats node recounts its subtree. Every
create, delete and setData below a quota root then updates that root's stats node in
place, without a new version or mzxid (``DataTree.updateQuotaStat``). Only the deepest
root counts a change. The root "/" never has a quota.

With ``enforceQuota``, a write that would take a root past a *hard* limit fails with
QUOTAEXCEEDED (``ZooKeeperServer.checkQuota``); soft limits are only logged.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

QUOTA_ROOT = "/zookeeper/quota"
LIMIT_NODE = "zookeeper_limits"
STAT_NODE = "zookeeper_stats"

COUNT, BYTES = "count", "bytes"
COUNT_HARD, BYTES_HARD = "countHardLimit", "byteHardLimit"

_PAIRS = re.compile(r"[,;]+")


def limit_path(path: str) -> str:
    return f"{QUOTA_ROOT}{path}/{LIMIT_NODE}"


def stat_path(path: str) -> str:
    return f"{QUOTA_ROOT}{path}/{STAT_NODE}"


def parse_stats(data: bytes | None) -> dict[str, int]:
    """A StatsTrack's keys and values; pairs that do not parse are skipped."""
    out: dict[str, int] = {}
    text = (data or b"").decode("utf-8", "replace")
    if not text:
        return out
    for pair in _PAIRS.split(text):
        kv = [p for p in pair.split("=")]
        while len(kv) > 1 and kv[-1] == "":
            kv.pop()  # Java's split drops trailing empty strings
        if len(kv) < 2:
            continue
        try:
            out[kv[0]] = int(kv[1]) if kv[1] else -1
        except ValueError:
            continue
    return out


def format_stats(stats: dict[str, int]) -> bytes:
    """StatsTrack.toString: count and bytes first, other keys sorted after ``=;``."""
    text = f"{COUNT}={stats.get(COUNT, -1)},{BYTES}={stats.get(BYTES, -1)}"
    extra = sorted(k for k in stats if k not in (COUNT, BYTES))
    if extra:
        text += "=" + "".join(f";{k}={stats[k]}" for k in extra)
    return text.encode()


class QuotaIndex:
    """The paths that have a quota (ZooKeeper's PathTrie of quota roots)."""

    __slots__ = ("roots",)

    def __init__(self) -> None:
        self.roots: set[str] = set()

    @staticmethod
    def _norm(path: str) -> str:
        parts = [p for p in path.split("/") if p.strip()]
        return "/" + "/".join(parts)

    def add(self, path: str) -> None:
        if path:
            self.roots.add(self._norm(path))

    def remove(self, path: str) -> None:
        self.roots.discard(self._norm(path))

    def max_prefix(self, path: str) -> str | None:
        """The deepest quota root at or above ``path`` ("/" never counts), else None."""
        if not self.roots:
            return None
        parts = [p for p in path.split("/") if p.strip()]
        for n in range(len(parts), 0, -1):
            prefix = "/" + "/".join(parts[:n])
            if prefix in self.roots:
                return prefix
        return None


def exceeded(
    limits: dict[str, int], usage: dict[str, int], count_diff: int, bytes_diff: int
) -> bool:
    """Would this change break a hard limit? Soft limits are only logged (checkQuota)."""
    for diff, soft_key, hard_key, used_key in (
        (count_diff, COUNT, COUNT_HARD, COUNT),
        (bytes_diff, BYTES, BYTES_HARD, BYTES),
    ):
        soft, hard = limits.get(soft_key, -1), limits.get(hard_key, -1)
        if diff == 0 or (soft < 0 and hard < 0):
            continue
        new = usage.get(used_key, -1) + diff
        limit = hard if hard > -1 else soft
        if new > limit:
            log.warning(
                "Quota exceeded: [current %s=%d, %s%sLimit=%d]",
                used_key,
                new,
                "hard" if hard > -1 else "soft",
                "Count" if used_key == COUNT else "Byte",
                limit,
            )
            if hard > -1:
                return True
    return False
