"""Static tiles and witnessing, served by one node: tiles/s against JSON proofs/s, and add-checkpoint requests/s.

A store of `--entries` committed events (one validator, real LMDB, real signatures) is served by the node's API
(`node.api.app.make_app`) in a child process; this process is the client (aiohttp, `--clients` concurrent loops).

1. tiles vs proofs, in the same run, alternating `--repeat` times for `--seconds` each: random full level-0 tiles
   and entry bundles (``GET /tile/0/<N>``, ``GET /tile/entries/<N>``) against random JSON inclusion proofs of the
   whole log (``GET /v1/proof/inclusion?index=``). Reported: medians, and their ratio. A tile gives a client 256
   leaves' worth of proof material at once; the JSON route computes one proof per request.
2. add-checkpoint: the node witnesses a synthetic log; checkpoints of sizes 1, 2, 3, ... each with a consistency
   proof from the previous one are sent one after another (a witness must see them in order), each cosigned after
   an fsynced compare-and-swap. Reported: requests/s (median of the repeats).
3. the latency a witness quorum adds (`bench.witnesslatency`): a 4-validator devnet of real node processes whose
   validators submit every checkpoint to `--witnesses` witness nodes (real processes too, each a credledger node
   whose `[witness]` follows the devnet) and want `--witness-quorum` cosignatures. One event at a time is submitted
   with `?wait=commit`; then the first node's `/v1/checkpoint` is polled until it serves a checkpoint holding the
   event with the quorum of valid cosignatures. Reported: medians (and p90) of the commit latency, of the time to
   the cosigned checkpoint, and of their difference per event: the extra latency witnessing adds.
   `--latency-samples 0` skips it; `--only-latency` runs only it.

Run ``python -m bench witness`` (a few minutes) or ``python -m bench witness --entries 20000``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

from credledger.ledger.block import sign_checkpoint
from credledger.ledger.events import Issue, MemberAdd, UnsignedEvent, sign_event
from credledger.ledger.genesis import Genesis, Params, write_genesis
from credledger.ledger.keys import SigningKey
from credledger.ledger.merkle import consistency_path, leaf_hash, root_from_leaf_hashes
from credledger.ledger.note import SignedNote, sign_note
from credledger.ledger.storage.store import Store
from credledger.ledger.treehead import TreeHead
from credledger.ledger.witness import add_checkpoint_body
from credledger.node.api.app import make_app
from credledger.node.application import LedgerApplication
from credledger.node.config import NodeConfig, WitnessConfig, WitnessedLogConfig
from credledger.node.mempool import Mempool

ORIGIN = "bench.credledger/witness"
WITNESSED = "bench.example/log"
MEMBER = "m0.bench"
T0 = 1_767_225_600_000
BLOCK = 500


def build(directory: Path, entries: int) -> Genesis:
    """A store of `entries` issue events in blocks of `BLOCK`, certified by the one validator."""
    node, issuer = SigningKey.generate(MEMBER), SigningKey.generate(MEMBER)
    (directory / "node.key").write_text(node.skey())
    member = MemberAdd(MEMBER, "Bench", 1, node.public.raw, (issuer.public.raw,))
    genesis = Genesis.of(ORIGIN, T0, [member], Params())
    write_genesis(genesis, directory / "genesis.json")
    store = Store(directory / "data")
    store.initialize(genesis)
    try:
        for start in range(0, entries, BLOCK):
            events = [
                sign_event(UnsignedEvent(ORIGIN, T0, Issue(i.to_bytes(32, "big"), MEMBER, None, ())), issuer)
                for i in range(start, min(entries, start + BLOCK))
            ]
            height = store.height() + 1
            block, _ = store.build_block(events, proposer=MEMBER, round=0, time_ms=T0 + height * 1000)
            header = block.header
            note = SignedNote(header.checkpoint(0).body(), (sign_checkpoint(header, 0, node),)).format()
            store.commit_block(block, note)
    finally:
        store.close()
    return genesis


def serve(directory: Path, port: int, log_vkey: str) -> None:
    """The node's API over the store, witnessing the synthetic log (runs in the child process)."""
    genesis_path = directory / "genesis.json"
    from credledger.ledger.genesis import load_genesis

    store = Store(directory / "data")
    chain = LedgerApplication(store, load_genesis(genesis_path), mempool=Mempool(max_events=10, max_bytes=1 << 20))
    (directory / "witness.key").write_text(SigningKey.generate("bench.witness/w1").skey())
    witness = WitnessConfig(directory / "witness.key", (WitnessedLogConfig(WITNESSED, (log_vkey,), 1),))
    config = NodeConfig(MEMBER, directory / "data", genesis_path, directory / "node.key", witness=witness)
    web.run_app(make_app(chain, config), host="127.0.0.1", port=port, print=None, access_log=None)


async def rate(url: str, paths: Callable[[random.Random], str], clients: int, seconds: float, seed: int) -> float:
    """Successful GETs per second by `clients` concurrent loops over `seconds`."""
    done = 0

    async def loop(session: aiohttp.ClientSession, rng: random.Random, deadline: float) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with session.get(url + paths(rng)) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{paths(rng)}: {response.status}")
                done += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(loop(session, random.Random(seed + i), deadline) for i in range(clients)))
        return done / (time.perf_counter() - started)


