"""The consensus driver on a real chain: certified blocks from peers, gossiped events, and halting when the node's
own step fails (rather than going on with a machine that no longer matches the store)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from credledger.consensus.errors import BadCertificate
from credledger.ledger import codec
from credledger.ledger.block import CertifiedBlock
from credledger.ledger.errors import DecodeError, InvalidEvent, StorageError, Unauthorized
from credledger.ledger.events import Event
from credledger.ledger.genesis import Params
from credledger.ledger.storage.store import Store
from credledger.node import driver as driver_module
from credledger.node.application import LedgerApplication
from credledger.node.driver import ADMIT_SLICE, Driver, NodeHalted
from credledger.node.mempool import Mempool
from credledger.node.peers import KIND_CONSENSUS, KIND_EVENT, KIND_EVENTS, MAX_RELAY_BYTES, EventBatch, relay_batches
from tests.blocks import certify
from tests.factories import T0, Network, digest, issue, make_network, signed

NOW = T0 / 1000 + 5


@dataclass
class Rig:
    network: Network
    chain: LedgerApplication
    peer: LedgerApplication  # another node's chain, which builds the blocks the driver is handed
    driver: Driver

    def certified(self, signers: list[str] | None = None) -> CertifiedBlock:
        """The next block, built by the proposer of round 0, certified by `signers` (every validator)."""
        height = self.chain.height + 1
        block = self.peer.build_block(height, 0, int(NOW * 1000), self.driver.machine.proposer(0))
        return CertifiedBlock(block, certify(self.network, block, signers))

    def event(self, name: str) -> Event:
        return issue(self.network["m1.test"], digest(name), time_ms=int(NOW * 1000))


def chain_at(path: Path, network: Network) -> LedgerApplication:
    return LedgerApplication(
        Store(path), network.genesis, mempool=Mempool(max_events=100, max_bytes=1 << 20), clock=lambda: NOW
    )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    network = make_network(4, params=Params(heartbeat_ms=100))
    chain, peer = chain_at(tmp_path / "node", network), chain_at(tmp_path / "peer", network)
    driver = Driver(chain, signer=None, clock=lambda: NOW)
    driver.start()
    try:
        yield Rig(network, chain, peer, driver)
    finally:
        driver.stop()
        chain.store.close()
        peer.store.close()


def follow(rig: Rig, certified: CertifiedBlock) -> None:
    """What the peer's own node did: commit the block it proposed."""
    rig.peer.commit(certified)


async def test_a_certified_block_from_a_peer_commits_and_the_next_height_starts(rig: Rig) -> None:
    certified = rig.certified()
    rig.driver.apply_certified(certified)
    assert rig.chain.height == 1
    assert rig.driver.machine.height == 2
    with rig.chain.store.snapshot() as snap:
        assert snap.certificate(1) == certified.certificate


async def test_a_block_without_a_quorum_is_the_peers_fault_and_changes_nothing(rig: Rig) -> None:
    thin = rig.certified(["m0.test", "m1.test"])
    with pytest.raises(BadCertificate, match="2 of 4"):
        rig.driver.apply_certified(thin)
    assert rig.chain.height == 0
    watching = asyncio.ensure_future(rig.driver.watch())
    await asyncio.sleep(0.05)
    assert not watching.done()  # still running
    watching.cancel()


