"""Watches, as ZooKeeper 3.8's ``WatchManager`` keeps them.

Theory of operation
-------------------
A watch belongs to a *watcher*, which is the client connection that set it (ZooKeeper's
ServerCnxn): when the connection goes, its watches go with it, and a client that
reconnects re-registers them with setWatches/setWatches2.

There are two tables, as in ZooKeeper's DataTree: *data* watches (set by getData and
exists) and *child* watches (set by getChildren). A node's deletion fires both kinds,
but each watcher hears about it once: the child table skips watchers the data table
already told.

Each (watcher, path) in a table has one *mode* (``WatcherModeManager``):

* STANDARD: one-shot, removed as it fires, fires only for its own path;
* PERSISTENT (addWatch mode 0): stays, fires for its own path;
* PERSISTENT_RECURSIVE (addWatch mode 1): stays, fires for its path and every path
  below it, except NodeChildrenChanged (a recursive watcher hears of the child itself).

addWatch puts the watch in both tables with that mode. Setting a standard watch on a
(watcher, path) that has a persistent one *replaces* the mode in that table, as
ZooKeeper 3.8 does (one mode per key; ZOOKEEPER-4466 changed this only in 3.9).

The manager is pure: ``trigger_*`` return who must be told; the caller delivers.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from enum import IntEnum

from pyzk.jute.codes import EventType, WatcherType

Watcher = Hashable
# A fired watch: (watcher, EventType value, path).
Fired = tuple[Watcher, int, str]


class NoParent(ValueError):
    """A checkWatches path ZooKeeper 3.8.0 cannot walk up (it fails the request)."""


class WatchMode(IntEnum):
    STANDARD = -1
    PERSISTENT = 0  # the AddWatchMode values
    PERSISTENT_RECURSIVE = 1


def _self_and_ancestors(path: str) -> Iterable[str]:
    """``path``, then each parent up to "/" (ZooKeeper's PathParentIterator)."""
    yield path
    while len(path) > 1:
        i = path.rfind("/")
        path = path[:i] or "/"
        yield path


class WatchTable:
    """One kind of watch: path -> watchers, the reverse index, and non-standard modes."""

    __slots__ = ("by_path", "by_watcher", "modes", "recursive")

    def __init__(self) -> None:
        # dicts rather than sets keep firing order deterministic (insertion order).
        self.by_path: dict[str, dict[Watcher, None]] = {}
        self.by_watcher: dict[Watcher, dict[str, None]] = {}
        self.modes: dict[tuple[Watcher, str], WatchMode] = {}  # absent: STANDARD
        self.recursive = 0  # how many PERSISTENT_RECURSIVE entries (skip parents if none)

    def add(self, path: str, watcher: Watcher, mode: WatchMode = WatchMode.STANDARD) -> None:
        ws = self.by_path.get(path)
        if ws is None:
            ws = self.by_path[path] = {}
        ws[watcher] = None
        ps = self.by_watcher.get(watcher)
        if ps is None:
            ps = self.by_watcher[watcher] = {}
        ps[path] = None
        self._set_mode(watcher, path, mode)

    def _set_mode(self, watcher: Watcher, path: str, mode: WatchMode) -> None:
        key = (watcher, path)
        old = self.modes.pop(key, WatchMode.STANDARD)
        if mode != WatchMode.STANDARD:
            self.modes[key] = mode
        was = old == WatchMode.PERSISTENT_RECURSIVE
        now = mode == WatchMode.PERSISTENT_RECURSIVE
        self.recursive += now - was

    def trigger(
        self, path: str, event: int, out: list[Fired], skip: Iterable[Watcher] = ()
    ) -> dict[Watcher, None]:
        """Fire the watches ``event`` on ``path`` concerns; returns who they belong to.

        Watchers in ``skip`` are not told (they were told by the other table) but are
        still consumed, as in ZooKeeper.
        """
        if not self.by_path:
            return {}  # no watch anywhere: the common case on a busy write path
        told: dict[Watcher, None] = {}
        paths = _self_and_ancestors(path) if self.recursive else (path,)
        for local in paths:
            ws = self.by_path.get(local)
            if not ws:
                continue
            at_parent = local != path
            for w in list(ws):
                mode = self.modes.get((w, local), WatchMode.STANDARD)
                if mode == WatchMode.PERSISTENT_RECURSIVE:
                    if event != EventType.NodeChildrenChanged:
                        told[w] = None
                elif not at_parent:
                    told[w] = None
                    if mode == WatchMode.STANDARD:
                        del ws[w]
                        ps = self.by_watcher.get(w)
                        if ps is not None:
                            ps.pop(local, None)
                            if not ps:
                                del self.by_watcher[w]
            if not ws:
                del self.by_path[local]
        skip = set(skip) if skip else ()
        for w in told:
            if w not in skip:
                out.append((w, event, path))
        return told

    def remove(self, path: str, watcher: Watcher) -> bool:
        """Remove one watcher's watch on ``path``, whatever its mode; False if none."""
        ps = self.by_watcher.get(watcher)
        if ps is None or path not in ps:
            return False
        del ps[path]
        if not ps:
            del self.by_watcher[watcher]
        ws = self.by_path.get(path)
        if ws is None or watcher not in ws:
            return False
        del ws[watcher]
        if not ws:
            del self.by_path[path]
        self._set_mode(watcher, path, WatchMode.STANDARD)
        return True

    def contains(self, path: str, watcher: Watcher) -> bool:
        """checkWatches' test (``WatchManager.containsWatcher`` in 3.8.0).

        It answers whether *any* connection watches ``path`` in this table, not only
        ``watcher``: 3.8.0 looks the path up and never the watcher in its set.

        3.8.0 also walks ``path`` with a PathParentIterator (the path alone, or up to
        "/" once the table holds a recursive watch), which works out each step's parent
        as it goes: a step without a "/" has none, and :class:`NoParent` stands for the
        exception that makes ZooKeeper answer MARSHALLINGERROR.
        """
        if path and "/" not in path:
            raise NoParent(path)
        if path in self.by_path:
            return True
        if self.recursive and path and not path.startswith("/"):
            raise NoParent(path)  # the walk up a relative path reaches its first name
        return False

    def has(self, path: str, watcher: Watcher) -> bool:
        ws = self.by_path.get(path)
        return ws is not None and watcher in ws

    def drop_watcher(self, watcher: Watcher) -> None:
        for path in self.by_watcher.pop(watcher, ()):
            ws = self.by_path[path]
            del ws[watcher]
            if not ws:
                del self.by_path[path]
            self._set_mode(watcher, path, WatchMode.STANDARD)

    def count(self) -> int:
        return sum(len(ws) for ws in self.by_path.values())


class WatchManager:
    __slots__ = ("child", "data")

    def __init__(self) -> None:
        self.data = WatchTable()
        self.child = WatchTable()

    def trigger_data(self, path: str, event: int, out: list[Fired]) -> dict[Watcher, None]:
        return self.data.trigger(path, event, out)

    def trigger_child(
        self, path: str, event: int, out: list[Fired], skip: Iterable[Watcher] = ()
    ) -> None:
        self.child.trigger(path, event, out, skip)

    def add_persistent(self, path: str, watcher: Watcher, mode: WatchMode) -> None:
        """addWatch: a persistent (or recursive) watch sits in both tables."""
        self.data.add(path, watcher, mode)
        self.child.add(path, watcher, mode)

    def _tables(self, kind: int) -> tuple[WatchTable, ...]:
        if kind == WatcherType.Children:
            return (self.child,)
        if kind == WatcherType.Data:
            return (self.data,)
        if kind == WatcherType.Any:
            return (self.child, self.data)
        raise ValueError(f"unknown watcher type {kind}")

    def remove(self, path: str, kind: int, watcher: Watcher) -> bool:
        """removeWatches: False (NOWATCHER) when nothing was removed."""
        removed = False
        for table in self._tables(kind):
            removed = table.remove(path, watcher) or removed
        return removed

    def contains(self, path: str, kind: int, watcher: Watcher) -> bool:
        """checkWatches: see :meth:`WatchTable.contains` for 3.8.0's quirks.

        Each table is asked, even after one said yes (ZooKeeper's two ``if`` for Any).
        """
        found = False
        for table in self._tables(kind):
            found = table.contains(path, watcher) or found
        return found

    def drop_watcher(self, watcher: Watcher) -> None:
        """Forget every watch of a closed connection."""
        self.data.drop_watcher(watcher)
        self.child.drop_watcher(watcher)

    def count(self) -> int:
        return self.data.count() + self.child.count()
