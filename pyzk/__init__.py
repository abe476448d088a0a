"""pyzk: a ZooKeeper-compatible coordination service in Python on asyncio."""

__version__ = "0.1.0"
