"""The operator counters without sockets: number formats, summaries, frame accounting."""

from __future__ import annotations

import struct

from pyzk.jute.codes import OpCode, Xid
from pyzk.ops import metric_names as names
from pyzk.ops.stats import (
    REOPEN_SESSION,
    ConnectionStats,
    ServerMetrics,
    ServerStats,
    Summary,
    account_frames,
    java_double,
    round_half_up,
)


def reply(xid: int, zxid: int, body: bytes = b"") -> bytes:
    return struct.pack(">iiqi", 16 + len(body), xid, zxid, 0) + body


def test_doubles_print_as_java_prints_them() -> None:
    assert [java_double(v) for v in (0.0, 2.5952, 13.0, 1e-4, 12345678.0)] == [
        "0.0",
        "2.5952",
        "13.0",
        "1.0E-4",
        "1.2345678E7",
    ]


def test_averages_round_half_up_to_four_places() -> None:
    assert round_half_up(2.59515) == 2.5952
    assert round_half_up(1 / 3) == 0.3333


def test_summary_min_avg_max_and_percentiles() -> None:
    s = Summary(percentiles=True)
    assert (s.min, s.avg, s.max, s.quantile(0.5)) == (0, 0.0, 0, 0.0)
    for v in range(1, 101):
        s.add(v)
    assert (s.min, s.max, s.count, s.total, s.avg) == (1, 100, 100, 5050, 50.5)
    assert (s.quantile(0.5), s.quantile(0.99)) == (50.0, 99.0)
    s.reset()
    assert (s.count, s.min, list(s.recent)) == (0, 0, [])


def test_a_reply_answers_its_request_and_a_notification_is_watch_bytes() -> None:
    conn, server, metrics = ConnectionStats(0), ServerStats(), ServerMetrics()
    conn.request_read(0, OpCode.createSession, 100)
    conn.request_read(7, OpCode.getData, 100)
    conn.request_read(Xid.PING, OpCode.ping, 101)
    connect_response = struct.pack(">i", 36) + b"\0" * 36
    frames = [connect_response, reply(7, 5, b"x" * 10), reply(-1, -1, b"e"), reply(-2, 5)]
    account_frames(frames, conn, server, metrics, now_ms=104, last_zxid=5)
    assert (conn.packets_sent, server.packets_sent, conn.outstanding) == (4, 4, 0)
    assert (conn.last_op, conn.last_cxid, conn.last_zxid, conn.last_latency) == ("PING", 7, 5, 3)
    assert (conn.min_latency_ms, conn.max_latency, conn.avg_latency_ms) == (3, 4, 3)
    assert server.latency.count == 3 and metrics.summaries["readlatency"].count == 2
    assert metrics.summaries["updatelatency"].count == 1  # the createSession
    assert metrics.counters["watch_bytes"] == len(frames[2])
    assert (server.min_response_size, server.max_response_size) == (16, 26)


def test_a_reopened_session_is_answered_but_not_timed() -> None:
    conn, server, metrics = ConnectionStats(0), ServerStats(), ServerMetrics()
    conn.request_read(0, REOPEN_SESSION, 0)
    account_frames([struct.pack(">i", 36) + b"\0" * 36], conn, server, metrics, 5, 9)
    assert (conn.outstanding, conn.packets_sent, server.latency.count) == (0, 1, 0)
    assert conn.last_op == "NA"


def test_requests_without_a_reply_are_skipped() -> None:
    conn, server, metrics = ConnectionStats(0), ServerStats(), ServerMetrics()
    for xid in (1, 2, 3):
        conn.request_read(xid, OpCode.exists, 0)
    account_frames([reply(3, 1)], conn, server, metrics, 2, 1)
    assert conn.outstanding == 0 and conn.last_cxid == 3


def test_a_four_letter_answer_counts_one_packet_per_2k_chunk() -> None:
    conn, server, metrics = ConnectionStats(0), ServerStats(), ServerMetrics()
    conn.four_letter = True
    account_frames([b"x" * 5000], conn, server, metrics, 0, 0)
    assert (conn.packets_sent, server.packets_sent, server.latency.count) == (3, 3, 0)


def test_metrics_start_at_zero_under_zookeepers_names() -> None:
    m = ServerMetrics()
    assert set(m.counters) == set(names.COUNTERS)
    assert set(m.summaries) == set(names.BASIC_SUMMARIES) | set(names.ADVANCED_SUMMARIES)
    m.inc("looking_count")
    m.observe("fsynctime", 3)
    m.reset()
    assert m.counters["looking_count"] == 0 and m.summaries["fsynctime"].count == 0
