"""Operator surface: four-letter words, AdminServer commands, metrics (all pure)."""

from pyzk import __version__

# The version operators see (srvr, mntr, envi, the AdminServer): the ZooKeeper release
# we are compatible with first, so tools that parse it (e.g. to pick features) see 3.8.
ZK_VERSION = f"3.8.0-pyzk-{__version__}, built on pyzk"
