"""Valid inputs for every decoder, made from a real chain: the seeds the fuzzers mutate.

A small network commits two blocks in a real LMDB store (issues, a revoke, a suspend), and every format that
arrives from outside is taken from it as the node would serve or send it: encoded events and their JSON form,
certified blocks, checkpoint notes, proof bundles (valid, revoked, unknown), tlog-proof files, consensus messages
and evidence, handshake messages, the genesis file and node configs. Keys derive from names, so the corpus is the
same on every run.
"""

from __future__ import annotations

import base64
import functools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import msgpack

from credledger.ledger import codec
from credledger.ledger.eventjson import event_to_json
from credledger.ledger.events import Revoke, Suspend
from credledger.ledger.genesis import Genesis, genesis_json
from credledger.ledger.storage.bundles import build_bundle
from credledger.ledger.storage.store import Store
from credledger.ledger.tlogproof import from_bundle
from credledger.ledger.votes import encode_message, make_evidence, sign_precommit, sign_prevote, sign_proposal
from credledger.node.peers import Hello, Proof
from tests.blocks import commit
from tests.factories import BLOCK_INTERVAL_MS, T0, Network, digest, issue, make_network, signed

#: The node config every example starts from (as `credledger init` writes one).
CONFIG = """\
member_id = "m0.test"
data_dir = "data"
genesis = "genesis.json"
node_key = "node.key"
role = "validator"

[api]
host = "127.0.0.1"
port = 8700
max_body_bytes = 4194304

[p2p]
peers = ["http://127.0.0.1:8701", "http://127.0.0.1:8702"]
backoff_min_ms = 50

[mempool]
max_events = 1000

[log]
level = "info"
format = "json"
"""


@dataclass(frozen=True)
class Corpus:
    """Seeds by format, and the network they belong to (what verifiers check them against)."""

    network: Network
    events: tuple[bytes, ...]
    event_json: tuple[bytes, ...]
    headers: tuple[bytes, ...]
    blocks: tuple[bytes, ...]
    notes: tuple[bytes, ...]
    bundles: tuple[bytes, ...]
    tlog_proofs: tuple[bytes, ...]
    messages: tuple[bytes, ...]
    evidence: tuple[bytes, ...]
    handshakes: tuple[bytes, ...]
    genesis: tuple[bytes, ...]
    configs: tuple[bytes, ...]
    #: Bodies of `POST /v1/events`: JSON (encoded and field forms, one and a batch) and msgpack.
    json_bodies: tuple[bytes, ...]
    msgpack_bodies: tuple[bytes, ...]

    @property
    def genesis_record(self) -> Genesis:
        return self.network.genesis


@functools.cache
def corpus() -> Corpus:
    """The corpus (built once per process, in a temporary directory removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="credledger-fuzz-corpus-") as tmp:
        return _build(Path(tmp))


def _build(directory: Path) -> Corpus:
    network = make_network(4)
    m0, m1 = network["m0.test"], network["m1.test"]
    kept, revoked, suspended, unknown = digest("kept"), digest("revoked"), digest("suspended"), digest("unknown")
    time1 = T0 + BLOCK_INTERVAL_MS
    first = [issue(m0, kept, time_ms=time1), issue(m1, revoked, time_ms=time1), issue(m0, suspended, time_ms=time1)]
    time2 = T0 + 2 * BLOCK_INTERVAL_MS
    second = [
        signed(Revoke(revoked, 1), m1.issuer, time_ms=time2),
        signed(Suspend(suspended, 0), m0.issuer, time_ms=time2),
    ]
    store = Store(directory / "ledger")
    try:
        store.initialize(network.genesis)
        commit(store, network, *first)
        block2 = commit(store, network, *second)
        origin, genesis_hash = network.genesis.origin, network.genesis.hash()
        with store.snapshot() as snap:
            bundles = [build_bundle(snap, d, genesis_hash, origin) for d in (kept, revoked, suspended, unknown)]
            certified = [snap.block(h) for h in range(1, snap.height + 1)]
    finally:
        store.close()
    events = first + second
    header = block2.header
    node_keys = [network[i].node for i in network.ids]
    prevotes = [sign_prevote(k, origin, 3, 0, header.hash()) for k in node_keys]
    messages = [
        sign_proposal(node_keys[0], origin, 2, 1, block2, pol_round=0),
        *prevotes,
        sign_prevote(node_keys[1], origin, 3, 0, None),
        sign_precommit(node_keys[2], origin, 2, 0, header),
        sign_precommit(node_keys[3], origin, 3, 1, None),
    ]
    evidence = make_evidence(prevotes[1], sign_prevote(node_keys[1], origin, 3, 0, None))
    return Corpus(
        network=network,
        events=tuple(e.encode() for e in events),
        event_json=tuple(json.dumps(event_to_json(e)).encode() for e in events),
        headers=tuple(c.header.encode() for c in certified),
        blocks=tuple(codec.encode(c) for c in certified),
        notes=tuple(c.certificate.encode() for c in certified),
        bundles=tuple(b.dumps().encode() for b in bundles),
        tlog_proofs=tuple(from_bundle(b).format().encode() for b in bundles if b.events),
        messages=tuple(encode_message(m) for m in messages),
        evidence=(codec.encode(evidence),),
        handshakes=(
            codec.encode(Hello(origin, genesis_hash, "m1.test", bytes(range(32)))),
            codec.encode(Proof(bytes(64))),
        ),
        genesis=(genesis_json(network.genesis).encode(),),
        configs=(CONFIG.encode(),),
        json_bodies=(
            json.dumps({"event": {"encoded": base64.b64encode(events[0].encode()).decode()}}).encode(),
            json.dumps({"events": [event_to_json(e) for e in events[:2]]}).encode(),
            json.dumps({"event": event_to_json(events[3])}).encode(),
        ),
        msgpack_bodies=(
            msgpack.packb(events[0].encode()),
            msgpack.packb([e.encode() for e in events[:3]]),
        ),
    )
