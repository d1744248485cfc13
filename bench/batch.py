"""Bulk issuance benchmark: `credledger issue --batch` on a 4-validator devnet of real node processes.

Each round, on the same running network (the nodes share the machine's cores with the client):

1. raw commits: `--count` issue events, signed beforehand, POSTed in batches of the node's limit with
   ``?wait=commit``, `--concurrency` requests in flight, from this process -- what the network commits when the
   client does nothing else (no digests, no journal, no receipts). Reported: events/s.
2. the bulk path: a fresh `--count` credentials (a JSON Lines file of VC 2.0 credentials, written beforehand) issued
   with ``credledger issue --batch`` in its own process, from start to the last receipt written. Reported: seconds
   and credentials/s, and the ratio to the same round's raw commits (what the bulk path's own work costs).

Also measured in the same run: Ed25519 verifications per core-second (this process), so the bound -- each validator
verifies each event once, 4 validators on C cores commit at most C x that / 4 events/s -- is reported beside it.
Medians over `--rounds`. `--sign` issues signed standard credentials (`--batch --sign`, eddsa-rdfc-2022) instead;
`--read-nodes` fetches receipts from the other three validators too (`--read-node`).

Run ``python -m bench batch --count 10000`` (target: under 10 s) or ``--count 100000`` (under 90 s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.node import cpu_seconds, free_base_port, presign, verifies_per_core_second
from credledger.cli.devnet import ORIGIN, Member, create, members, start_node, stop_all, wait_ready
from credledger.ledger.events import decode_event
from credledger.verifier.client import NodeClient

NODE_ENV = {"CREDLEDGER_MEMPOOL_MAX_EVENTS": "200000", "CREDLEDGER_LOG_LEVEL": "warning"}
BATCH = 1000


def _credentials(path: Path, count: int, tag: str, sign: bool) -> None:
    with path.open("w", encoding="utf-8") as file:
        for n in range(count):
            credential = {
                "@context": ["https://www.w3.org/ns/credentials/v2"],
                "type": ["VerifiableCredential"],
                "id": f"urn:uuid:{tag}-{n:012d}",
                "credentialSubject": {"id": f"did:example:graduate-{n}", "name": f"Graduate {n}"}
                if not sign
                else {"id": f"did:example:graduate-{n}"},
            }
            file.write(json.dumps(credential) + "\n")


@dataclass
class Phase:
    """One phase's wall seconds, and the CPU seconds the validators and the client used in it."""

    seconds: float
    nodes_cpu: float
    client_cpu: float


def raw_commits(url: str, network: list[Member], pids: list[int], count: int, concurrency: int) -> Phase:
    """Commit `count` pre-signed issue events, batches of BATCH, `concurrency` requests in flight."""
    events = [decode_event(e) for e in presign(ORIGIN, network[:1], count)]
    client = NodeClient(url, timeout=120)
    chunks = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    nodes, mine, started = _nodes_cpu(pids), time.process_time(), time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda chunk: client.submit(chunk, wait=True), chunks))
    return Phase(time.monotonic() - started, _nodes_cpu(pids) - nodes, time.process_time() - mine)


def _nodes_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bulk_path(
    url: str,
    member: Member,
    pids: list[int],
    inputs: Path,
    out: Path,
    *,
    concurrency: int,
    sign: bool,
    readers: Sequence[str],
) -> Phase:
    """`credledger issue --batch` in its own process, from start to its exit."""
    command = [
        sys.executable, "-m", "credledger.cli.main", "issue", "--batch", str(inputs), "--out", str(out),
        "--key", str(member.directory / "issuer.key"), "--node", url, "--concurrency", str(concurrency),
        "--no-progress", *(["--sign"] if sign else []), *(f"--read-node={r}" for r in readers),
    ]  # fmt: skip
    nodes, children, started = _nodes_cpu(pids), _children_cpu(), time.monotonic()
    result = subprocess.run(command, capture_output=True, check=False)
    phase = Phase(time.monotonic() - started, _nodes_cpu(pids) - nodes, _children_cpu() - children)
    if result.returncode != 0:
        raise RuntimeError(f"the batch failed ({result.returncode}): {result.stderr.decode()[-2000:]}")
    return phase


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="credentials per round (default 10,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported (default 3)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument("--sign", action="store_true", help="signed standard credentials (issue --batch --sign)")
    parser.add_argument(
        "--read-nodes", action="store_true", help="fetch receipts from the other validators too (--read-node)"
    )
    args = parser.parse_args(argv)
    verifies = verifies_per_core_second()
    cores = os.cpu_count() or 1
    bound = cores * verifies / 4
    print(f"Ed25519: {verifies:,.0f} verifications per core-second; bound {bound:,.0f} events/s on {cores} cores")
    with tempfile.TemporaryDirectory(prefix="credledger-bench-batch-") as scratch:
        directory = Path(scratch)
        network = members(directory / "net", 4, free_base_port(4))
        create(directory / "net", network)
        processes = [(m, start_node(m, NODE_ENV)) for m in network]
        try:
            if not wait_ready(processes):
                return 1
            url = network[0].url
            pids = [p.pid for _, p in processes]
            raw, bulk = [], []
            for r in range(args.rounds):
                inputs = directory / f"round-{r}.jsonl"
                _credentials(inputs, args.count, f"bench-{r}-{time.time_ns()}", args.sign)
                raw.append(raw_commits(url, network, pids, args.count, args.concurrency))
                bulk.append(
                    bulk_path(
                        url,
                        network[0],
                        pids,
                        inputs,
                        directory / f"out-{r}",
                        concurrency=args.concurrency,
                        sign=args.sign,
                        readers=[m.url for m in network[1:]] if args.read_nodes else [],
                    )
                )
                print(
                    f"round {r + 1}: raw commits {args.count / raw[-1].seconds:,.0f} events/s; issue --batch "
                    f"{args.count:,} in {bulk[-1].seconds:.1f} s ({args.count / bulk[-1].seconds:,.0f}/s)",
                    flush=True,
                )
        finally:
            stop_all(processes)
        # Reported before the scratch folder (tens of thousands of receipts) is deleted, which takes a while.
        seconds = statistics.median(b.seconds for b in bulk)
        rate, raw_rate = args.count / seconds, args.count / statistics.median(r.seconds for r in raw)
        per_k = 1000 / args.count
        kind = "signed standard credentials" if args.sign else "credentials"
        print(f"\n{args.count:,} {kind}, medians of {args.rounds} rounds:")
        print(f"  issue --batch, start to last receipt  {seconds:8.1f} s   {rate:8,.0f} /s")
        print(f"  raw commits, same network and client           {raw_rate:8,.0f} events/s")
        print(f"  bulk path / raw commits                        {rate / raw_rate:8.2f}")
        print(f"  raw commits / Ed25519 bound                    {raw_rate / bound:8.2f}")
        print(f"  bulk path / Ed25519 bound                      {rate / bound:8.2f}")
        print("CPU seconds per 1,000, medians (they hold whatever share of the cores the processes got):")
        for name, phases in (("raw commits", raw), ("issue --batch", bulk)):
            nodes = statistics.median(p.nodes_cpu for p in phases) * per_k
            client = statistics.median(p.client_cpu for p in phases) * per_k
            print(f"  {name:14} validators {nodes:6.2f}   client {client:6.2f}   total {nodes + client:6.2f}")
    return 0
