"""Watches, as ZooKeeper's ``WatchManager`` keeps them.

A watch belongs to a *watcher*, which is the client connection that set it (ZooKeeper's
ServerCnxn): when the connection goes, its watches go with it, and a client that
reconnects re-registers them with setWatches. Standard watches are one-shot: they are
removed as they fire. Data watches (set by getData and exists) and child watches (set by
getChildren) live in separate tables, as in ZooKeeper, because a node's deletion fires
both kinds but each watcher hears about it once.

The manager is pure: ``trigger`` returns who must be told; the caller delivers.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

Watcher = Hashable
# A fired watch: (watcher, EventType value, path).
Fired = tuple[Watcher, int, str]

DATA = 0
CHILD = 1


class WatchTable:
    """One kind of one-shot watch: path -> watchers, plus the reverse index."""

    __slots__ = ("by_path", "by_watcher")

    def __init__(self) -> None:
        # dicts rather than sets keep firing order deterministic (insertion order).
        self.by_path: dict[str, dict[Watcher, None]] = {}
        self.by_watcher: dict[Watcher, dict[str, None]] = {}

    def add(self, path: str, watcher: Watcher) -> None:
        ws = self.by_path.get(path)
        if ws is None:
            ws = self.by_path[path] = {}
        ws[watcher] = None
        ps = self.by_watcher.get(watcher)
        if ps is None:
            ps = self.by_watcher[watcher] = {}
        ps[path] = None

    def pop(self, path: str) -> dict[Watcher, None]:
        """Remove and return every watcher of ``path`` (a one-shot watch fires once)."""
        ws = self.by_path.pop(path, None)
        if not ws:
            return {}
        for w in ws:
            ps = self.by_watcher.get(w)
            if ps is not None:
                ps.pop(path, None)
                if not ps:
                    del self.by_watcher[w]
        return ws

    def remove(self, path: str, watcher: Watcher) -> bool:
        ws = self.by_path.get(path)
        if ws is None or watcher not in ws:
            return False
        del ws[watcher]
        if not ws:
            del self.by_path[path]
        ps = self.by_watcher[watcher]
        del ps[path]
        if not ps:
            del self.by_watcher[watcher]
        return True

    def has(self, path: str, watcher: Watcher) -> bool:
        ws = self.by_path.get(path)
        return ws is not None and watcher in ws

    def drop_watcher(self, watcher: Watcher) -> None:
        for path in self.by_watcher.pop(watcher, ()):
            ws = self.by_path[path]
            del ws[watcher]
            if not ws:
                del self.by_path[path]

    def count(self) -> int:
        return sum(len(ws) for ws in self.by_path.values())


class WatchManager:
    __slots__ = ("child", "data")

    def __init__(self) -> None:
        self.data = WatchTable()
        self.child = WatchTable()

    def trigger_data(self, path: str, event: int, out: list[Fired]) -> dict[Watcher, None]:
        ws = self.data.pop(path)
        for w in ws:
            out.append((w, event, path))
        return ws

    def trigger_child(
        self, path: str, event: int, out: list[Fired], skip: Iterable[Watcher] = ()
    ) -> None:
        ws = self.child.pop(path)
        if ws:
            skip = set(skip)
            for w in ws:
                if w not in skip:
                    out.append((w, event, path))

    def drop_watcher(self, watcher: Watcher) -> None:
        """Forget every watch of a closed connection."""
        self.data.drop_watcher(watcher)
        self.child.drop_watcher(watcher)

    def count(self) -> int:
        return self.data.count() + self.child.count()
