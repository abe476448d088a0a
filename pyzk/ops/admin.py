"""The AdminServer's commands (ZooKeeper's ``server/admin/Commands.java``), as JSON dicts.

Each command has a primary name and aliases (``stats``/``stat``, ``monitor``/``mntr``
...), runs against a :class:`~pyzk.ops.view.ServerView` and returns a dict that always
carries ``command`` (the primary name) and ``error`` (None, or why it failed), exactly
as ZooKeeper's CommandResponse. ``pyzk.server.admin_listener`` serves them over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyzk.ops import ZK_VERSION, fourletter, metrics
from pyzk.ops.view import ConnInfo, ServerView

Json = dict[str, Any]
Kwargs = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Command:
    names: tuple[str, ...]  # primary name first
    run: Callable[[ServerView, Kwargs], Json]
    needs_server: bool = True


def run(view: ServerView, name: str, kwargs: Kwargs | None = None) -> Json:
    """Commands.runCommand: unknown names and a server not serving are errors, not raises."""
    cmd = _BY_NAME.get(name)
    if cmd is None:
        return {"command": name, "error": f"Unknown command: {name}"}
    primary = cmd.names[0]
    if cmd.needs_server and not view.serving:
        return {"command": primary, "error": fourletter.NOT_SERVING.strip()}
    body = cmd.run(view, kwargs or {})
    return {**body, "command": primary, "error": body.pop("error", None)}


def primary_names() -> list[str]:
    return sorted(c.names[0] for c in COMMANDS)


# --- the commands -------------------------------------------------------------------


def connection_info(c: ConnInfo, brief: bool) -> Json:
    """ServerCnxn.getConnectionInfo."""
    s = c.stats
    info: Json = {
        "remote_socket_address": c.peer,
        "interest_ops": c.interest_ops,
        "outstanding_requests": s.outstanding,
        "packets_received": s.packets_received,
        "packets_sent": s.packets_sent,
    }
    if not brief:
        info |= {
            "session_id": c.session_id,
            "last_operation": s.last_op,
            "established": s.established_ms,
            "session_timeout": c.timeout_ms,
            "last_cxid": s.last_cxid,
            "last_zxid": s.last_zxid,
            "last_response_time": s.last_response_ms,
            "last_latency": s.last_latency,
            "min_latency": s.min_latency_ms,
            "avg_latency": s.avg_latency_ms,
            "max_latency": s.max_latency,
        }
    return info


def _connections(view: ServerView, brief: bool) -> Json:
    conns = [connection_info(c, brief) for c in view.connections()]
    return {"connections": conns, "secure_connections": []}


def _response_sizes(view: ServerView) -> Json:
    s = view.stats
    return {
        "last_buffer_size": s.last_response_size,
        "min_buffer_size": s.min_response_size,
        "max_buffer_size": s.max_response_size,
    }


def _server_stats(view: ServerView, kwargs: Kwargs) -> Json:
    s = view.stats
    data_size, log_size = view.dir_sizes()
    stats = {
        "packets_sent": s.packets_sent,
        "packets_received": s.packets_received,
        "fsync_threshold_exceed_count": s.fsync_threshold_exceed_count,
        "client_response_stats": _response_sizes(view),
        "data_dir_size": data_size,
        "log_dir_size": log_size,
        "provider_null": False,
        "server_state": view.mode,
        "last_processed_zxid": view.tree.last_zxid,
        "outstanding_requests": view.outstanding(),
        "avg_latency": s.latency_avg_ms,
        "max_latency": s.latency_max_ms,
        "min_latency": s.latency_min_ms,
        "num_alive_client_connections": len(view.connections()),
        "uptime": view.uptime_ms(),
        "auth_failed_count": s.auth_failed_count,
        "non_mtlsremote_conn_count": 0,
        "non_mtlslocal_conn_count": 0,
    }
    return {
        "version": ZK_VERSION,
        "read_only": view.mode == "read-only",
        "server_stats": stats,
        "client_response": _response_sizes(view),
        "node_count": metrics.znode_count(view),
    }


def _stats(view: ServerView, kwargs: Kwargs) -> Json:
    return _server_stats(view, kwargs) | _connections(view, brief=True)


def _configuration(view: ServerView, kwargs: Kwargs) -> Json:
    """ZooKeeperServerConf.toMap."""
    conf = dict(fourletter.conf_items(view))
    return {
        "client_port": conf["clientPort"],
        "data_dir": conf["dataDir"],
        "data_log_dir": conf["dataLogDir"],
        "tick_time": conf["tickTime"],
        "max_client_cnxns": conf["maxClientCnxns"],
        "min_session_timeout": conf["minSessionTimeout"],
        "max_session_timeout": conf["maxSessionTimeout"],
        "server_id": conf["serverId"],
        "client_port_listen_backlog": conf["clientPortListenBacklog"],
    }


def _crst(view: ServerView, kwargs: Kwargs) -> Json:
    for c in view.connections():
        c.stats.reset()
    return {}


def _srst(view: ServerView, kwargs: Kwargs) -> Json:
    view.stats.reset()
    view.metrics.reset()
    return {}


def _dirs(view: ServerView, kwargs: Kwargs) -> Json:
    data_size, log_size = view.dir_sizes()
    return {"datadir_size": data_size, "logdir_size": log_size}


def _dump(view: ServerView, kwargs: Kwargs) -> Json:
    return {
        "expiry_time_to_session_ids": {str(t): sids for t, sids in view.session_buckets() if sids},
        "session_id_to_ephemeral_paths": {
            str(sid): list(paths) for sid, paths in view.tree.ephemerals.items()
        },
    }


def _leader(view: ServerView, kwargs: Kwargs) -> Json:
    if view.mode in ("standalone", "read-only"):
        return {"error": "server is not initialized"}
    return view.leader_info()


def _last_snapshot(view: ServerView, kwargs: Kwargs) -> Json:
    snap = view.last_snapshot()
    zxid, ts = snap if snap is not None else (-1, -1)
    return {"zxid": f"{zxid & 0xFFFFFFFFFFFFFFFF:x}", "timestamp": ts}


def _set_trace_mask(view: ServerView, kwargs: Kwargs) -> Json:
    if "traceMask" not in kwargs:
        return {"error": "setTraceMask requires long traceMask argument"}
    try:
        view.trace_mask = int(kwargs["traceMask"])
    except ValueError:
        got = kwargs["traceMask"]
        return {"error": f"setTraceMask requires long traceMask argument, got {got}"}
    return {"tracemask": view.trace_mask}


def _zabstate(view: ServerView, kwargs: Kwargs) -> Json:
    if view.mode in ("standalone", "read-only"):
        return {"voting": False, "zabstate": ""}
    return view.zab_state()


def _const(**fields: Any) -> Callable[[ServerView, Kwargs], Json]:
    return lambda view, kwargs: dict(fields)


def _by(fn: Callable[[ServerView], Json]) -> Callable[[ServerView, Kwargs], Json]:
    return lambda view, kwargs: fn(view)


def _watch_summary(view: ServerView) -> Json:
    n_conns, n_paths, total = fourletter.watch_summary(view)
    return {"num_connections": n_conns, "num_paths": n_paths, "num_total_watches": total}


def _watches(view: ServerView) -> Json:
    by_session = fourletter.watches_by_session(view)
    return {"session_id_to_watched_paths": {str(sid): ps for sid, ps in by_session.items()}}


def _initial_configuration(view: ServerView) -> Json:
    return {"initial_configuration": view.initial_config()}


COMMANDS: tuple[Command, ...] = (
    Command(("connection_stat_reset", "crst"), _crst),
    Command(("configuration", "conf", "config"), _configuration),
    Command(("connections", "cons"), _by(lambda v: _connections(v, brief=False))),
    Command(("hash",), _const(digests=[])),
    Command(("dirs",), _dirs),
    Command(("dump",), _dump),
    Command(("environment", "env", "envi"), _by(lambda v: dict(v.environment())), False),
    Command(("get_trace_mask", "gtmk"), _by(lambda v: {"tracemask": v.trace_mask}), False),
    Command(("initial_configuration", "icfg"), _by(_initial_configuration)),
    Command(("is_read_only", "isro"), _by(lambda v: {"read_only": v.mode == "read-only"})),
    Command(("last_snapshot", "lsnp"), _last_snapshot),
    Command(("leader", "lead"), _leader),
    Command(("monitor", "mntr"), _by(lambda v: dict(metrics.monitor(v))), False),
    Command(("observer_connection_stat_reset", "orst"), _const()),
    Command(("ruok",), _const()),
    Command(("set_trace_mask", "stmk"), _set_trace_mask, False),
    Command(("server_stats", "srvr"), _server_stats),
    Command(("stats", "stat"), _stats),
    Command(("stat_reset", "srst"), _srst),
    Command(("observers", "obsr"), _const(synced_observers=0, observers=[])),
    Command(("system_properties", "sysp"), _by(lambda v: v.system_properties()), False),
    Command(("voting_view",), _by(lambda v: {"current_config": v.voting_view()})),
    Command(("watches", "wchc"), _by(_watches)),
    Command(
        ("watches_by_path", "wchp"),
        _by(lambda v: {"path_to_session_ids": fourletter.watches_by_path(v)}),
    ),
    Command(("watch_summary", "wchs"), _by(_watch_summary)),
    Command(("zabstate",), _zabstate, False),
)

_BY_NAME: dict[str, Command] = {name: cmd for cmd in COMMANDS for name in cmd.names}
