"""A standalone server: the asyncio shell around the request pipeline.

The pipeline moves in one place, :meth:`Server._pump`: it hands the txns the pipeline
prepared to the log stage and writes every connection that has output. It runs after
each batch of client input and each tick; the log stage calls back when a batch is
durable (commit, then pump) or refused (abort, then pump). Nothing is answered before
the log stage says it is on disk.

At start the tree is recovered from the newest snapshot and the log after it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any

from pyzk.config import Config
from pyzk.ops import fourletter
from pyzk.ops.stats import ServerMetrics, ServerStats
from pyzk.pipeline.acl import Security
from pyzk.pipeline.connection import CONNECT, FOUR_LETTER, REQUEST, ClientConnection, Event
from pyzk.pipeline.processor import Processor, Settings
from pyzk.pipeline.sasl_session import admit
from pyzk.pipeline.session_ops import SESSION_OPS
from pyzk.security import setup as security_setup
from pyzk.server.client_listener import ClientProtocol
from pyzk.server.log_stage import LogStage
from pyzk.server.ops_view import ServerOpsView
from pyzk.server.secure_port import SecureListener
from pyzk.storage.recovery import recover
from pyzk.storage.wal import TxnLog
from pyzk.tree.txn import Txn

log = logging.getLogger(__name__)


class Server:
    processor_class: type[Processor] = Processor
    snapshot_at_start = True  # as ZooKeeper's standalone loadData
    ops_view_class: type[ServerOpsView] = ServerOpsView

    def __init__(self, config: Config) -> None:
        self.config = config
        sec = config.security
        # Files the security settings name are read now: a bad one stops start-up.
        self.client_tls = security_setup.client_tls(sec, config.secure_client_port)
        security = Security(
            skip_acl=config.skip_acl,
            super_digest=config.super_digest,
            providers=sec.providers,
            x509_super_user=sec.x509_super_user,
            sasl=security_setup.sasl_config(sec),
            enforce_schemes=sec.enforce_schemes,
        )
        recovered = recover(config.data_dir, config.log_dir)
        self.tree = recovered.tree
        settings = Settings(
            tick_ms=config.tick_time,
            min_session_timeout_ms=config.min_timeout_ms,
            max_session_timeout_ms=config.max_timeout_ms,
            extended_types=config.extended_types_enabled,
            enforce_quota=config.enforce_quota,
            security=security,
            container_max_per_minute=config.container_max_per_minute,
            container_max_never_used_ms=config.container_max_never_used_ms,
        )
        if config.myid is not None:
            settings.server_id = config.myid & 0xFF  # the top byte of its session ids
        self.proc = self.processor_class(self.tree, settings, start_wall_ms=int(time.time() * 1000))
        self.txn_log = TxnLog(
            config.log_dir, config.prealloc_size_kb * 1024, sync=config.force_sync
        )
        self.log_stage = LogStage(
            self.txn_log,
            self.tree,
            config.data_dir,
            self._durable,
            self._refused,
            snap_count=config.snap_count,
            fsync_warn_ms=config.fsync_warning_threshold_ms,
            snap_retain=config.autopurge_snap_retain_count,
        )
        self.stats = ServerStats()
        self.metrics = ServerMetrics()
        self.log_stage.observe = self.metrics.observe
        self.log_stage.slow_fsync = self._slow_fsync
        self.ops = self.ops_view_class(self)  # what four-letter words and admin read
        self.connections: dict[ClientConnection, None] = {}
        self.mode = "standalone"
        self.started_at = time.monotonic()
        self._listener: asyncio.Server | None = None
        self._secure_listener: SecureListener | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        self._purge_handle: asyncio.TimerHandle | None = None
        self._container_handle: asyncio.TimerHandle | None = None
        self._closed = asyncio.Event()

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        self._listener = await loop.create_server(
            lambda: ClientProtocol(self),
            cfg.client_port_address,
            cfg.client_port,
            reuse_address=True,
        )
        if self.client_tls is not None:
            await self._start_secure_listener(self.client_tls)
        self._clock()
        self.proc.restore_sessions()
        if self.snapshot_at_start:
            # A clean snapshot of what was recovered, as ZooKeeper's loadData takes (so a
            # restart re-orders children the way ZooKeeper's does: see snapshot_view).
            self.log_stage.start_snapshot()
        self._schedule_tick()
        self._schedule_purge()
        self._schedule_container_check()
        log.info("binding to port %s:%d", cfg.client_port_address, self.client_port)

    def _slow_fsync(self) -> None:
        self.stats.fsync_threshold_exceed_count += 1

    async def _start_secure_listener(self, context: ssl.SSLContext) -> None:
        cfg = self.config
        address = cfg.security.secure_client_address or "0.0.0.0"
        timeout_s = cfg.security.client_tls.handshake_timeout_ms / 1000
        listener = SecureListener(lambda: ClientProtocol(self, secure=True), context, timeout_s)
        try:
            await listener.start(address, cfg.secure_client_port)
        except OSError as e:
            assert self._listener is not None
            self._listener.close()
            where = f"secureClientPort {address}:{cfg.secure_client_port}"
            raise OSError(e.errno, e.strerror, where) from None
        self._secure_listener = listener
        log.info("binding to secure port %s:%d", address, cfg.secure_client_port)

    @property
    def serving(self) -> bool:
        """Answering clients? A standalone server always is."""
        return True

    @property
    def client_port(self) -> int:
        assert self._listener is not None
        sock = self._listener.sockets[0]
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, close every client connection, and finish."""
        for listener in (self._listener, self._secure_listener):
            if listener is not None:
                listener.close()
        for handle in (self._tick_handle, self._purge_handle, self._container_handle):
            if handle is not None:
                handle.cancel()
        await self.log_stage.drain()  # what is in flight is answered first
        for conn in list(self.connections):
            conn.closing = True
            conn.handle.flush()
        for listener in (self._listener, self._secure_listener):
            if listener is not None:
                await listener.wait_closed()
        await self.log_stage.close()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- connections ------------------------------------------------------------------

    def accept_connection(self, conn: ClientConnection) -> bool:
        limit = self.config.max_client_cnxns
        if limit:
            ip = conn.peer.rsplit(":", 1)[0]
            same = sum(1 for c in self.connections if c.peer.rsplit(":", 1)[0] == ip)
            if same >= limit:
                log.warning("Too many connections from %s - max is %d", ip, limit)
                self.metrics.counters["connection_rejected"] += 1
                return False
        self.connections[conn] = None
        return True

    def connection_lost(self, conn: ClientConnection) -> None:
        self.connections.pop(conn, None)
        self.proc.disconnected(conn)
        self._pump()

    def handle_events(self, conn: ClientConnection, events: list[Event]) -> None:
        self._clock()
        proc = self.proc
        for ev in events:
            kind = ev[0]
            if kind == REQUEST:
                # Authentication is enforced before the pipeline, auth and sasl excepted.
                if ev[2] in SESSION_OPS or admit(conn, ev[1]):
                    proc.request(conn, ev[1], ev[2], ev[3])
                else:
                    proc.dirty[conn] = None
            elif kind == CONNECT:
                proc.connect(conn, ev[1])
            elif kind == FOUR_LETTER:
                self._four_letter(conn, ev[1])
        self._pump()

    def _four_letter(self, conn: ClientConnection, word: str) -> None:
        conn.queue(fourletter.answer(self.ops, word).encode())
        conn.closing = True
        self.proc.dirty[conn] = None

    # --- the pipeline loop ------------------------------------------------------------

    def _pump(self) -> None:
        txns = self.proc.take_to_log()
        if txns:
            self.log_stage.append(txns)
        self._flush()

    def _flush(self) -> None:
        for conn in self.proc.take_dirty():
            conn.handle.flush()

    def _durable(self, txns: list[Txn]) -> None:
        self._clock()
        self.proc.commit(txns)
        self._pump()

    def _refused(self, txns: list[Txn], exc: OSError) -> None:
        self._clock()
        self.proc.abort(txns)
        self._flush()

    def _clock(self) -> None:
        self.proc.now_ms = int(time.monotonic() * 1000)
        self.proc.wall_ms = int(time.time() * 1000)

    def _schedule_tick(self) -> None:
        """Run the session expirer at the next tick boundary (ExpiryQueue buckets)."""
        loop = asyncio.get_running_loop()
        tick = self.config.tick_time
        now_ms = time.monotonic() * 1000
        delay_ms = tick - (now_ms % tick) + 1
        self._tick_handle = loop.call_later(delay_ms / 1000, self._tick)

    def _schedule_purge(self) -> None:
        hours = self.config.autopurge_purge_interval
        if hours > 0:
            loop = asyncio.get_running_loop()
            self._purge_handle = loop.call_later(hours * 3600, self._purge)

    def _schedule_container_check(self) -> None:
        interval = self.config.container_check_interval_ms
        loop = asyncio.get_running_loop()
        self._container_handle = loop.call_later(interval / 1000, self._check_containers)

    def _check_containers(self) -> None:
        """The container and TTL reaper's round: deletions go through the pipeline."""
        self._clock()
        self.proc.check_containers(self.config.container_check_interval_ms)
        self._pump()
        self._schedule_container_check()

    def _purge(self) -> None:
        asyncio.get_running_loop().create_task(self.log_stage.purge())
        self._schedule_purge()

    def _tick(self) -> None:
        self._clock()
        self.proc.tick()
        self._pump()
        self._schedule_tick()

    def info(self) -> dict[str, Any]:
        return {"mode": self.mode, "zxid": self.tree.last_zxid}
