"""Snapshots of the tree: a consistent view while it changes, and rebuilding from one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from pyzk.tree.datatree import DataTree
from pyzk.tree.java_order import grown
from pyzk.tree.node import CONTAINER_OWNER, DATA_AT, Kids, name_cut
from pyzk.tree.txn import AclList

# A family: (parent path, child paths, their records, [index, raw owner, ...] for the
# children that have an owner). The root is the only child of the parent "".
Family = tuple[str, list[str], list[bytes], list[int]]


class SnapshotView:
    """The tree as it was at ``zxid``, readable while the tree keeps changing.

    Copy-on-write: the first change to a node after the view was taken saves its record
    (and raw owner) in ``preserved``, and the first change to its children the old
    children in ``children``; :meth:`families` then reads the saved state for changed
    nodes and the live tree for the rest. So a snapshot is exactly the state at ``zxid``
    without stopping the server to copy a million nodes.

    Each node's children come together, in the order ZooKeeper lists them, as they are
    in ZooKeeper's snapshots: loading re-inserts them in that order into a new set, which
    is how a restart re-orders children in ZooKeeper (a set that shrank gets a smaller
    table), and so in pyzk too.
    """

    def __init__(self, tree: DataTree) -> None:
        self.zxid = tree.last_zxid
        self.sessions = dict(tree.sessions)
        # ACL ids are never reused, so the table as it is now names every record's ACL.
        self.acls = list(tree.acls)
        self.preserved: dict[str, tuple[bytes, int]] = {}  # path -> (record, raw owner)
        self.children: dict[str, Kids | None] = {}  # path -> its children then
        self.aborted = False  # the tree was replaced wholesale: this view is void
        self._tree = tree

    def families(self, limit: int) -> Iterator[Family]:
        """Every node at ``zxid`` as families of at most ``limit`` children, parents first.

        A generator resumed between chunks while the tree changes: a node's children are
        listed when their family is due, from the saved copy if they changed since the
        view was taken (the live ones are the same otherwise).
        """
        saved, live_kids = self.children, self._tree.kids
        owners = self._owners_now()
        stack = ["/"]
        yield from self._family("", ["/"], limit, owners)
        while stack:
            parent = stack.pop()
            kids = saved[parent] if parent in saved else live_kids.get(parent)
            if kids is None or not kids.names:
                continue
            # Hashes are not kept for this: a snapshot must not grow every set it lists.
            paths = kids.listing(name_cut(parent), keep=False)
            yield from self._family(parent, paths, limit, owners)
            stack.extend(reversed(paths))

    def _family(
        self, parent: str, paths: list[str], limit: int, owners_now: dict[str, int]
    ) -> Iterator[Family]:
        """One family, in parts of at most ``limit`` children."""
        preserved, nodes = self.preserved, self._tree.nodes
        for start in range(0, len(paths), limit):
            part = paths[start : start + limit]
            # None for a node gone since the view was taken: preserved has it.
            recs = cast(list[bytes], list(map(nodes.get, part)))
            owners: list[int] = []
            if preserved or owners_now:
                for i, path in enumerate(part):
                    old = preserved.get(path)
                    if old is None:
                        owner = owners_now.get(path, 0)
                    else:
                        recs[i], owner = old
                    if owner:
                        owners += (i, owner)
            yield parent, part, recs, owners

    def _owners_now(self) -> dict[str, int]:
        """The raw owner of every node that has one, from the tree's indexes of them.

        Taken once, when the first family is due, and good for every node listed later
        that is not in ``preserved``: such a node is unchanged since ``zxid`` (so it was
        there when this was taken), and a node's owner never changes. Asking the tree
        node by node was a sixth of a snapshot's time, most nodes having no owner.
        """
        tree = self._tree
        owners = dict.fromkeys(tree.containers, CONTAINER_OWNER)
        owners.update(tree.ttls)
        for session, paths in tree.ephemerals.items():
            owners.update(dict.fromkeys(paths, session))
        return owners

    def close(self) -> None:
        if self._tree.view is self:
            self._tree.view = None


def tree_from_families(
    zxid: int, acls: list[AclList], families: Iterator[Family], sessions: dict[int, int]
) -> DataTree:
    """Rebuild a tree from a snapshot's ACL table, families and sessions.

    This is the start-up time of a big tree, so the per-node work is in C: records are
    used as they were written (their ACL ids index the same table), and a family's
    children go into the node map and their parent's set a whole list at a time.
    """
    tree = DataTree()
    tree.nodes.clear()
    tree.kids.clear()
    tree.acls, tree._acl_ids = [], {}
    for acl in acls:
        tree.acl_id(acl)
    nodes, kids, track = tree.nodes, tree.kids, tree._track_owner
    size = 0
    for parent, paths, recs, owners in families:
        nodes.update(zip(paths, recs, strict=True))
        size += sum(map(len, paths)) + sum(map(len, recs)) - DATA_AT * len(recs)
        for i in range(0, len(owners), 2):
            track(paths[owners[i]], owners[i + 1])
        if not parent:
            continue
        family = kids.get(parent)
        if family is None:
            kids[parent] = Kids(dict.fromkeys(paths))
        else:
            family.names.update(dict.fromkeys(paths))
            family.capacity = grown(family.capacity, len(family.names))
    tree.sessions = sessions
    tree.last_zxid = zxid
    tree._setup_quotas()
    tree.data_size = size
    return tree
