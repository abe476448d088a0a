"""Replacing a tree's contents (a leader's SNAP, a TRUNC reload) keeps nothing stale."""

from __future__ import annotations

from pyzk.tree.datatree import DataTree


def test_replace_contents_takes_every_part_of_the_state() -> None:
    fresh = DataTree()
    old = DataTree()
    old.set_config(b"server.1=a:1:2:participant\nversion=0")
    fresh.containers["/c"] = None
    fresh.sessions[7] = 4000
    fresh.last_zxid = 99
    old.replace_contents(fresh)
    assert old.nodes is fresh.nodes and old.sessions == {7: 4000} and old.last_zxid == 99
    assert old.containers is fresh.containers and old.quotas is fresh.quotas
    # The membership is this server's own view: it survives the replacement.
    assert old.data("/zookeeper/config") == b"server.1=a:1:2:participant\nversion=0"
    assert old.ttls is fresh.ttls and old.ephemerals is fresh.ephemerals
