"""One validated configuration: zoo.cfg keys, JVM-style -D flags, the CLI and myid.

Precedence, lowest first: built-in defaults, ``-D`` settings found in ``SERVER_JVMFLAGS``
/ ``JVMFLAGS``, the zoo.cfg file, command-line flags. ``myid`` comes from ``--myid``,
else the ``MYID`` environment variable, else ``dataDir/myid``.

zoo.cfg is a Java properties file: ``key=value`` (spaces around ``=`` allowed), ``#``
and ``!`` comments. Every invalid value raises :class:`ConfigError` naming the key;
keys we do not implement are collected in ``Config.ignored`` to be logged once.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyzk.security import settings as security


class ConfigError(Exception):
    """A configuration that cannot start a server; the message names the key."""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One ``server.N`` line: a member of the ensemble."""

    sid: int
    host: str
    quorum_port: int
    election_port: int
    role: str = "participant"  # or "observer"
    client_port: int | None = None
    client_address: str | None = None


@dataclass(slots=True)
class Config:
    tick_time: int = 2000
    init_limit: int = 10
    sync_limit: int = 5
    data_dir: Path = Path("data")
    data_log_dir: Path | None = None  # None: the transaction log lives in data_dir
    client_port: int = 2181
    client_port_address: str = "0.0.0.0"
    secure_client_port: int = 0  # secureClientPort: TLS clients (0: none)
    max_client_cnxns: int = 60
    min_session_timeout: int = -1  # -1: 2 x tickTime
    max_session_timeout: int = -1  # -1: 20 x tickTime
    snap_count: int = 100000
    prealloc_size_kb: int = 65536
    autopurge_snap_retain_count: int = 3
    autopurge_purge_interval: int = 0  # hours; 0 disables
    fourlw_whitelist: frozenset[str] = frozenset({"srvr"})
    quorum_listen_on_all_ips: bool = False
    standalone_enabled: bool = True
    jute_maxbuffer: int = 0xFFFFF
    extended_types_enabled: bool = False
    skip_acl: bool = False  # skipACL=yes (only "yes" counts, as in ZooKeeper)
    enforce_quota: bool = False  # enforceQuota: hard quota limits fail writes
    # The container and TTL reaper (ContainerManager): how often it runs, how many
    # deletions a minute at most, and when never-used containers go (0: never).
    container_check_interval_ms: int = 60000
    container_max_per_minute: int = 10000
    container_max_never_used_ms: int = 0
    super_digest: str | None = None
    readonly_mode: bool = False
    fsync_warning_threshold_ms: int = 1000
    force_sync: bool = True
    admin_enable: bool = True
    admin_server_address: str = "0.0.0.0"
    admin_server_port: int = 8080
    admin_command_url: str = "/commands"
    metrics_provider: str | None = None
    metrics_port: int = 7000
    metrics_host: str = "0.0.0.0"
    servers: dict[int, ServerSpec] = field(default_factory=dict)
    myid: int | None = None
    ignored: list[str] = field(default_factory=list)
    # -D settings read from JVMFLAGS/SERVER_JVMFLAGS (zookeeper. prefix removed), and the
    # flags among them that pyzk has no use for (heap sizes, log4j, unknown -D keys).
    jvm_settings: dict[str, str] = field(default_factory=dict)
    jvm_ignored: list[str] = field(default_factory=list)
    source_text: str = ""  # the config file as read, for initial_configuration
    # TLS, SASL and auth keys (zookeeper. prefix removed), -D first, then the file; and
    # what pyzk.security.settings made of them once all were read.
    security_props: dict[str, str] = field(default_factory=dict, repr=False)
    security: security.SecuritySettings = field(default_factory=security.SecuritySettings)

    @property
    def log_dir(self) -> Path:
        return self.data_log_dir or self.data_dir

    @property
    def min_timeout_ms(self) -> int:
        return self.min_session_timeout if self.min_session_timeout > 0 else 2 * self.tick_time

    @property
    def max_timeout_ms(self) -> int:
        return self.max_session_timeout if self.max_session_timeout > 0 else 20 * self.tick_time

    @property
    def standalone(self) -> bool:
        """No ensemble: no server lines, or one alone with standaloneEnabled."""
        voters = [s for s in self.servers.values() if s.role == "participant"]
        return not self.servers or (
            len(voters) == 1 and self.standalone_enabled and len(self.servers) == 1
        )


# --- value parsers ----------------------------------------------------------------------


def _int(lo: int | None = None) -> Callable[[str, str], int]:
    def parse(key: str, v: str) -> int:
        try:
            n = int(v.strip())
        except ValueError:
            raise ConfigError(f"{key}: {v!r} is not a number") from None
        if lo is not None and n < lo:
            raise ConfigError(f"{key}: {n} is below the minimum {lo}")
        return n

    return parse


def _port(key: str, v: str) -> int:
    n = _int(0)(key, v)
    if n > 65535:
        raise ConfigError(f"{key}: {n} is not a TCP port")
    return n


