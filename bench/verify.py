"""Bundle verification benchmark: median CPU time to check one `credledger-proof/v1` bundle, 4 validators.

A chain of `--events` issue events (and some revocations) is committed to a temporary store; the bundle of a
revoked credential -- the most work: two events, two inclusion proofs, three state proofs -- is served as JSON,
and each round parses it and runs `ledger.bundle.verify_bundle`, timed with `time.process_time` (CPU, not wall).
Reported beside it, in the same run: the median CPU time of the 5 Ed25519 verifications a bundle needs (4
certificate signatures, 1 issue signature), the floor any verifier pays.

Target (issue): median <= 2 ms. Run ``python -m bench verify`` or ``python -m bench verify --rounds 2000``.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from credledger.ledger import domains
from credledger.ledger.block import sign_checkpoint
from credledger.ledger.bundle import Bundle, verify_bundle
from credledger.ledger.events import Event, Issue, MemberAdd, Revoke, UnsignedEvent, sign_event
from credledger.ledger.genesis import Genesis, Params
from credledger.ledger.keys import SigningKey, verify_signature
from credledger.ledger.note import SignedNote
from credledger.ledger.storage.bundles import build_bundle
from credledger.ledger.storage.store import Store

ORIGIN = "credledger.bench/verify"
T0 = 1_767_225_600_000
MEMBERS = ("a.bench", "b.bench", "c.bench", "d.bench")
TARGET_MS = 2.0


def _key(member: str, role: str) -> SigningKey:
    return SigningKey(member, hashlib.sha256(f"bench/{member}/{role}".encode()).digest())


def _chain(path: Path, events: int, block: int) -> tuple[Genesis, str]:
    """Commit `events` issues (every 100th revoked in the next block); return the genesis and a bundle's JSON."""
    members = [MemberAdd(m, m.upper(), 1, _key(m, "node").public.raw, (_key(m, "issuer").public.raw,)) for m in MEMBERS]
    genesis = Genesis.of(ORIGIN, T0, members, Params(max_block_events=10_000))
    store = Store(path)
    store.initialize(genesis)
    node_keys = [_key(m, "node") for m in MEMBERS]
    issuer = _key(MEMBERS[0], "issuer")
    digests = [hashlib.sha256(f"credential/{i}".encode()).digest() for i in range(events)]
    batches: list[list[Event]] = []
    for start in range(0, events, block):
        when = T0 + (len(batches) + 1) * 1000
        batches.append(
            [
                sign_event(UnsignedEvent(ORIGIN, when, Issue(d, MEMBERS[0], None, ())), issuer)
                for d in digests[start : start + block]
            ]
        )
    when = T0 + (len(batches) + 1) * 1000
    batches.append([sign_event(UnsignedEvent(ORIGIN, when, Revoke(d, 4)), issuer) for d in digests[::100]])
    for height, batch in enumerate(batches, start=1):
        built, selection = store.build_block(batch, proposer=MEMBERS[0], round=0, time_ms=T0 + height * 1000)
        assert not selection.refused
        note = SignedNote(
            built.header.checkpoint(0).body(), tuple(sign_checkpoint(built.header, 0, k) for k in node_keys)
        )
        store.commit_block(built, note.format())
    with store.snapshot() as snap:
        bundle = build_bundle(snap, digests[len(digests) // 2 // 100 * 100], genesis.hash(), ORIGIN)
    store.close()
    return genesis, bundle.dumps()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events in the chain the bundle proves against")
    parser.add_argument("--rounds", type=int, default=1_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        genesis, text = _chain(Path(tmp) / "ledger", args.events, 2_000)
    verdict = verify_bundle(Bundle.from_json(text), genesis)
    assert verdict.status == "revoked", verdict.status
    times = []
    for _ in range(args.rounds):
        started = time.process_time()
        verify_bundle(Bundle.from_json(text), genesis)
        times.append(time.process_time() - started)
    key = _key(MEMBERS[0], "issuer")
    message = domains.EVENT + b"x" * 120
    signature = key.sign(b"", message)
    floor = []
    for _ in range(args.rounds):
        started = time.process_time()
        for _ in range(5):
            verify_signature(key.public.raw, message, signature)
        floor.append(time.process_time() - started)
    median = statistics.median(times) * 1000
    p90 = statistics.quantiles(times, n=10)[-1] * 1000
    print(
        f"credledger verify: one revoked credential's bundle ({len(text):,} bytes of JSON), 4 validators, "
        f"log of {args.events + args.events // 100:,} events, {args.rounds:,} rounds"
    )
    print(f"  parse + verify_bundle, CPU ms: median {median:8.3f}   p90 {p90:8.3f}   (target <= {TARGET_MS} ms)")
    print(f"  of which the floor, 5 Ed25519 verifications, median   {statistics.median(floor) * 1000:8.3f} ms")
    print(f"  {'MEETS' if median <= TARGET_MS else 'MISSES'} the target")
    return 0 if median <= TARGET_MS else 1
