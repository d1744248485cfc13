"""Node benchmark: a 4-validator devnet of real node processes on this machine, loaded from another process.

Phases, each against the same running network (every process shares the machine's cores):

1. throughput: pre-signed issue events are POSTed in msgpack batches (``POST /v1/events``), spread over the four
   nodes, for `--duration` seconds; the load process keeps at most `--window` events admitted but uncommitted,
   so the figure is the committed rate the network sustains, not how fast mempools fill. Reported: committed
   events/s over the whole phase and its slowest 10 s.
2. latency: at half the sustained rate, small batches each submitted with ``?wait=commit``; reported: the time
   from sending a request to its 200 answer, p50 and p99.
3. bundles: one node's ``GET /v1/credentials/{digest}`` served to a concurrent keep-alive HTTP/1.1 client (another
   process) for `--bundle-seconds`; reported: bundles/s, and bundles per CPU-second of the serving node.
4. one validator: a separate 1-validator network loaded with batches of 100 (`--solo-seconds`); reported: its
   committed events/s.
5. memory (`--soak EVENTS`): keep loading until the log holds EVENTS events, sampling one node's resident memory
   (VmRSS, and RssAnon without LMDB's file-backed pages) as it grows; it must stay flat.

The bound: each validator verifies each event's signature once, so with V validators sharing C cores no network
commits more than C x (Ed25519 verifications per core-second) / V events/s. The verification rate is measured in
the same run (median of 3, this process), and the throughput is reported as a ratio to that bound, and as events
committed per validator CPU-second (the validators' CPU time read from /proc) over verifications per
core-second, which holds whatever share of the cores the validators got. Also reported: the longest stretch of
the throughput phase without a block, read back afterwards from the blocks' header times (the proposers' clocks:
under load the next block is proposed as soon as the last commits, so the gaps are those between commits); and
the same figure as sampled during the phase by ``GET /v1/status`` every 0.25 s, which also counts the sampling
interval and how long a status request waited behind the node's work. `--burn N` starts N CPU-burning processes
beside the network for the whole run: the contended figures.

Targets: committed/bound >= 0.6, per CPU-second ratio >= 0.5, 1-validator >= 2,000 events/s, no window without a
commit >= 1 s, commit latency p50 <= 0.15 s and p99 <= 0.5 s, >= 5,000 bundles/s.

Run ``python -m bench node`` (about four minutes), ``python -m bench node --burn 1`` or
``python -m bench node --soak 1000000``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgpack

from bench.audit import _verify_many
from bench.nodeload import LoadResult, block_times, drain, log_size, run_load
from credledger.cli.devnet import ORIGIN, Member, create, members, start_node, stop_all, wait_ready
from credledger.ledger.events import Issue, UnsignedEvent, sign_event
from credledger.ledger.keys import SigningKey

#: Node settings for the load: room for the load's window in every mempool.
NODE_ENV = {"CREDLEDGER_MEMPOOL_MAX_EVENTS": "200000", "CREDLEDGER_LOG_LEVEL": "warning"}
SIGNING_CHUNK = 5_000


# --- events -------------------------------------------------------------------------------------------------------


def _sign_chunk(args: tuple[str, list[tuple[str, str]], int, int, int]) -> list[bytes]:
    """Issue events `start`..`start + count` (round-robin over the issuers), encoded; runs in a worker process."""
    origin, issuers, start, count, time_ms = args
    keys = [SigningKey.from_skey(skey) for _, skey in issuers]
    out = []
    for n in range(start, start + count):
        key = keys[n % len(keys)]
        credential = hashlib.sha256(f"bench/node/{time_ms}/{n}".encode()).digest()
        out.append(sign_event(UnsignedEvent(origin, time_ms, Issue(credential, key.name, None, ())), key).encode())
    return out


def presign(origin: str, network: list[Member], count: int) -> list[bytes]:
    """`count` issue events, signed now by the four institutions' issuer keys in turn, using every core."""
    return presign_with(origin, [(m.member_id, (m.directory / "issuer.key").read_text()) for m in network], count)


def presign_with(origin: str, issuers: list[tuple[str, str]], count: int) -> list[bytes]:
    """`count` issue events, signed now by `issuers` (member id, issuer key) in turn, using every core."""
    now = int(time.time() * 1000)
    chunks = [(origin, issuers, s, min(SIGNING_CHUNK, count - s), now) for s in range(0, count, SIGNING_CHUNK)]
    with ProcessPoolExecutor() as pool:
        return list(itertools.chain.from_iterable(pool.map(_sign_chunk, chunks)))


