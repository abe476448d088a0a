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
import socket
import sys
from pathlib import Path

from pyzk import __version__
from pyzk.config import Config, ConfigError, load, read_properties
from pyzk.security.settings import SecurityConfigError
from pyzk.storage.wal import LogCorruptError

log = logging.getLogger("pyzk")

EXIT_CONFIG = 2
EXIT_CORRUPT = 3
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _server_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyzk",
        description="A ZooKeeper-compatible server. Subcommand: 'pyzk status' asks a "
        "running server for its mode (see 'pyzk status --help').",
        epilog="Settings, later wins: defaults, -D flags in JVMFLAGS/SERVER_JVMFLAGS, the "
        "zoo.cfg file, these options. Exit status: 0 after SIGTERM/SIGINT, 2 for an invalid "
        "configuration or a port that cannot be bound.",
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
    p.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=os.environ.get("PYZK_LOG_LEVEL", "INFO").upper(),
        help="INFO (default) logs events, never single requests; DEBUG more",
    )
    p.add_argument("--log-file", type=Path, help="also log to this file (appended)")
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
    try:
        _setup_logging(args.log_level, args.log_file)
    except (ValueError, OSError) as e:
        print(f"pyzk: cannot set up logging: {e}", file=sys.stderr)
        return EXIT_CONFIG
    _tag_logs(cfg.myid)
    _log_config(cfg)
    # PYZK_EVENT_LOOP=asyncio runs on the standard library's loop (for debugging, and for
    # tests of what must not depend on the loop's order of timers and input).
    if os.environ.get("PYZK_EVENT_LOOP", "uvloop") != "asyncio":
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without
            pass
    # Imported here so that `pyzk status`, a probe run often, loads no server code.
    from pyzk.server.runner import serve

    try:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        cfg.log_dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(serve(cfg))
    except LogCorruptError as e:
        log.critical("transaction log is corrupt, refusing to start: %s", e)
        return EXIT_CORRUPT
    except SecurityConfigError as e:  # a key store, trust store or JAAS file that fails
        print(f"pyzk: invalid configuration: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as e:
        print(f"pyzk: cannot start: {e.strerror or e}", file=sys.stderr)
        return EXIT_CONFIG


def _log_config(cfg: Config) -> None:
    """One line for the settings that matter, one for what was ignored."""
    log.info(
        "config: clientPort=%s:%d dataDir=%s dataLogDir=%s tickTime=%d maxClientCnxns=%d "
        "sessionTimeout=%d..%dms 4lw=%s admin=%s metrics=%s",
        cfg.client_port_address,
        cfg.client_port,
        cfg.data_dir,
        cfg.log_dir,
        cfg.tick_time,
        cfg.max_client_cnxns,
        cfg.min_timeout_ms,
        cfg.max_timeout_ms,
        ",".join(sorted(cfg.fourlw_whitelist)),
        f"{cfg.admin_server_address}:{cfg.admin_server_port}" if cfg.admin_enable else "off",
        f"{cfg.metrics_host}:{cfg.metrics_port}" if cfg.metrics_provider else "off",
    )
    _log_security(cfg)
    if cfg.ignored:
        log.info("config keys not used by pyzk, ignored: %s", ", ".join(dict.fromkeys(cfg.ignored)))
    if cfg.jvm_ignored:
        log.info(
            "JVM flags not used by pyzk, ignored: %s", " ".join(dict.fromkeys(cfg.jvm_ignored))
        )


def _log_security(cfg: Config) -> None:
    """One line for TLS, SASL and quorum authentication: what is on, never a secret."""
    s = cfg.security
    secure = (
        f"{s.secure_client_address or '0.0.0.0'}:{cfg.secure_client_port} "
        f"clientAuth={s.client_tls.client_auth}"
        if cfg.secure_client_port
        else "off"
    )
    quorum = [name for name, on in (("sslQuorum", s.ssl_quorum), ("sasl", s.quorum_sasl)) if on]
    log.info(
        "security: secureClientPort=%s jaas=%s authProviders=%s enforce.auth.schemes=%s "
        "quorum auth=%s",
        secure,
        s.jaas_file or "none",
        ",".join(sorted(s.providers | {"digest", "ip"})),
        ",".join(sorted(s.enforce_schemes)) or "off",
        "+".join(quorum) or "off",
    )


def _tag_logs(myid: int | None) -> None:
    old = logging.getLogRecordFactory()

    def factory(*a: object, **kw: object) -> logging.LogRecord:
        rec = old(*a, **kw)
        rec.myid = myid if myid is not None else 0
        return rec

    logging.setLogRecordFactory(factory)


def status(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="pyzk status",
        description="Print the Mode line of a running server (as zkServer.sh status); "
        "exit status 1 when it cannot be reached.",
    )
    p.add_argument("--config", type=Path, help="take the client port and address from zoo.cfg")
    p.add_argument("--host", help="default: clientPortAddress, else 127.0.0.1")
    p.add_argument("--port", type=int, help="default: clientPort, else 2181")
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args(argv)
    host, port = args.host or "127.0.0.1", args.port or 2181
    if args.config is not None:
        try:  # only the client port and address: no myid or ensemble checks for a probe
            props = dict(read_properties(args.config.read_text()))
            cfg_port = int(props.get("clientPort", "2181"))
        except (ConfigError, OSError, ValueError) as e:
            print(f"pyzk status: cannot read {args.config}: {e}", file=sys.stderr)
            return EXIT_CONFIG
        address = props.get("clientPortAddress", "").strip()
        if args.host is None and address not in ("0.0.0.0", "::", ""):
            host = address
        port = args.port or cfg_port
    try:
        with socket.create_connection((host, port), timeout=args.timeout) as s:
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