def _bool(key: str, v: str) -> bool:
    s = v.strip().lower()
    if s in ("true", "yes"):
        return True
    if s in ("false", "no"):
        return False
    raise ConfigError(f"{key}: {v!r} is not true or false")


def _yes(key: str, v: str) -> bool:
    """ZooKeeper's ``"yes".equals(value)`` switches (skipACL): anything else is off."""
    return v.strip() == "yes"


def _str(key: str, v: str) -> str:
    return v.strip()


def _path(key: str, v: str) -> Path:
    if not v.strip():
        raise ConfigError(f"{key}: empty path")
    return Path(v.strip())


def _words(key: str, v: str) -> frozenset[str]:
    words = {w.strip() for w in v.split(",") if w.strip()}
    return frozenset(words | {"srvr"})  # ZooKeeper always allows srvr


PROMETHEUS_PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
# ZooKeeper's default: metrics only through mntr and the AdminServer.
DEFAULT_PROVIDER = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider"


def _metrics_provider(key: str, v: str) -> str | None:
    name = v.strip()
    if name == PROMETHEUS_PROVIDER:
        return name
    if name in (DEFAULT_PROVIDER, ""):
        return None
    raise ConfigError(f"{key}: {name!r} is not a provider pyzk has (use {PROMETHEUS_PROVIDER})")


# zoo.cfg key -> (Config attribute, parser)
_KEYS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "tickTime": ("tick_time", _int(1)),
    "initLimit": ("init_limit", _int(1)),
    "syncLimit": ("sync_limit", _int(1)),
    "dataDir": ("data_dir", _path),
    "dataLogDir": ("data_log_dir", _path),
    "clientPort": ("client_port", _port),
    "clientPortAddress": ("client_port_address", _str),
    "secureClientPort": ("secure_client_port", _port),
    "maxClientCnxns": ("max_client_cnxns", _int(0)),
    "minSessionTimeout": ("min_session_timeout", _int(-1)),
    "maxSessionTimeout": ("max_session_timeout", _int(-1)),
    "snapCount": ("snap_count", _int(2)),
    "preAllocSize": ("prealloc_size_kb", _int(1)),
    "autopurge.snapRetainCount": ("autopurge_snap_retain_count", _int(3)),
    "autopurge.purgeInterval": ("autopurge_purge_interval", _int(0)),
    "4lw.commands.whitelist": ("fourlw_whitelist", _words),
    "quorumListenOnAllIPs": ("quorum_listen_on_all_ips", _bool),
    "standaloneEnabled": ("standalone_enabled", _bool),
    "jute.maxbuffer": ("jute_maxbuffer", _int(1)),
    "extendedTypesEnabled": ("extended_types_enabled", _bool),
    "skipACL": ("skip_acl", _yes),
    "enforceQuota": ("enforce_quota", _bool),
    "znode.container.checkIntervalMs": ("container_check_interval_ms", _int(1)),
    "znode.container.maxPerMinute": ("container_max_per_minute", _int(1)),
    "znode.container.maxNeverUsedIntervalMs": ("container_max_never_used_ms", _int(0)),
    "DigestAuthenticationProvider.superDigest": ("super_digest", _str),
    "readonlymode.enabled": ("readonly_mode", _bool),
    "fsync.warningthresholdms": ("fsync_warning_threshold_ms", _int(0)),
    "forceSync": ("force_sync", _bool),
    "admin.enableServer": ("admin_enable", _bool),
    "admin.serverAddress": ("admin_server_address", _str),
    "admin.serverPort": ("admin_server_port", _port),
    "admin.commandURL": ("admin_command_url", _str),
    "metricsProvider.className": ("metrics_provider", _metrics_provider),
    "metricsProvider.httpPort": ("metrics_port", _port),
    "metricsProvider.httpHost": ("metrics_host", _str),
}

_SERVER_LINE = re.compile(
    r"^(?P<host>\[[^\]]+\]|[^:;\s]+):(?P<qp>\d+):(?P<ep>\d+)"
    r"(?::(?P<role>participant|observer))?"
    r"(?:;(?:(?P<caddr>[^:;\s]+):)?(?P<cport>\d+))?$"
)


def parse_server(key: str, value: str) -> ServerSpec:
    try:
        sid = int(key.split(".", 1)[1])
    except ValueError:
        raise ConfigError(f"{key}: the server id must be a number") from None
    m = _SERVER_LINE.match(value.strip())
    if not m:
        raise ConfigError(
            f"{key}: {value.strip()!r} is not host:quorumPort:electionPort"
            "[:participant|observer][;[clientAddress:]clientPort]"
        )
    ports = [int(m["qp"]), int(m["ep"])] + ([int(m["cport"])] if m["cport"] else [])
    if any(not 0 < p < 65536 for p in ports):
        raise ConfigError(f"{key}: port out of range in {value.strip()!r}")
    return ServerSpec(
        sid,
        m["host"].strip("[]"),
        ports[0],
        ports[1],
        m["role"] or "participant",
        int(m["cport"]) if m["cport"] else None,
        m["caddr"],
    )