def digest_of(encoded: bytes) -> str:
    """The credential digest of an encoded issue event (field 3, the payload: [tag, digest, ...])."""
    digest: bytes = msgpack.unpackb(encoded)[2][1]
    return digest.hex()


# --- the network --------------------------------------------------------------------------------------------------


def free_base_port(count: int) -> int:
    """A port p such that p .. p + count - 1 are all free on 127.0.0.1."""
    for base in range(21_000, 60_000, 97):
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free range of ports")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def verifies_per_core_second() -> float:
    """Ed25519 verifications per CPU-second in this process, median of 3."""
    return statistics.median(_verify_many(20_000)[1] for _ in range(3))


def longest_gap(times_ms: list[int], started_ms: int, ended_ms: int) -> float:
    """The longest time (s) in [started_ms, ended_ms] with no block proposed: between two blocks' header times,
    or from an edge of the phase to the nearest block. Under load a proposer builds the next block as soon as the
    last one commits, so this is the longest time between two commits, as the nodes' own clocks saw it."""
    edges = [started_ms, *times_ms, ended_ms]
    return max(later - earlier for earlier, later in itertools.pairwise(edges)) / 1000


def longest_stall(samples: list[tuple[float, int]]) -> float:
    """The longest time between two samples that saw the log grow (the first sample counts as a commit)."""
    longest, last = 0.0, samples[0][0]
    previous = samples[0][1]
    for at, size in samples[1:]:
        if size > previous:
            longest = max(longest, at - last)
            last, previous = at, size
    return longest


def _burn() -> None:
    """A neighbour that wants a whole core."""
    while True:
        pass


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, RssAnon) of a process in MiB: all resident memory, and without file-backed (LMDB) pages."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["RssAnon"]


def rate_over(samples: list[tuple[float, int]], start: float, end: float) -> float:
    """Committed events/s between two sample times (nearest samples)."""
    first = min(samples, key=lambda s: abs(s[0] - start))
    last = min(samples, key=lambda s: abs(s[0] - end))
    return (last[1] - first[1]) / max(last[0] - first[0], 1e-9)


def slowest_window(samples: list[tuple[float, int]], seconds: float) -> float:
    """The lowest committed rate over any `seconds`-long window of the samples."""
    rates = [
        rate_over(samples, t, t + seconds)
        for t, _ in samples
        if t + seconds <= samples[-1][0] and t >= 2.0  # the first seconds fill the pipeline
    ]
    return min(rates) if rates else rate_over(samples, samples[0][0], samples[-1][0])


@dataclass
class Figures:
    """What the phases measured."""

    verifies: float  # Ed25519 verifications per core-second, this run
    cores: int
    validators: int
    throughput: LoadResult
    total: float
    sustained: float
    cpu: float  # mean CPU-seconds a validator used during the throughput phase
    rate: float
    latency: LoadResult
    bundles: LoadResult
    bundle_cpu: float  # CPU-seconds the serving node used during the bundle phase
    solo: float
    rss: list[tuple[str, tuple[float, float]]]
    #: Header times (ms) of the blocks proposed during the throughput phase.
    block_times: list[int] = field(default_factory=list)

    @property
    def bound(self) -> float:
        """Events/s if the validators did nothing but verify each event's signature once, on these cores."""
        return self.cores * self.verifies / self.validators

    @property
    def committed(self) -> int:
        return self.throughput.samples[-1][1] - self.throughput.samples[0][1]


