"""Fixtures shared by the suite.

The differential fixture: ``server`` is parametrised over ``pyzk`` and ``zookeeper``,
so every integration test runs against both and its expectations are the reference
server's behaviour. ``PYZK_TEST_TARGETS=pyzk`` (or ``zookeeper``) narrows the set for a
quick local run; CI runs both.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.servers import ServerProcess, make_server

TARGETS = [t for t in os.environ.get("PYZK_TEST_TARGETS", "pyzk,zookeeper").split(",") if t]

_started: dict[str, ServerProcess] = {}


@pytest.fixture(scope="session")
def _server_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    yield _started
    for srv in _started.values():
        srv.stop()


@pytest.fixture(params=TARGETS)
def server(
    request: pytest.FixtureRequest,
    _server_pool: dict[str, ServerProcess],
    tmp_path_factory: pytest.TempPathFactory,
) -> ServerProcess:
    """A shared running server of each kind (started once per test session)."""
    kind = request.param
    srv = _server_pool.get(kind)
    if srv is None or srv.proc is None or srv.proc.poll() is not None:
        srv = make_server(kind, tmp_path_factory.mktemp(kind))
        srv.start()
        _server_pool[kind] = srv
    return srv


@pytest.fixture(params=TARGETS)
def fresh_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of each kind of this test's own, for tests that need a pristine one."""
    srv = make_server(request.param, tmp_path / request.param)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def both_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """One fresh server of each kind, side by side, for tests that compare transcripts."""
    servers = {k: make_server(k, tmp_path_factory.mktemp(f"both-{k}")) for k in TARGETS}
    for s in servers.values():
        s.start()
    yield servers
    for s in servers.values():
        s.stop()


_counter = itertools.count()


@pytest.fixture
def root(server: ServerProcess, request: pytest.FixtureRequest) -> str:
    """A path no other test uses, so tests can share one server."""
    return f"/t{os.getpid()}-{next(_counter)}-{request.node.name[:40].replace('/', '_')}"


def connect(srv: ServerProcess, **kw: object) -> KazooClient:
    zk = KazooClient(hosts=srv.hosts, timeout=10.0, **kw)
    zk.start(timeout=15)
    return zk


@pytest.fixture
def zk(server: ServerProcess, root: str) -> Iterator[KazooClient]:
    client = connect(server)
    client.ensure_path(root)
    yield client
    try:
        client.delete(root, recursive=True)
    finally:
        client.stop()
        client.close()


@pytest.fixture
def zk_factory(server: ServerProcess) -> Iterator[Callable[..., KazooClient]]:
    """Open more clients to the same server; all are closed after the test."""
    clients: list[KazooClient] = []

    def make(**kw: object) -> KazooClient:
        c = connect(server, **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.stop()
        c.close()


def configured_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    extra: dict[str, str | None] | None = None,
    jvm_flags: list[str] | None = None,
) -> Iterator[ServerProcess]:
    """Start a server of kind ``request.param`` with settings; for module fixtures.

    Usage: ``@pytest.fixture(scope="module", params=TARGETS)`` whose body is
    ``yield from configured_server(request, tmp_path_factory, {...})``.
    """
    srv = make_server(
        request.param, tmp_path_factory.mktemp(request.param), extra=extra, jvm_flags=jvm_flags
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
