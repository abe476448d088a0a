"""Counters the server keeps for srvr/stat/mntr (ZooKeeper's ServerStats)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ServerStats:
    packets_received: int = 0
    packets_sent: int = 0
    latency_min_ms: int = 0
    latency_max_ms: int = 0
    latency_total_ms: int = 0
    latency_count: int = 0

    def record_latency(self, ms: int) -> None:
        if self.latency_count == 0 or ms < self.latency_min_ms:
            self.latency_min_ms = ms
        if ms > self.latency_max_ms:
            self.latency_max_ms = ms
        self.latency_total_ms += ms
        self.latency_count += 1

    @property
    def latency_avg_ms(self) -> float:
        if not self.latency_count:
            return 0.0
        return round(self.latency_total_ms / self.latency_count, 4)

    def reset(self) -> None:
        self.packets_received = self.packets_sent = 0
        self.latency_min_ms = self.latency_max_ms = 0
        self.latency_total_ms = self.latency_count = 0