def witnessed_requests(key: SigningKey, count: int) -> list[bytes]:
    """Add-checkpoint bodies for sizes 1 … count of a synthetic log, each from the previous size."""
    leaves = [leaf_hash(i.to_bytes(8, "big")) for i in range(count)]
    bodies = []
    for size in range(1, count + 1):
        head = TreeHead(WITNESSED, size, root_from_leaf_hashes(leaves[:size]), ())
        note = SignedNote(head.body(), (sign_note(head.body(), key),))
        old = size - 1
        bodies.append(add_checkpoint_body(old, consistency_path(leaves[:size], old) if old else [], note))
    return bodies


async def add_checkpoint_rate(url: str, bodies: Sequence[bytes]) -> float:
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        for body in bodies:
            async with session.post(url + "/add-checkpoint", data=body) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"add-checkpoint answered {response.status}")
        return len(bodies) / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the node did not start")


async def measure(args: argparse.Namespace, url: str, size: int, log_key: SigningKey) -> dict[str, list[float]]:
    await wait_up(url)
    bundles = size // 256
    figures: dict[str, list[float]] = {"tiles": [], "proofs": [], "add-checkpoint": []}

    def tile(rng: random.Random) -> str:
        n = rng.randrange(bundles)
        kind = "entries/" if rng.random() < 0.5 else "0/"
        return f"/tile/{kind}{n:03d}" if n < 1000 else f"/tile/{kind}x{n // 1000:03d}/{n % 1000:03d}"

    def proof(rng: random.Random) -> str:
        return f"/v1/proof/inclusion?index={rng.randrange(size)}"

    per_repeat = args.checkpoints // args.repeat
    bodies = witnessed_requests(log_key, per_repeat * args.repeat)
    for repeat in range(args.repeat):
        figures["tiles"].append(await rate(url, tile, args.clients, args.seconds, repeat))
        figures["proofs"].append(await rate(url, proof, args.clients, args.seconds, repeat))
        chunk = bodies[repeat * per_repeat : (repeat + 1) * per_repeat]
        figures["add-checkpoint"].append(await add_checkpoint_rate(url, chunk))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench witness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--checkpoints", type=int, default=600, help="add-checkpoint requests over all repeats")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-samples", type=int, default=20, help="events timed to a cosigned checkpoint")
    parser.add_argument("--witnesses", type=int, default=2, help="witness nodes of the devnet (latency part)")
    parser.add_argument("--witness-quorum", type=int, help="cosignatures wanted per checkpoint (default: all)")
    parser.add_argument("--witness-interval-ms", type=int, default=1_000, help="the devnet's witness_interval_ms")
    parser.add_argument("--latency-pause", type=float, default=0.5, help="most seconds between timed events")
    parser.add_argument("--only-latency", action="store_true", help="measure only the latency a quorum adds")
    args = parser.parse_args(argv)
    if args.entries < 256:
        parser.error("--entries must be at least 256 (one full tile)")
    quorum = args.witnesses if args.witness_quorum is None else args.witness_quorum
    if args.witnesses < 1 or not 1 <= quorum <= args.witnesses:
        parser.error("--witnesses must be at least 1 and --witness-quorum between 1 and --witnesses")
    if not args.only_latency:
        serving(args)
    if args.latency_samples > 0:
        from bench.witnesslatency import quorum_latency

        quorum_latency(args.witnesses, quorum, args.witness_interval_ms, args.latency_samples, args.latency_pause)
    return 0


def serving(args: argparse.Namespace) -> None:
    """Parts 1 and 2: one node's API in a child process, this process the clients."""
    with tempfile.TemporaryDirectory(prefix="credledger-bench-witness-") as tmp:
        directory = Path(tmp)
        build(directory, args.entries)
        log_key = SigningKey.generate(WITNESSED)
        port = free_port()
        child = multiprocessing.get_context("spawn").Process(
            target=serve, args=(directory, port, log_key.public.vkey()), daemon=True
        )
        child.start()
        try:
            figures = asyncio.run(measure(args, f"http://127.0.0.1:{port}", args.entries, log_key))
        finally:
            child.terminate()
            child.join(10)
    tiles, proofs = statistics.median(figures["tiles"]), statistics.median(figures["proofs"])
    witnessed = statistics.median(figures["add-checkpoint"])
    print(f"log of {args.entries:,} events; {args.clients} concurrent clients; medians of {args.repeat} runs")
    print(f"  tiles and entry bundles served   {tiles:10,.0f} /s  (each 256 leaves' hashes or events)")
    print(f"  JSON inclusion proofs served     {proofs:10,.0f} /s")
    print(f"  ratio tiles / proofs             {tiles / proofs:10.2f}")
    print(f"  add-checkpoint cosigned          {witnessed:10,.0f} /s  (sequential, each fsynced)")


if __name__ == "__main__":
    sys.exit(main())
