"""Four-letter words on the client port, in ZooKeeper 3.8's exact text formats.

Scripts parse these outputs (``Mode: leader``, ``Zxid: 0x...``, ``zk_znode_count``), so
each word keeps the layout of its ZooKeeper command class (``server/command/*.java``):
``\\n`` line ends, no length prefix, the connection closed after the answer. A word
outside ``4lw.commands.whitelist`` gets ZooKeeper's refusal line. Every function here
reads a :class:`~pyzk.ops.view.ServerView` and returns the text; nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from pyzk.ops import ZK_VERSION, metrics
from pyzk.ops.stats import java_double
from pyzk.ops.view import ConnInfo, ServerView

VERSION_LINE = f"Zookeeper version: {ZK_VERSION}"
NOT_SERVING = "This ZooKeeper instance is not currently serving requests\n"
# ZooTrace's default mask, which `gtmk` prints (pyzk keeps no trace log).
DEFAULT_TRACE_MASK = 306
# ZooKeeper's sessionlessCnxnTimeout: how long a connection without a session may idle.
SESSIONLESS_TIMEOUT_MS = 10000


def enabled(view: ServerView, word: str) -> bool:
    """FourLetterCommands.isEnabled: the whitelist, plus srvr always and isro in RO mode."""
    wl = view.config.fourlw_whitelist
    if word == "srvr" or "*" in wl or word in wl:
        return True
    return word == "isro" and view.config.readonly_mode


def answer(view: ServerView, word: str) -> str:
    if not enabled(view, word):
        return f"{word} is not executed because it is not in the whitelist.\n"
    handler = _WORDS.get(word)
    if handler is None:
        return ""
    needs_server, run = handler
    if needs_server and not view.serving:
        return NOT_SERVING
    return run(view)


# --- the words ----------------------------------------------------------------------


def _ruok(view: ServerView) -> str:
    return "imok"


def _isro(view: ServerView) -> str:
    if not view.serving:
        return "null"
    return "ro" if view.mode == "read-only" else "rw"


def _gtmk(view: ServerView) -> str:
    return str(view.trace_mask)


def _summary(view: ServerView) -> list[str]:
    s = view.stats
    lat = f"{s.latency_min_ms}/{java_double(s.latency_avg_ms)}/{s.latency_max_ms}"
    return [
        f"Latency min/avg/max: {lat}",
        f"Received: {s.packets_received}",
        f"Sent: {s.packets_sent}",
        f"Connections: {len(view.connections())}",
        f"Outstanding: {view.outstanding()}",
        f"Zxid: 0x{view.tree.last_zxid:x}",
        f"Mode: {view.mode}",
        f"Node count: {metrics.znode_count(view)}",
    ]


def _head(view: ServerView) -> list[str]:
    lines = [VERSION_LINE]
    if view.mode == "read-only":
        lines.append("READ-ONLY mode; serving only read-only clients")
    return lines


def _srvr(view: ServerView) -> str:
    return _lines([*_head(view), *_summary(view)])


def _stat(view: ServerView) -> str:
    clients = [connection_line(c, brief=True) for c in view.connections()]
    return _lines([*_head(view), "Clients:", *clients, "", *_summary(view)])


def connection_line(c: ConnInfo, brief: bool) -> str:
    """ServerCnxn.dumpConnectionInfo: `` /ip:port[ops](queued=..,recved=..,sent=..)``."""
    s = c.stats
    ops = "0" if c.interest_ops == 0 else f"{c.interest_ops:x}"
    out = f" /{c.peer}[{ops}](queued={s.outstanding},recved={s.packets_received}"
    out += f",sent={s.packets_sent}"
    if not brief and c.session_id != 0:
        out += f",sid=0x{c.session_id:x},lop={s.last_op},est={s.established_ms}"
        out += f",to={c.timeout_ms}"
        if s.last_cxid >= 0:
            out += f",lcxid=0x{s.last_cxid:x}"
        out += f",lzxid=0x{s.last_zxid & 0xFFFFFFFFFFFFFFFF:x},lresp={s.last_response_ms}"
        out += f",llat={s.last_latency},minlat={s.min_latency_ms}"
        out += f",avglat={s.avg_latency_ms},maxlat={s.max_latency}"
    return out + ")"


def _cons(view: ServerView) -> str:
    return _lines([connection_line(c, brief=False) for c in view.connections()] + [""])


def _crst(view: ServerView) -> str:
    for c in view.connections():
        c.stats.reset()
    return "Connection stats reset.\n"


def _srst(view: ServerView) -> str:
    view.stats.reset()
    view.metrics.reset()
    return "Server stats reset.\n"


def _conf(view: ServerView) -> str:
    return _lines(f"{k}={v}" for k, v in conf_items(view))


def conf_items(view: ServerView) -> list[tuple[str, object]]:
    """ZooKeeperServer.dumpConf, in its order."""
    cfg = view.config
    data_dir, log_dir = view.data_dirs()
    data_size, log_size = view.dir_sizes()
    return [
        ("clientPort", cfg.client_port),
        ("secureClientPort", cfg.secure_client_port or -1),
        ("dataDir", data_dir),
        ("dataDirSize", data_size),
        ("dataLogDir", log_dir),
        ("dataLogSize", log_size),
        ("tickTime", cfg.tick_time),
        ("maxClientCnxns", cfg.max_client_cnxns),
        ("minSessionTimeout", cfg.min_timeout_ms),
        ("maxSessionTimeout", cfg.max_timeout_ms),
        ("clientPortListenBacklog", -1),
        ("serverId", server_id(view)),
    ]


def server_id(view: ServerView) -> int:
    """A standalone server reports id 0, a quorum member its myid."""
    return 0 if view.mode == "standalone" else view.config.myid or 0


def _envi(view: ServerView) -> str:
    return _lines(["Environment:", *(f"{k}={v}" for k, v in view.environment())])


def _dirs(view: ServerView) -> str:
    data_size, log_size = view.dir_sizes()
    return f"datadir_size: {data_size}\nlogdir_size: {log_size}\n"


def _mntr(view: ServerView) -> str:
    return "".join(f"zk_{k}\t{_mntr_value(v)}\n" for k, v in metrics.monitor(view))


def _mntr_value(value: object) -> str:
    if isinstance(value, float):
        return java_double(value)
    return str(value)


# --- watches ------------------------------------------------------------------------
# wchs/wchc/wchp show the data watches (getData, exists) only, as ZooKeeper's do.


def watches_by_session(view: ServerView) -> dict[int, list[str]]:
    sid_of = {c.watcher: c.session_id for c in view.connections()}
    out: dict[int, list[str]] = {}
    for watcher, paths in view.tree.watches.data.by_watcher.items():
        out.setdefault(sid_of.get(watcher, 0), []).extend(paths)
    return out


def watches_by_path(view: ServerView) -> dict[str, list[int]]:
    sid_of = {c.watcher: c.session_id for c in view.connections()}
    return {
        path: [sid_of.get(w, 0) for w in watchers]
        for path, watchers in view.tree.watches.data.by_path.items()
    }


def watch_summary(view: ServerView) -> tuple[int, int, int]:
    """(connections watching, paths watched, watches) of the data watches."""
    table = view.tree.watches.data
    return len(table.by_watcher), len(table.by_path), table.count()


def _wchs(view: ServerView) -> str:
    n_conns, n_paths, total = watch_summary(view)
    return f"{n_conns} connections watching {n_paths} paths\nTotal watches:{total}\n"


def _wchc(view: ServerView) -> str:
    lines: list[str] = []
    for sid, paths in watches_by_session(view).items():
        lines += [f"0x{sid:x}", *(f"\t{p}" for p in paths)]
    return _lines([*lines, ""])


def _wchp(view: ServerView) -> str:
    lines: list[str] = []
    for path, sids in watches_by_path(view).items():
        lines += [path, *(f"\t0x{sid:x}" for sid in sids)]
    return _lines([*lines, ""])


# --- dump ---------------------------------------------------------------------------


def java_date(wall_ms: int) -> str:
    """java.util.Date.toString in the local zone: ``Wed Nov 25 15:34:55 UTC 2026``."""
    return time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(wall_ms / 1000))


def _expiry_sets(title: str, buckets: list[tuple[int, list[str]]]) -> list[str]:
    """ExpiryQueue.dump."""
    n = sum(len(items) for _, items in buckets)
    lines = [f"{title} Sets ({len(buckets)})/({n}):"]
    for wall_ms, items in buckets:
        lines.append(f"{len(items)} expire at {java_date(wall_ms)}:")
        lines += [f"\t{item}" for item in items]
    return lines


def connection_buckets(view: ServerView) -> list[tuple[int, list[str]]]:
    by_time: dict[int, list[str]] = {}
    for c in view.connections():
        item = f"ip: /{c.peer} sessionId: 0x{c.session_id:x}"
        by_time.setdefault(c.expiry_wall_ms, []).append(item)
    return sorted(by_time.items())


def _dump(view: ServerView) -> str:
    sessions = [(t, [f"0x{sid:x}" for sid in sids]) for t, sids in view.session_buckets()]
    lines = ["SessionTracker dump:", *_expiry_sets("Session", sessions)]
    ephemerals = view.tree.ephemerals
    lines += ["ephemeral nodes dump:", f"Sessions with Ephemerals ({len(ephemerals)}):"]
    for sid, paths in ephemerals.items():
        lines += [f"0x{sid:x}:", *(f"\t{p}" for p in paths)]
    lines += ["Connections dump:", *_expiry_sets("Connections", connection_buckets(view))]
    return _lines(lines)


def _lines(lines: Iterable[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


# word -> (needs a serving server, handler). `stmk` and `hash` answer nothing here.
_WORDS: dict[str, tuple[bool, Callable[[ServerView], str]]] = {
    "ruok": (False, _ruok),
    "isro": (False, _isro),
    "gtmk": (False, _gtmk),
    "srvr": (True, _srvr),
    "stat": (True, _stat),
    "cons": (False, _cons),
    "crst": (False, _crst),
    "srst": (True, _srst),
    "conf": (True, _conf),
    "envi": (False, _envi),
    "dirs": (True, _dirs),
    "mntr": (True, _mntr),
    "wchs": (True, _wchs),
    "wchc": (True, _wchc),
    "wchp": (True, _wchp),
    "dump": (True, _dump),
}
