from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from credledger.ledger import merkle
from credledger.ledger.block import Block, CertifiedBlock
from credledger.ledger.errors import DecodeError, InvalidBlock, InvalidEvent, Unauthorized
from credledger.ledger.events import Event, Revoke, Suspend
from credledger.ledger.storage import store as store_module
from credledger.ledger.storage.store import Store
from credledger.node import application
from credledger.node.application import Committed, LedgerApplication
from credledger.node.mempool import DuplicateEvent, Mempool
from tests.blocks import certify
from tests.factories import T0, Network, digest, issue, make_network, signed


@pytest.fixture
def network() -> Network:
    return make_network(4)


@pytest.fixture
def chain(tmp_path: Path, network: Network) -> Iterator[LedgerApplication]:
    store = Store(tmp_path / "ledger")
    clock = [T0 / 1000 + 5]
    c = LedgerApplication(
        store, network.genesis, mempool=Mempool(max_events=100, max_bytes=1 << 20), clock=lambda: clock[0]
    )
    yield c
    store.close()


def decide(chain: LedgerApplication, network: Network) -> CertifiedBlock:
    block = chain.build_block(chain.height + 1, 0, chain.now_ms(), network.ids[0])
    chain.validate_block(block)
    certified = CertifiedBlock(block, certify(network, block))
    chain.commit(certified)
    return certified


def test_revoke_of_a_pending_issue_is_admitted_and_both_commit_in_order(
    chain: LedgerApplication, network: Network
) -> None:
    m0 = network["m0.test"]
    chain.admit(issue(m0, digest("a"), time_ms=T0 + 1000))
    chain.admit(signed(Revoke(digest("a"), 0), m0.issuer, time_ms=T0 + 1001))
    assert len(chain.mempool) == 2
    seen: list[Committed] = []
    chain.on_commit(seen.append)
    certified = decide(chain, network)
    assert certified.header.event_count == 2
    assert len(chain.mempool) == 0
    assert seen[0].height == 1 and seen[0].first_index == 0 and len(seen[0].event_ids) == 2


def test_refusals_change_nothing(chain: LedgerApplication, network: Network) -> None:
    m0, m1 = network["m0.test"], network["m1.test"]
    chain.admit(issue(m0, digest("a"), time_ms=T0 + 1000))
    with pytest.raises(Unauthorized):
        chain.admit(signed(Revoke(digest("a"), 0), m1.issuer, time_ms=T0 + 1000))
    with pytest.raises(InvalidEvent, match="not-issued"):
        chain.admit(signed(Revoke(digest("zz"), 0), m0.issuer, time_ms=T0 + 1000))
    with pytest.raises(DuplicateEvent):
        chain.admit(issue(m0, digest("a"), time_ms=T0 + 1000))
    with pytest.raises(DecodeError):
        chain.admit(b"\x93garbage")
    assert len(chain.mempool) == 1


def test_committed_event_cannot_be_admitted_again(chain: LedgerApplication, network: Network) -> None:
    event = issue(network["m0.test"], digest("a"), time_ms=T0 + 1000)
    chain.admit(event)
    decide(chain, network)
    with pytest.raises(InvalidEvent, match="replayed-event"):
        chain.admit(event)


def test_pending_events_invalidated_by_a_peer_block_are_dropped(tmp_path: Path, network: Network) -> None:
    # Node a commits a revoke while node b holds a suspend of the same credential: b must drop it.
    m0 = network["m0.test"]

    def clock() -> float:
        return T0 / 1000 + 5

    a = LedgerApplication(
        Store(tmp_path / "a"), network.genesis, mempool=Mempool(max_events=10, max_bytes=1 << 20), clock=clock
    )
    b = LedgerApplication(
        Store(tmp_path / "b"), network.genesis, mempool=Mempool(max_events=10, max_bytes=1 << 20), clock=clock
    )
    a.admit(issue(m0, digest("a"), time_ms=T0 + 1000))
    b.commit(decide(a, network))
    a.admit(signed(Revoke(digest("a"), 0), m0.issuer, time_ms=T0 + 1001))
    b.admit(signed(Suspend(digest("a"), 0), m0.issuer, time_ms=T0 + 1002))
    assert len(b.mempool) == 1
    b.commit(decide(a, network))
    assert len(b.mempool) == 0, "the suspend of a revoked credential must be dropped"
    assert b.height == a.height == 2


