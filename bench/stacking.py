"""Stacking and records: award rule checks per second, and the size and verify time of learners' records.

Part 1 -- rule checks: an award whose rule (a required achievement, a credit minimum at a level, and 2 of 3
optional achievements) is checked over 10 and 100 components by `ledger.rules.check_event`, the node's admission
check (state reads, recognition lookup, rule evaluation; signatures already verified, as after admission). Beside
it, in the same run, the same check of a plain issue stacking the same components (existence and revocation only):
the ratio is what the rule costs.

Part 2 -- records: a chain of 1,000 awarded credentials in a temporary store (4 validators); records of 10, 100 and
1,000 of them are built from one snapshot, and each round parses one and runs `ledger.record.verify_record`,
timed with `time.process_time`. Beside it: verifying the same credentials as separate `credledger-proof/v1`
bundles, one `verify_bundle` each. Targets (issue): a record of 100 credentials verifies in under 100 ms.

Part 3 -- serving records: CPU per credential of `record_json` (what `POST /v1/record` and so every bulk issuance's
receipts cost the node), beside building the same record's proof objects and encoding them with `json.dumps`
(the same bytes, checked).

Run ``python -m bench stacking`` (``--rounds`` for more).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from credledger.ledger import jcs
from credledger.ledger.block import sign_checkpoint
from credledger.ledger.bundle import Bundle, verify_bundle
from credledger.ledger.events import AchievementPublish, Event, Issue, MemberAdd, Payload, UnsignedEvent, sign_event
from credledger.ledger.genesis import Genesis, Params
from credledger.ledger.keys import SigningKey
from credledger.ledger.merkle import leaf_hash
from credledger.ledger.note import SignedNote
from credledger.ledger.record import Record, verify_record
from credledger.ledger.rules import apply_block, check_event
from credledger.ledger.storage.bundles import build_bundle, build_record, record_json
from credledger.ledger.storage.store import Snapshot, Store

ORIGIN = "credledger.bench/stacking"
T0 = 1_767_225_600_000
MEMBERS = ("a.bench", "b.bench", "c.bench", "d.bench")
PARAMS = Params(max_block_events=10_000)
RECORD_TARGET_MS = 100.0


def _key(member: str, role: str) -> SigningKey:
    return SigningKey(member, hashlib.sha256(f"bench/{member}/{role}".encode()).digest())


def _genesis() -> Genesis:
    members = [MemberAdd(m, m.upper(), 1, _key(m, "node").public.raw, (_key(m, "issuer").public.raw,)) for m in MEMBERS]
    return Genesis.of(ORIGIN, T0, members, PARAMS)


def _definition(name: str, **extra: Any) -> bytes:
    value = {"id": name, "name": name, "criteria": {"narrative": "pass"}, "achievementType": "MicroCredential", **extra}
    return jcs.canonical_json(json.dumps(value))


def _sign(payload: Payload, when: int) -> Event:
    return sign_event(UnsignedEvent(ORIGIN, when, payload), _key(MEMBERS[0], "issuer"))


def _digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def _blocks(components: int) -> list[list[Event]]:
    """Publish micro-credentials and an award with a rule, and issue `components` awarded micro-credentials."""
    micro = _definition("micro", creditsAvailable=5, creditSystem="ECTS", level={"framework": "EQF", "value": 6})
    rule = {
        "all": [
            {"achievement": {"id": "core"}},
            {"credits": {"min": 5 * (components - 3), "system": "ECTS", "level": {"framework": "EQF", "min": 6}}},
            {"n_of": {"n": 2, "of": [{"achievement": {"id": f"opt{i}"}} for i in range(3)]}},
        ]
    }
    first = [_sign(AchievementPublish(MEMBERS[0], d), T0) for d in (micro, _definition("core"))]
    first += [_sign(AchievementPublish(MEMBERS[0], _definition(f"opt{i}")), T0) for i in range(3)]
    second = [
        _sign(
            AchievementPublish(MEMBERS[0], _definition("award", achievementType="Certificate", stackingRule=rule)), T0
        )
    ]
    names = ["core", "opt0", "opt1"] + ["micro"] * (components - 3)
    issues = [
        _sign(Issue(_digest(f"c{i}"), MEMBERS[0], None, (), achievement=name, achievement_version=1), T0)
        for i, name in enumerate(names)
    ]
    return [first, second + issues]


def _record_through_objects(snap: Snapshot, digests: Sequence[bytes], genesis_hash: bytes) -> str:
    return json.dumps(build_record(snap, digests, genesis_hash, ORIGIN).to_json(), separators=(",", ":"))


def _median_ms(check: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.process_time()
        check()
        times.append(time.process_time() - started)
    return statistics.median(times) * 1000


def rule_checks(components: int, rounds: int) -> tuple[float, float]:
    """Median ms of checking an award over `components`, and of a plain issue stacking the same components."""
    genesis = _genesis()
    state = genesis.initial_state()
    index = 0
    for height, events in enumerate(_blocks(components), start=1):
        effects = apply_block(
            state, events, origin=ORIGIN, height=height, block_time_ms=T0 + height, first_index=index,
            params=PARAMS, committed=frozenset(),
        )  # fmt: skip
        state.update({k: v for k, v in effects.changes.items() if v is not None})
        index += len(events)
    parts = tuple(_digest(f"c{i}") for i in range(components))
    award = _sign(Issue(_digest("award"), MEMBERS[0], None, parts, achievement="award", achievement_version=1), T0)
    plain = _sign(Issue(_digest("plain"), MEMBERS[0], None, parts), T0)

    def check(event: Event) -> Callable[[], None]:
        verified = frozenset({leaf_hash(event.encode())})
        return lambda: check_event(
            state,
            event,
            origin=ORIGIN,
            height=3,
            now_ms=T0 + 3,
            params=PARAMS,
            committed=frozenset(),
            verified=verified,
        )

    check(award)()  # the rule is met: a refusal would raise here
    return _median_ms(check(award), rounds), _median_ms(check(plain), rounds)


def _store(path: Path, count: int) -> Store:
    genesis = _genesis()
    store = Store(path)
    store.initialize(genesis)
    node_keys = [_key(m, "node") for m in MEMBERS]
    micro = _definition("micro", creditsAvailable=5, creditSystem="ECTS", level={"framework": "EQF", "value": 6})
    batches = [
        [_sign(AchievementPublish(MEMBERS[0], micro), T0 + 1000)],
        [
            _sign(Issue(_digest(f"r{i}"), MEMBERS[0], None, (), achievement="micro", achievement_version=1), T0 + 2000)
            for i in range(count)
        ],
    ]
    for height, batch in enumerate(batches, start=1):
        built, selection = store.build_block(batch, proposer=MEMBERS[0], round=0, time_ms=T0 + height * 1000)
        assert not selection.refused, selection.refused[:1]
        note = SignedNote(
            built.header.checkpoint(0).body(), tuple(sign_checkpoint(built.header, 0, k) for k in node_keys)
        )
        store.commit_block(built, note.format())
    return store


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench stacking", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    print("award rule checks (check_event, signatures already verified), median of", args.rounds, "rounds")
    for components in (10, 100):
        award_ms, plain_ms = rule_checks(components, args.rounds)
        print(
            f"  {components:4} components: {1000 / award_ms:10,.0f} checks/s ({award_ms:.3f} ms); "
            f"plain stacked issue {plain_ms:.3f} ms; rule costs x{award_ms / plain_ms:.2f}"
        )
    genesis = _genesis()
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(Path(tmp) / "ledger", 1000)
        print("records (parse + verify_record, CPU), vs. one bundle per credential (parse + verify_bundle)")
        for count in (10, 100, 1000):
            digests = [_digest(f"r{i}") for i in range(count)]
            with store.snapshot() as snap:
                text = build_record(snap, digests, genesis.hash(), ORIGIN).dumps()
                bundles = [build_bundle(snap, d, genesis.hash(), ORIGIN).dumps() for d in digests]
            rounds = max(9, args.rounds // count)
            verdict = verify_record(Record.from_json(text), genesis)
            assert all(r.verdict.status == "valid" for r in verdict.results)
            record_ms = _median_ms(lambda t=text: verify_record(Record.from_json(t), genesis), rounds)
            separate_ms = _median_ms(lambda b=bundles: [verify_bundle(Bundle.from_json(x), genesis) for x in b], rounds)
            size = len(text.encode())
            print(
                f"  {count:5} credentials: {size:>11,} bytes ({size // count:,} per credential); "
                f"verify {record_ms:8.1f} ms, separate bundles {separate_ms:8.1f} ms ({separate_ms / record_ms:.2f}x)"
            )
            if count == 100 and record_ms > RECORD_TARGET_MS:
                status = 1
        print("records served (the node's POST /v1/record: one snapshot, built and written as JSON text), CPU")
        for count in (100, 1000):
            digests = [_digest(f"r{i}") for i in range(count)]
            with store.snapshot() as snap:
                served = partial(record_json, snap, digests, genesis.hash(), ORIGIN)
                objects = partial(_record_through_objects, snap, digests, genesis.hash())
                assert served() == objects()
                rounds = max(5, args.rounds // count)
                text_ms, objects_ms = _median_ms(served, rounds), _median_ms(objects, rounds)
            print(
                f"  {count:5} credentials: {1000 * text_ms / count:6.1f} us a credential; through the proof objects "
                f"and json.dumps {1000 * objects_ms / count:6.1f} us ({objects_ms / text_ms:.2f}x)"
            )
        store.close()
    print(f"  100 credentials {'MEET' if status == 0 else 'MISS'} the target of {RECORD_TARGET_MS:.0f} ms")
    return status
