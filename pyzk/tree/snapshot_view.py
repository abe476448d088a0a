"""Snapshots of the tree: a consistent view while it changes, and rebuilding from one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pyzk.tree.datatree import DataTree
from pyzk.tree.java_order import ordered
from pyzk.tree.node import Node
from pyzk.tree.txn import AclList


class SnapshotView:
    """The tree as it was at ``zxid``, readable while the tree keeps changing.

    Copy-on-write: the first change to a node after the view was taken saves the node's
    old fields in ``preserved``, and the first change to its children the old children in
    ``children``; :meth:`records` then reads the saved state for changed nodes and the
    live node for the rest. So a snapshot is exactly the state at ``zxid`` without
    stopping the server to copy a million nodes.

    Nodes come depth first, each node's children in the order ZooKeeper lists them, as
    ZooKeeper's snapshots have them: loading re-inserts each node's children in that
    order into a new set, which is how a restart re-orders children in ZooKeeper (a set
    that shrank gets a smaller table), and so in pyzk too.
    """

    def __init__(self, tree: DataTree) -> None:
        self.zxid = tree.last_zxid
        self.sessions = dict(tree.sessions)
        self.preserved: dict[str, tuple[bytes | None, bytes, AclList, int]] = {}
        self.children: dict[str, tuple[dict[str, int], int]] = {}  # (name -> hash, capacity)
        self.aborted = False  # the tree was replaced wholesale: this view is void
        self._tree = tree

    def records(self) -> Iterator[tuple[str, bytes | None, bytes, AclList, int]]:
        """(path, data, stat, acl, owner) of every node at ``zxid``, parents first.

        A generator resumed between chunks while the tree changes: each node's children
        are listed when it is visited, from the saved copy if they changed since.
        """
        preserved, saved, nodes = self.preserved, self.children, self._tree.nodes
        stack = ["/"]
        while stack:
            path = stack.pop()
            old = preserved.get(path)
            n = nodes[path] if old is None else None
            if n is not None:
                yield path, n.data, n.stat, n.acl, n.owner
            else:
                yield (path, *old)  # type: ignore[misc]
            kids = saved.get(path)
            if kids is None:
                live = n if n is not None else nodes.get(path)
                kids = (live.children or {}, live.capacity) if live is not None else ({}, 0)
            if kids[0]:
                prefix = path if path != "/" else ""
                stack.extend(prefix + "/" + name for name in reversed(ordered(*kids)))

    def close(self) -> None:
        if self._tree.view is self:
            self._tree.view = None


def tree_from_columns(zxid: int, chunks: Iterator[tuple[Any, ...]]) -> DataTree:
    """Rebuild a tree from snapshot chunks (nodes parents first, then sessions).

    The loop is the start-up time of a big tree, so it is kept tight: siblings come
    together, so the last parent looked up is usually the next one's too.
    """
    tree = DataTree()
    tree.nodes.clear()
    nodes, intern, track = tree.nodes, tree._intern, tree._track_owner
    size = 0
    last_parent, parent_node = "", None
    # The chunks share one tuple per ACL list: intern each once (hashing a tuple of
    # tuples per node would cost more than everything else here together).
    interned: dict[int, AclList] = {}
    for chunk in chunks:
        if chunk[0] == "s":
            tree.sessions = dict(zip(chunk[1], chunk[2], strict=True))
            continue
        _, paths, datas, stats, acls, owners = chunk
        for path, data, stat, acl, owner in zip(paths, datas, stats, acls, owners, strict=True):
            shared = interned.get(id(acl))
            if shared is None:
                shared = interned[id(acl)] = intern(acl)
            nodes[path] = Node(data, stat, shared, owner)
            size += len(path) + (len(data) if data else 0)
            if owner:
                track(path, owner)
            i = path.rfind("/")
            if i < 0 or path == "/":
                continue
            parent = path[:i] or "/"
            if parent != last_parent:
                last_parent, parent_node = parent, nodes[parent]
            assert parent_node is not None
            parent_node.add_child(path[i + 1 :])
    tree.last_zxid = zxid
    tree._setup_quotas()
    tree.data_size = size
    return tree
