"""Operator tools for the on-disk state (ZooKeeper's TxnLogToolkit and SnapshotFormatter)."""