def test_block_with_wrong_roots_or_future_time_is_invalid(chain: LedgerApplication, network: Network) -> None:
    chain.admit(issue(network["m0.test"], digest("a"), time_ms=T0 + 1000))
    block = chain.build_block(1, 0, chain.now_ms(), network.ids[0])
    wrong = Block(dataclasses.replace(block.header, state_root=b"\x00" * 32), block.events)
    with pytest.raises(InvalidBlock, match="roots"):
        chain.validate_block(wrong)
    future = Block(dataclasses.replace(block.header, time_ms=chain.now_ms() + 10**9), block.events)
    with pytest.raises(InvalidBlock, match="future"):
        chain.validate_block(future)
    chain.validate_block(block)


def test_after_a_commit_only_pending_events_the_block_touched_are_re_checked_and_their_dependants_follow(
    tmp_path: Path, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    m0, m1 = network["m0.test"], network["m1.test"]

    def clock() -> float:
        return T0 / 1000 + 5

    a = LedgerApplication(
        Store(tmp_path / "a"), network.genesis, mempool=Mempool(max_events=10, max_bytes=1 << 20), clock=clock
    )
    b = LedgerApplication(
        Store(tmp_path / "b"), network.genesis, mempool=Mempool(max_events=10, max_bytes=1 << 20), clock=clock
    )
    # b holds an issue of "y" and a revoke that needs it, between two unrelated issues; a commits m1's issue of "y".
    x, y, z = (issue(m0, digest(name), time_ms=T0 + 1000) for name in "xyz")
    revoke_y = signed(Revoke(digest("y"), 0), m0.issuer, time_ms=T0 + 1001)
    assert all(type(o).__name__ == "Admitted" for o in b.admit_batch([x, y, revoke_y, z]))
    a.admit(issue(m1, digest("y"), time_ms=T0 + 1000))
    checked: list[list[bytes]] = []
    real = application.select_events

    def spy(state: object, candidates: list[Event], **kwargs: Any) -> object:
        checked.append([e.id for e in candidates])
        return real(state, candidates, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(application, "select_events", spy)
    b.commit(decide(a, network))
    assert [p.event_id for p in b.mempool.take(10, 1 << 20)] == [x.id, z.id]
    assert checked == [[y.id], [revoke_y.id]]  # x and z met nothing the block or the dropped issue wrote
    # What stays pending still counts for admission: x cannot be issued twice.
    with pytest.raises(DuplicateEvent):
        b.admit(x)
    with pytest.raises(InvalidEvent, match="already"):
        b.admit(issue(m0, digest("x"), time_ms=T0 + 1002))


def test_a_block_built_here_meets_the_rules_once_between_building_and_committing(
    chain: LedgerApplication, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    m0 = network["m0.test"]
    chain.admit_batch([issue(m0, digest(name), time_ms=T0 + 1000) for name in "abc"])
    runs: list[int] = []
    real = store_module.apply_block

    def counting(*args: Any, **kwargs: Any) -> Any:
        runs.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module, "apply_block", counting)
    decide(chain, network)  # build, validate, commit
    assert runs == []
    assert chain.height == 1
    with chain.store.snapshot() as snap:
        assert snap.header(1).event_count == 3
        assert snap.event_index(issue(m0, digest("c"), time_ms=T0 + 1000).id) == 2


def test_a_forged_or_altered_block_is_still_refused_at_commit(
    tmp_path: Path, chain: LedgerApplication, network: Network
) -> None:
    m0 = network["m0.test"]
    honest = [issue(m0, digest(name), time_ms=T0 + 1000) for name in "ab"]
    chain.admit_batch(honest)
    block = chain.build_block(1, 0, chain.now_ms(), network.ids[0])  # its rules' outcome is remembered
    chain.validate_block(block)

    # The same events and context under other roots: the remembered outcome gives the true roots, which differ.
    altered = Block(dataclasses.replace(block.header, state_root=bytes(32)), block.events)
    with pytest.raises(InvalidBlock, match="header commits to"):
        chain.commit(CertifiedBlock(altered, certify(network, altered)))

    # A forged signature in a block whose roots are right for its bytes (a peer store built it trusting the
    # signature): other bytes, so the rules run again and refuse it.
    forged = dataclasses.replace(honest[1], signatures=honest[0].signatures)
    peer = Store(tmp_path / "forger")
    peer.initialize(network.genesis)
    bad, _ = peer.build_block(
        [honest[0], forged],
        proposer=network.ids[0],
        round=0,
        time_ms=block.header.time_ms,
        verified={merkle.leaf_hash(e.encode()) for e in (honest[0], forged)},
    )
    peer.close()
    assert bad.header.event_count == 2
    with pytest.raises(InvalidBlock, match="bad-signature"):
        chain.commit(CertifiedBlock(bad, certify(network, bad)))
    assert chain.height == 0

    chain.commit(CertifiedBlock(block, certify(network, block)))
    assert chain.height == 1
