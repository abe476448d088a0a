"""Command line: run a server, or ask one for its status. No logic of its own.

    pyzk [--config zoo.cfg] [--myid N] [--data-dir DIR] [--client-port P] ...
    pyzk status [--host HOST] [--port P]
    pyzk logdump LOGFILE | pyzk snapdump SNAPSHOT [-d]

A configuration error prints one line naming the key and exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from pyzk import __version__
from pyzk.config import Config, ConfigError, load
from pyzk.storage.wal import LogCorruptError

log = logging.getLogger("pyzk")

EXIT_CONFIG = 2
EXIT_CORRUPT = 3
# How long a graceful shutdown may take before we stop waiting.
SHUTDOWN_GRACE_S = 10.0


def _server_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyzk",
        description="A ZooKeeper-compatible server. Subcommand: 'pyzk status' asks a "
        "running server for its mode.",
    )
    p.add_argument("--config", type=Path, help="a zoo.cfg file")
    p.add_argument("--myid", type=int, help="this server's id (else $MYID, else dataDir/myid)")
    p.add_argument("--data-dir", type=Path, help="dataDir (snapshots, myid)")
    p.add_argument("--data-log-dir", type=Path, help="dataLogDir (transaction log)")
    p.add_argument("--client-port", type=int, help="clientPort (default 2181)")
    p.add_argument("--client-address", help="clientPortAddress (default all interfaces)")
    p.add_argument("--tick-time", type=int, help="tickTime in ms (default 2000)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any zoo.cfg key, e.g. --set 4lw.commands.whitelist=*",
    )
    p.add_argument("--log-level", default=os.environ.get("PYZK_LOG_LEVEL", "INFO"))
    p.add_argument("--log-file", type=Path, help="also log to this file")
    p.add_argument("--version", action="version", version=f"pyzk {__version__}")
    return p


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    out: dict[str, str] = {}
    for flag, key in (
        ("data_dir", "dataDir"),
        ("data_log_dir", "dataLogDir"),
        ("client_port", "clientPort"),
        ("client_address", "clientPortAddress"),
        ("tick_time", "tickTime"),
    ):
        value = getattr(args, flag)
        if value is not None:
            out[key] = str(value)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def _setup_logging(level: str, log_file: Path | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s [myid:%(myid)s] %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
    )


def run_server(argv: list[str]) -> int:
    args = _server_parser().parse_args(argv)
    try:
        cfg = load(args.config, _overrides(args), myid=args.myid)
    except ConfigError as e:
        print(f"pyzk: invalid configuration: {e}", file=sys.stderr)
        return EXIT_CONFIG
    _setup_logging(args.log_level, args.log_file)
    _tag_logs(cfg.myid)
    for key in dict.fromkeys(cfg.ignored):
        log.info("config key %s is not used by pyzk; ignored", key)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without
        pass
    try:
        return asyncio.run(_serve(cfg))
    except LogCorruptError as e:
        log.critical("transaction log is corrupt, refusing to start: %s", e)
        return EXIT_CORRUPT
    except OSError as e:
        print(f"pyzk: cannot start: {e.strerror or e}", file=sys.stderr)
        return EXIT_CONFIG


def _tag_logs(myid: int | None) -> None:
    old = logging.getLogRecordFactory()

    def factory(*a: object, **kw: object) -> logging.LogRecord:
        rec = old(*a, **kw)
        rec.myid = myid if myid is not None else 0
        return rec

    logging.setLogRecordFactory(factory)


async def _serve(cfg: Config) -> int:
    from pyzk.server.node import Server

    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    server = Server(cfg)
    await server.start()
    log.info(
        "pyzk %s serving clients on %s:%d (standalone)",
        __version__,
        cfg.client_port_address,
        server.client_port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await asyncio.wait_for(server.stop(), SHUTDOWN_GRACE_S)
    return 0


def status(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="pyzk status", description="Print the Mode line of a running server."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2181)
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args(argv)
    try:
        with socket.create_connection((args.host, args.port), timeout=args.timeout) as s:
            s.sendall(b"srvr")
            chunks = []
            while chunk := s.recv(4096):
                chunks.append(chunk)
    except OSError as e:
        print(f"Error contacting service. It is probably not running. ({e})", file=sys.stderr)
        return 1
    text = b"".join(chunks).decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("Mode:"):
            print(line)
            return 0
    print(f"no Mode in the server's answer: {text.strip()!r}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "status":
        return status(argv[1:])
    if argv and argv[0] in ("logdump", "snapdump"):
        from pyzk.tools import logdump, snapdump

        if argv[0] == "logdump":
            return logdump.main(argv[1:])
        return snapdump.main(argv[1:])
    return run_server(argv)
