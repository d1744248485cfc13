"""Prometheus metrics of one node, in a registry of its own (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Every metric a node exports. Pass one instance to the components that update it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.height = Gauge("credledger_height", "Height of the last committed block", registry=r)
        self.round = Gauge("credledger_round", "Consensus round at the current height", registry=r)
        self.log_size = Gauge("credledger_log_size", "Number of events in the log", registry=r)
        self.events_committed = Counter("credledger_events_committed", "Events committed", registry=r)
        self.blocks_committed = Counter("credledger_blocks_committed", "Blocks committed", registry=r)
        self.mempool_events = Gauge("credledger_mempool_events", "Events waiting in the mempool", registry=r)
        self.mempool_bytes = Gauge("credledger_mempool_bytes", "Bytes of events waiting in the mempool", registry=r)
        self.peers = Gauge("credledger_peers", "Connected, authenticated peers", registry=r)
        self.sync_failing = Gauge(
            "credledger_sync_failing", "1 while catching up fails and this node stays behind its peers", registry=r
        )
        self.events_rejected = Counter(
            "credledger_events_rejected", "Events refused at admission, by rule", ["rule"], registry=r
        )
        self.peer_errors = Counter(
            "credledger_peer_errors", "Messages from peers refused, by reason", ["reason"], registry=r
        )
        self.request_latency = Histogram(
            "credledger_request_seconds",
            "HTTP request latency by route and status",
            ["route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.commit_latency = Histogram(
            "credledger_commit_seconds",
            "Time from admission to commit of an event",
            buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30),
            registry=r,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
