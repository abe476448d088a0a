"""Benchmarks: pyzk and Apache ZooKeeper side by side (``python -m bench``; README.md)."""