def measure(args: argparse.Namespace, network: list[Member], pids: list[int], scratch: Path) -> Figures:
    """Run the timed phases against the running devnet."""
    urls = [m.url for m in network]
    verifies = verifies_per_core_second()
    cores = os.cpu_count() or 1
    bound = cores * verifies / len(network)
    print(f"Ed25519: {verifies:,.0f} verifications per core-second; bound {bound:,.0f} events/s", flush=True)
    split = int(args.duration * bound)
    count = split + int(args.latency_seconds * bound / 2)
    print(f"signing {count} events ...", flush=True)
    events = presign(ORIGIN, network, count)
    throughput_file, latency_file = scratch / "throughput.msgpack", scratch / "latency.msgpack"
    throughput_file.write_bytes(msgpack.packb(events[:split]))
    latency_file.write_bytes(msgpack.packb(events[split:]))
    rss = [("start", rss_mib(pids[0]))]

    print(f"throughput phase ({args.duration:g} s) ...", flush=True)
    cpu_before = [cpu_seconds(pid) for pid in pids]
    load = run_load(
        "saturate", throughput_file, urls=urls, duration=args.duration, batch=args.batch, window=args.window
    )
    cpu = statistics.mean(cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True))
    total = rate_over(load.samples, 0.0, load.samples[-1][0])
    sustained = min(total, slowest_window(load.samples, 10.0))
    rss.append(("after the throughput phase", rss_mib(pids[0])))
    times = asyncio.run(block_times(urls[0], *load.wall_ms))
    print(f"draining the backlog ({asyncio.run(drain(urls)):.1f} s) ...", flush=True)

    rate = args.rate or max(total / 2, 10.0)
    print(f"latency phase at {rate:.0f} events/s ({args.latency_seconds:g} s) ...", flush=True)
    latency = run_load("paced", latency_file, urls=urls, rate=rate, duration=args.latency_seconds, batch=10)
    asyncio.run(drain(urls))

    print(f"bundle phase ({args.bundle_seconds:g} s) ...", flush=True)
    digests = [digest_of(e) for e in events[: min(split, load.submitted, 20_000)]]
    serving_before = cpu_seconds(pids[0])
    bundles = run_load(
        "bundles", None, url=urls[0], digests=digests, duration=args.bundle_seconds, concurrency=args.concurrency
    )
    bundle_cpu = cpu_seconds(pids[0]) - serving_before
    rss.append(("after the bundle phase", rss_mib(pids[0])))
    solo = solo_rate(args, scratch)
    return Figures(
        verifies, cores, len(network), load, total, sustained, cpu, rate, latency, bundles, bundle_cpu, solo, rss, times
    )


def solo_rate(args: argparse.Namespace, scratch: Path) -> float:
    """Committed events/s of a 1-validator network (the first member's keys) loaded with batches of 100."""
    if args.solo_seconds <= 0:
        return 0.0
    print(f"one validator, batches of 100 ({args.solo_seconds:g} s) ...", flush=True)
    directory = scratch / "solo"
    solo = members(directory, 1, free_base_port(1))
    create(directory, solo)
    issuer = (solo[0].directory / "issuer.key").read_text()
    events = presign_with(ORIGIN, [(solo[0].member_id, issuer)], int(args.solo_seconds * 6_000))
    events_file = scratch / "solo.msgpack"
    events_file.write_bytes(msgpack.packb(events))
    process = start_node(solo[0], NODE_ENV)
    try:
        if not wait_ready([(solo[0], process)]):
            raise RuntimeError("the 1-validator node did not start")
        load = run_load(
            "saturate", events_file, urls=[solo[0].url], duration=args.solo_seconds, batch=100, window=args.window
        )
    finally:
        stop_all([(solo[0], process)])
    return rate_over(load.samples, 0.0, load.samples[-1][0])


