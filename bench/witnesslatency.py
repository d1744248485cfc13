"""The extra latency a witness quorum adds to a fresh cosigned checkpoint, on a devnet of real node processes.

Part 3 of ``python -m bench witness`` (see its docstring). A 4-validator devnet (`credledger devnet`'s layout and
timeouts) and `witnesses` witness nodes run as separate processes on 127.0.0.1. Each witness node is a credledger
node of a one-member network of its own whose `[witness]` follows the devnet's log (3 of the 4 validators' note
keys must sign); every devnet validator lists every witness in `[witnesses]` and wants `quorum` cosignatures.

Each sample submits one signed issue event to the first validator with ``?wait=commit`` (after a random pause of up
to `pause` seconds, so samples do not lock into the witnessing period; a pause longer than the interval times a
checkpoint after a quiet spell), then polls that node's ``/v1/checkpoint``
every 10 ms until it serves a checkpoint that holds the event and carries `quorum` valid cosignatures. The commit
latency and the time to the cosigned checkpoint are measured from the same submission; their difference is what
witnessing adds (waiting for the next witnessing round, the add-checkpoint requests with their consistency proofs,
each witness's fsynced record and Ed25519 cosignature, and the node keeping the cosigned note).
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.node import free_base_port
from credledger.cli.devnet import DEVNET_PARAMS, ORIGIN, Member, create, members, start_node, stop_all, wait_ready
from credledger.ledger.cosignature import CosignerKey, verified_cosignatures
from credledger.ledger.events import Issue, MemberAdd, UnsignedEvent, sign_event
from credledger.ledger.genesis import Genesis, write_genesis
from credledger.ledger.keys import SigningKey
from credledger.ledger.note import SignedNote
from credledger.ledger.treehead import TreeHead
from credledger.verifier.client import NodeClient

VALIDATORS = 4
#: How many of the devnet's 4 validators' signatures a witness requires on a checkpoint (a certificate has 3).
LOG_QUORUM = 3
POLL_S = 0.01
SAMPLE_TIMEOUT_S = 60.0
NODE_ENV = {"CREDLEDGER_LOG_LEVEL": "warning"}

WITNESS_TOML = """\
member_id = "{member_id}"
data_dir = "data"
genesis = "genesis.json"
node_key = "node.key"
role = "validator"

[api]
host = "127.0.0.1"
port = {port}

[p2p]
peers = []

[log]
level = "warning"
format = "json"

[witness]
key = "witness.key"

[[witness.logs]]
origin = "{origin}"
vkeys = [{vkeys}]
quorum = {log_quorum}
"""


def witness_node(directory: Path, number: int, port: int, log_vkeys: list[str]) -> tuple[Member, CosignerKey]:
    """Write a witness node following the devnet's log; its member and cosigner key."""
    member = Member(f"witness-{number}.bench", f"Witness {number}", directory / f"witness-{number}", port)
    member.directory.mkdir(parents=True)
    node_key = SigningKey.generate(member.member_id)
    witness_key = SigningKey.generate(f"bench.witness/w{number}")
    (member.directory / "node.key").write_text(node_key.skey() + "\n")
    (member.directory / "witness.key").write_text(witness_key.skey() + "\n")
    issuer = SigningKey.generate(member.member_id).public.raw  # the witness network issues nothing: never kept
    add = MemberAdd(member.member_id, member.name, 1, node_key.public.raw, (issuer,))
    genesis = Genesis.of(f"bench.credledger/witness-{number}", int(time.time() * 1000), [add], DEVNET_PARAMS)
    write_genesis(genesis, member.directory / "genesis.json")
    (member.directory / "node.toml").write_text(
        WITNESS_TOML.format(
            member_id=member.member_id,
            port=port,
            origin=ORIGIN,
            vkeys=", ".join(json.dumps(v) for v in log_vkeys),
            log_quorum=LOG_QUORUM,
        )
    )
    return member, CosignerKey.of(witness_key)