def read_properties(text: str) -> list[tuple[str, str]]:
    """key/value pairs of a Java properties file, in order (``=`` or ``:`` separated)."""
    pairs: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        m = re.match(r"^([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if not m:
            raise ConfigError(f"cannot parse config line {line!r}")
        pairs.append((m[1], m[2]))
    return pairs


def jvm_settings(env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """``-Dkey=value`` settings from SERVER_JVMFLAGS and JVMFLAGS, and the other flags."""
    settings: dict[str, str] = {}
    others: list[str] = []
    for var in ("JVMFLAGS", "SERVER_JVMFLAGS"):  # later wins, as zkServer.sh orders them
        try:
            tokens = shlex.split(env.get(var, ""))
        except ValueError as e:
            raise ConfigError(f"{var}: {e}") from None
        for tok in tokens:
            if tok.startswith("-D") and "=" in tok:
                k, v = tok[2:].split("=", 1)
                settings[k.removeprefix("zookeeper.")] = v
            else:
                others.append(tok)
    return settings, others


# Keys ZooKeeper reads only from zoo.cfg, never from -D system properties.
_FILE_ONLY = frozenset(
    {"dataDir", "dataLogDir", "clientPort", "clientPortAddress", "secureClientPort"}
)


def apply_setting(cfg: Config, key: str, value: str) -> None:
    if key.startswith("server."):
        spec = parse_server(key, value)
        cfg.servers[spec.sid] = spec
        return
    entry = _KEYS.get(key)
    if entry is None:
        if key.startswith("group.") or key.startswith("weight."):
            raise ConfigError(f"{key}: hierarchical quorums are not supported")
        if security.is_security_key(key):
            cfg.security_props[key] = value
            return
        cfg.ignored.append(key)
        return
    attr, parse = entry
    setattr(cfg, attr, parse(key, value))


def load(
    path: Path | None = None,
    overrides: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    myid: int | None = None,
) -> Config:
    """Build and validate the Config; see the module docstring for precedence."""
    env = os.environ if env is None else env
    cfg = Config()
    jvm, others = jvm_settings(env)
    cfg.jvm_settings = jvm
    cfg.jvm_ignored = others
    for key, value in jvm.items():
        if key in _KEYS and key not in _FILE_ONLY:
            apply_setting(cfg, key, value)
        elif security.is_security_key(key):
            cfg.security_props[key] = value
        else:
            cfg.jvm_ignored.append(f"-D{key}")
    set_keys: set[str] = set()
    if path is not None:
        try:
            cfg.source_text = path.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
        for key, value in read_properties(cfg.source_text):
            apply_setting(cfg, key, value)
            set_keys.add(key)
    for key, value in (overrides or {}).items():
        apply_setting(cfg, key, value)
        set_keys.add(key)
    if path is not None and "dataDir" not in set_keys:
        raise ConfigError(f"dataDir is not set in {path}")
    cfg.myid = _resolve_myid(cfg, myid, env)
    me = cfg.servers.get(cfg.myid) if cfg.myid is not None else None
    if me is not None and me.client_port is not None:  # server.N=...;[address:]clientPort
        cfg.client_port = me.client_port
        if me.client_address:
            cfg.client_port_address = me.client_address
    _validate(cfg)
    try:
        cfg.security = security.parse(
            cfg.security_props,
            secure_port=cfg.secure_client_port > 0,
            warn=lambda msg: cfg.ignored.append(msg.split(":", 1)[0]),
        )
    except security.SecurityConfigError as e:
        raise ConfigError(str(e)) from None
    return cfg


def _resolve_myid(cfg: Config, myid: int | None, env: Mapping[str, str]) -> int | None:
    if myid is not None:
        return myid
    if env.get("MYID", "").strip():
        try:
            return int(env["MYID"])
        except ValueError:
            raise ConfigError(f"MYID: {env['MYID']!r} is not a number") from None
    f = cfg.data_dir / "myid"
    if f.exists():
        text = f.read_text().strip()
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"myid: {f} holds {text!r}, not a number") from None
    return None


def _validate(cfg: Config) -> None:
    if cfg.min_timeout_ms > cfg.max_timeout_ms:
        raise ConfigError(
            f"minSessionTimeout: {cfg.min_timeout_ms} must not be above "
            f"maxSessionTimeout {cfg.max_timeout_ms}"
        )
    if cfg.standalone:
        return
    if cfg.myid is None:
        raise ConfigError("myid: an ensemble member needs an id: --myid, MYID or dataDir/myid")
    if cfg.myid not in cfg.servers:
        raise ConfigError(f"myid: {cfg.myid} has no server.{cfg.myid} line in the config")