async def test_a_commit_that_fails_halts_the_driver(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise StorageError("mdb_put: MDB_MAP_FULL: Environment mapsize limit reached")

    monkeypatch.setattr(rig.chain, "commit", full_disk)
    certified = rig.certified()
    rig.driver.apply_certified(certified)  # the block was fine: nothing is raised at the peer that sent it
    with pytest.raises(NodeHalted, match="executing Decide failed: StorageError: mdb_put: MDB_MAP_FULL"):
        await asyncio.wait_for(rig.driver.watch(), 5)
    assert rig.chain.height == 0
    # Halted: nothing more reaches the machine.
    rig.driver.apply_certified(certified)
    rig.driver.receive("m1.test", KIND_CONSENSUS, b"anything")
    assert rig.driver.machine.height == 1


async def test_a_machine_that_fails_in_a_timeout_halts_the_driver(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(rig.driver.machine, "on_timeout", broken)
    # The heartbeat (100 ms) fires on the event loop, where nobody would see the error but the log.
    with pytest.raises(NodeHalted, match="the consensus machine failed: RuntimeError: a bug"):
        await asyncio.wait_for(rig.driver.watch(), 5)


async def test_gossiped_events_count_against_the_peer_only_when_no_honest_peer_sends_them(rig: Rig) -> None:
    event = rig.event("gossiped")
    rig.driver.receive("m1.test", KIND_EVENT, event.encode())
    assert event.id in rig.chain.mempool
    # Already pending, or committed meanwhile: another peer passed it on first, or the block beat the gossip.
    rig.driver.receive("m2.test", KIND_EVENT, event.encode())
    committed = rig.event("committed")
    rig.peer.admit(committed)
    certified = rig.certified()
    follow(rig, certified)
    rig.driver.apply_certified(certified)
    rig.driver.receive("m2.test", KIND_EVENT, committed.encode())
    # Another issue of a credential committed here: the peer checked it against its own, older view.
    conflicting = issue(rig.network["m1.test"], digest("committed"), time_ms=int(NOW * 1000) + 1)
    rig.driver.receive("m3.test", KIND_EVENT, conflicting.encode())
    assert [p.event_id for p in rig.chain.mempool.take(10, 1 << 20)] == [event.id]

    # What no honest peer sends: a forged signature, another chain's event, bytes that are no event.
    forged = dataclasses.replace(
        rig.event("forged"), signatures=(dataclasses.replace(event.signatures[0], sig=bytes(64)),)
    )
    with pytest.raises(Unauthorized, match="bad-signature"):
        rig.driver.receive("m3.test", KIND_EVENT, forged.encode())
    elsewhere = signed(event.payload, rig.network["m1.test"].issuer, time_ms=event.time_ms, origin="other/chain")
    with pytest.raises(InvalidEvent, match="wrong-origin"):
        rig.driver.receive("m3.test", KIND_EVENT, elsewhere.encode())
    with pytest.raises(DecodeError):
        rig.driver.receive("m3.test", KIND_EVENT, b"\x93\x01\x02")
    assert [p.event_id for p in rig.chain.mempool.take(10, 1 << 20)] == [event.id]


async def test_admission_only_signals_and_one_wake_up_commits_a_batch_in_as_few_blocks_as_the_limit_allows(
    tmp_path: Path,
) -> None:
    """Admitting builds, stores and votes on nothing: the driver wakes once on the next turn of the loop, and a
    batch of N events becomes ceil(N / max_block_events) blocks on a network of one validator."""
    network = make_network(1, params=Params(heartbeat_ms=60_000, max_block_events=4))
    chain = chain_at(tmp_path / "solo", network)
    driver = Driver(chain, signer=network["m0.test"].node, clock=lambda: NOW)
    driver.start()
    try:
        events = [issue(network["m0.test"], digest(f"batch {n}"), time_ms=int(NOW * 1000)) for n in range(10)]
        outcomes = chain.admit_batch(events)
        assert [type(o).__name__ for o in outcomes] == ["Admitted"] * 10
        assert chain.height == 0 and len(chain.mempool) == 10  # nothing committed inside the admission
        await until_height(chain, 3)
        with chain.store.snapshot() as snap:
            counts = [snap.header(h).event_count for h in range(1, snap.height + 1)]
        assert counts == [4, 4, 2]
        assert len(chain.mempool) == 0
    finally:
        driver.stop()
        chain.store.close()


async def test_a_relayed_batch_is_admitted_in_order_and_only_forgeries_count_against_the_peer(rig: Rig) -> None:
    first, second = rig.event("relayed 1"), rig.event("relayed 2")
    batch = EventBatch((first.encode(), second.encode()))
    rig.driver.receive("m1.test", KIND_EVENTS, codec.encode(batch))
    await admitted_all(rig)
    assert first.id in rig.chain.mempool and second.id in rig.chain.mempool
    # Already pending here: dropped quietly.
    rig.driver.receive("m2.test", KIND_EVENTS, codec.encode(batch))
    await admitted_all(rig)
    assert refusals(rig, Unauthorized.code) == 0
    forged = dataclasses.replace(rig.event("forged in a batch"), signatures=first.signatures)
    honest = rig.event("next to a forgery")
    rig.driver.receive("m3.test", KIND_EVENTS, codec.encode(EventBatch((forged.encode(), honest.encode()))))
    await admitted_all(rig)
    assert honest.id in rig.chain.mempool and forged.id not in rig.chain.mempool
    assert refusals(rig, Unauthorized.code) == 1  # counted against the peer, as the peer layer counts a frame
    with pytest.raises(DecodeError):
        rig.driver.receive("m3.test", KIND_EVENTS, b"\x91\x90")  # an empty batch


async def test_relayed_events_are_admitted_a_slice_per_turn_of_the_loop(rig: Rig) -> None:
    """A backlog of relayed events never holds the event loop (and the consensus messages behind it) for more
    than one slice; the events are admitted in the order they were relayed."""
    events = [rig.event(f"slice {n}") for n in range(ADMIT_SLICE + 20)]
    rig.driver.receive("m1.test", KIND_EVENTS, codec.encode(EventBatch(tuple(e.encode() for e in events[:50]))))
    rig.driver.receive("m2.test", KIND_EVENTS, codec.encode(EventBatch(tuple(e.encode() for e in events[50:]))))
    assert len(rig.chain.mempool) == 0  # nothing admitted inside the frame's handling
    await asyncio.sleep(0)
    assert len(rig.chain.mempool) == ADMIT_SLICE
    await admitted_all(rig)
    assert [p.event_id for p in rig.chain.mempool.take(1000, 1 << 30)] == [e.id for e in events]


async def test_a_relayed_batch_beyond_the_waiting_bound_is_admitted_at_once_after_those_waiting(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "MAX_WAITING_EVENTS", 3)
    events = [rig.event(f"bound {n}") for n in range(4)]
    rig.driver.receive("m1.test", KIND_EVENTS, codec.encode(EventBatch(tuple(e.encode() for e in events[:2]))))
    assert len(rig.chain.mempool) == 0
    forged = dataclasses.replace(rig.event("forged beyond the bound"), signatures=events[0].signatures)
    relayed = EventBatch((events[2].encode(), forged.encode(), events[3].encode()))
    with pytest.raises(InvalidEvent, match="bad-signature"):  # admitted now: the peer layer counts it
        rig.driver.receive("m2.test", KIND_EVENTS, codec.encode(relayed))
    assert [p.event_id for p in rig.chain.mempool.take(10, 1 << 20)] == [e.id for e in events]


async def admitted_all(rig: Rig) -> None:
    """Turn the event loop until the driver has admitted every relayed event waiting."""
    async with asyncio.timeout(5):
        while rig.driver.waiting_events:
            await asyncio.sleep(0)


def refusals(rig: Rig, reason: str) -> float:
    value = rig.chain.metrics.registry.get_sample_value("credledger_peer_errors_total", {"reason": reason})
    return value or 0.0


def test_relay_batches_keep_order_and_stay_within_the_frame_bound() -> None:
    events = [bytes([n % 251]) * 100_000 for n in range(25)]
    batches = relay_batches(events)
    assert [e for b in batches for e in b.events] == events
    assert all(sum(map(len, b.events)) <= MAX_RELAY_BYTES for b in batches)
    assert len(batches) == 3
    assert relay_batches([]) == []


async def until_height(chain: LedgerApplication, height: int) -> None:
    async with asyncio.timeout(10):
        while chain.height < height:
            await asyncio.sleep(0.01)