def report(figures: Figures) -> None:
    """Print the figures against their targets."""
    load, latencies = figures.throughput, sorted(figures.latency.latencies)
    per_cpu = figures.committed / figures.cpu if figures.cpu else 0.0
    gap = longest_gap(figures.block_times, *load.wall_ms)
    rows: list[tuple[str, str, str]] = [
        ("Ed25519 verifications per core-second (this run)", f"{figures.verifies:,.0f}", ""),
        (f"bound: {figures.cores} cores x that / {figures.validators} validators (ev/s)", f"{figures.bound:,.0f}", ""),
        ("committed events/s (whole phase)", f"{figures.total:,.0f}", ""),
        ("  / bound", f"{figures.total / figures.bound:.2f}", ">= 0.6"),
        ("committed events/s (slowest 10 s)", f"{figures.sustained:,.0f}", ""),
        ("events committed in the phase", f"{figures.committed}", ""),
        ("events committed per validator CPU-second", f"{per_cpu:,.0f}", ""),
        ("  / Ed25519 verifications per core-second", f"{per_cpu / figures.verifies:.2f}", ">= 0.5"),
        ("longest time without a block, by header times (s)", f"{gap:.2f}", "< 1"),
        ("  as sampled by GET /v1/status every 0.25 s (s)", f"{longest_stall(load.samples):.2f}", ""),
        ("refused requests (throughput phase)", f"{sum(load.refused.values())}", str(load.refused or "")),
    ]
    if latencies:
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        rows.append((f"commit latency p50 at {figures.rate:.0f} events/s (s)", f"{p50:.3f}", "<= 0.15"))
        rows.append((f"commit latency p99 at {figures.rate:.0f} events/s (s)", f"{p99:.3f}", "<= 0.5"))
    refused = sum(figures.latency.refused.values())
    rows.append(("latency requests answered / refused", f"{len(latencies)} / {refused}", ""))
    bundles = figures.bundles
    rows.append(("proof bundles/s from one node", f"{bundles.bundles / bundles.seconds:,.0f}", ">= 5000"))
    per_cpu_bundles = bundles.bundles / figures.bundle_cpu if figures.bundle_cpu else 0.0
    rows.append(("proof bundles per CPU-second of the serving node", f"{per_cpu_bundles:,.0f}", ""))
    rows.append(("bundle requests that failed", f"{bundles.errors}", ""))
    rows.append(("1 validator, batches of 100: committed events/s", f"{figures.solo:,.0f}", ">= 2000"))
    for label, (vm, anon) in figures.rss:
        rows.append((f"node RSS MiB {label} (VmRSS / RssAnon)", f"{vm:.0f} / {anon:.0f}", ""))
    print()
    print(f"{'figure':<60} {'value':>12}  target")
    for name, value, target in rows:
        print(f"{name:<60} {value:>12}  {target}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench node", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the throughput phase")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="seconds of the latency phase")
    parser.add_argument("--bundle-seconds", type=float, default=10.0, help="seconds of the bundle phase")
    parser.add_argument("--batch", type=int, default=200, help="events per POST in the throughput phase")
    parser.add_argument("--window", type=int, default=2_000, help="most events admitted but not yet committed")
    parser.add_argument("--rate", type=float, help="events/s of the latency phase (default: half the sustained)")
    parser.add_argument("--concurrency", type=int, default=32, help="bundle requests in flight")
    parser.add_argument("--solo-seconds", type=float, default=10.0, help="seconds of the 1-validator phase (0: skip)")
    parser.add_argument("--burn", type=int, default=0, help="CPU-burning neighbour processes during the run")
    parser.add_argument("--soak", type=int, default=0, metavar="EVENTS", help="then load until the log holds this")
    parser.add_argument("--dir", type=Path, help="keep the devnet here (default: a temporary directory)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="credledger-bench-") as scratch:
        directory = args.dir or Path(scratch) / "devnet"
        network = members(directory, 4, free_base_port(4))
        create(directory, network)
        processes = [(m, start_node(m, NODE_ENV)) for m in network]
        burners = [multiprocessing.get_context("spawn").Process(target=_burn, daemon=True) for _ in range(args.burn)]
        try:
            if not wait_ready(processes):
                return 1
            print(f"devnet up: {', '.join(m.url for m in network)}", flush=True)
            for burner in burners:
                burner.start()
            if burners:
                print(f"{len(burners)} CPU-burning neighbour process(es) running", flush=True)
            pids = [process.pid for _, process in processes]
            report(measure(args, network, pids, Path(scratch)))
            if args.soak:
                soak(args, network, pids[0], Path(scratch))
        finally:
            for burner in burners:
                burner.terminate()
            stop_all(processes)
    return 0


def soak(args: argparse.Namespace, network: list[Member], pid: int, scratch: Path) -> None:
    """Load until the log holds `args.soak` events, printing one node's memory every so often."""
    urls = [m.url for m in network]
    chunk = 100_000
    print(f"\nsoak to {args.soak} events: log size, VmRSS MiB, RssAnon MiB", flush=True)

    def size() -> int:
        async def ask() -> int:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                return await log_size(session, urls[0])

        return asyncio.run(ask())

    while (current := size()) < args.soak:
        vm, anon = rss_mib(pid)
        print(f"{current:>10} {vm:>10.0f} {anon:>10.0f}", flush=True)
        events = presign(ORIGIN, network, min(chunk, args.soak - current))
        batch_file = scratch / "soak.msgpack"
        batch_file.write_bytes(msgpack.packb(events))
        run_load("saturate", batch_file, urls=urls, duration=3_600.0, batch=args.batch, window=args.window)
    vm, anon = rss_mib(pid)
    print(f"{size():>10} {vm:>10.0f} {anon:>10.0f}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