def witnessed_by(validator: Member, witnesses: list[tuple[Member, CosignerKey]], quorum: int, interval_ms: int) -> None:
    """Append `[witnesses]` naming every witness to a devnet validator's node.toml."""
    tables = [f"\n[witnesses]\nquorum = {quorum}\nwitness_interval_ms = {interval_ms}\n"]
    for member, key in witnesses:
        tables.append(f'\n[[witnesses.witnesses]]\nvkey = "{key.vkey()}"\nurl = "{member.url}"\n')
    with (validator.directory / "node.toml").open("a") as file:
        file.write("".join(tables))


def sample(
    client: NodeClient, issuer: SigningKey, *, member_id: str, keys: list[CosignerKey], quorum: int
) -> tuple[float, float]:
    """One event: seconds to its commit answer, and to the node serving a cosigned checkpoint that holds it."""
    digest = random.randbytes(32)
    event = sign_event(UnsignedEvent(ORIGIN, int(time.time() * 1000), Issue(digest, member_id, None, ())), issuer)
    started = time.perf_counter()
    answer = client.submit([event], wait=True)
    committed = time.perf_counter() - started
    size = TreeHead.parse(SignedNote.parse(answer["checkpoint"]).text).size
    while time.perf_counter() - started < SAMPLE_TIMEOUT_S:
        note = SignedNote.parse(client.checkpoint())
        if TreeHead.parse(note.text).size >= size and len(verified_cosignatures(note, keys)) >= quorum:
            return committed, time.perf_counter() - started
        time.sleep(POLL_S)
    raise RuntimeError(
        f"event {event.id.hex()}: no checkpoint with {quorum} cosignatures within {SAMPLE_TIMEOUT_S:g} s"
    )


def p90(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.9 * len(values)) - 1)]


def quorum_latency(witnesses: int, quorum: int, interval_ms: int, samples: int, pause: float = 0.5) -> None:
    """Run the devnet and its witnesses, time `samples` events to a cosigned checkpoint, print the medians."""
    with tempfile.TemporaryDirectory(prefix="credledger-bench-witness-latency-") as tmp:
        directory = Path(tmp)
        base = free_base_port(VALIDATORS + witnesses)
        network = members(directory, VALIDATORS, base)
        create(directory, network)
        log_vkeys = [SigningKey.from_skey((m.directory / "node.key").read_text()).public.vkey() for m in network]
        nodes = [witness_node(directory, i, base + VALIDATORS + i, log_vkeys) for i in range(witnesses)]
        for validator in network:
            witnessed_by(validator, nodes, quorum, interval_ms)
        processes: list[tuple[Member, subprocess.Popen[bytes]]] = []
        try:
            for member in [*(m for m, _ in nodes), *network]:
                processes.append((member, start_node(member, NODE_ENV)))
            if not wait_ready(processes):
                raise RuntimeError("the devnet or a witness node did not start")
            first = network[0]
            client = NodeClient(first.url, timeout=30)
            issuer = SigningKey.from_skey((first.directory / "issuer.key").read_text())
            keys = [key for _, key in nodes]
            sample(client, issuer, member_id=first.member_id, keys=keys, quorum=quorum)  # warm up: first records
            commits, cosigned = [], []
            for _ in range(samples):
                time.sleep(random.uniform(0, pause))
                committed, witnessed = sample(client, issuer, member_id=first.member_id, keys=keys, quorum=quorum)
                commits.append(committed)
                cosigned.append(witnessed)
        finally:
            stop_all(processes)
    extra = [w - c for c, w in zip(commits, cosigned, strict=True)]
    print(
        f"witness quorum latency: {VALIDATORS}-validator devnet, {witnesses} witness nodes, quorum {quorum}, "
        f"witness_interval_ms {interval_ms}; {samples} events, each after a pause of up to {pause:g} s; median (p90)"
    )
    print(f"  commit (?wait=commit answered)          {statistics.median(commits):6.3f} s ({p90(commits):.3f})")
    print(f"  cosigned checkpoint served              {statistics.median(cosigned):6.3f} s ({p90(cosigned):.3f})")
    print(f"  extra latency of the witness quorum     {statistics.median(extra):6.3f} s ({p90(extra):.3f})")
