"""The safety record on disk (`node.safetystore`): the valid block is written once per change, under its own key,
in the same durable transaction as the record naming it; a restart loads exactly the record that was saved."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from credledger.consensus.safety import SafetyRecord
from credledger.consensus.timeouts import TimeoutKind
from credledger.ledger import codec
from credledger.ledger.errors import StorageError
from credledger.ledger.genesis import Params
from credledger.ledger.storage.store import Store
from credledger.ledger.votes import Prevote, Proposal
from credledger.node.application import LedgerApplication
from credledger.node.driver import Driver
from credledger.node.mempool import Mempool
from credledger.node.safetystore import SAFETY_BLOCK_KEY, SAFETY_KEY, SafetyStore
from tests.factories import T0, digest, issue, make_network
from tests.sim.harness import Harness, decisions, own, records


class CountingStore(Store):
    """The real store, noting each consensus transaction: the keys it put and the keys it deleted."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[tuple[list[bytes], list[bytes]]] = []

    def write_consensus(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes] = ()) -> None:
        deletes = list(deletes)
        self.writes.append((sorted(puts), deletes))
        super().write_consensus(puts, deletes)

    def block_puts(self) -> list[int]:
        """The indexes of the transactions that wrote the valid block."""
        return [i for i, (puts, _) in enumerate(self.writes) if SAFETY_BLOCK_KEY in puts]


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path / "machine")


def height_one(h: Harness) -> list[SafetyRecord]:
    """The records of a height where the machine proposes B0, locks on it (valid B0, round 0), prevotes nil for a
    fresh block in round 1, then moves its lock and valid value to that block on a polka (valid B1, round 1)."""
    b0 = own(h.start(), Proposal).block
    h.feed(*h.prevotes(0, b0.hash(), *h.others))
    h.feed(*h.precommits(0, None, *h.others))
    h.expire(TimeoutKind.PRECOMMIT)
    b1 = h.block(1)
    h.feed(h.proposal(1, b1))
    h.feed(*h.prevotes(1, b1.hash(), *h.others))
    saved = records(h.actions)
    assert [(r.slot, r.valid_round) for r in saved] == [
        ((1, 0, 0), -1),
        ((1, 0, 1), -1),
        ((1, 0, 2), 0),
        ((1, 1, 1), 0),
        ((1, 1, 2), 1),
    ]
    assert [r.valid_block for r in saved[2:]] == [b0, b0, b1]
    return saved


def height_two(h: Harness) -> SafetyRecord:
    """Decide the round-1 block, start height 2, and return its first record (no valid value yet)."""
    b1 = records(h.actions)[-1].valid_block
    assert b1 is not None
    (decide,) = decisions(h.feed(*h.precommits(1, b1, "m1.test", "m2.test")))
    h.app.commit(decide.certified)
    first = len(h.actions)
    h.start()
    if not records(h.actions[first:]):
        h.feed(h.proposal(0, h.block(0)))
    record = records(h.actions[first:])[0]
    assert (record.height, record.valid_block) == (2, None)
    return record


def reloaded(path: Path) -> SafetyRecord | None:
    """What a restarted node loads from the store at `path`."""
    store = Store(path)
    try:
        return SafetyStore(store).load()
    finally:
        store.close()


def stored_block(path: Path) -> bytes | None:
    store = Store(path)
    try:
        return store.get_consensus(SAFETY_BLOCK_KEY)
    finally:
        store.close()


def save_all(path: Path, saved: list[SafetyRecord]) -> CountingStore:
    store = CountingStore(path)
    guard = SafetyStore(store)
    for record in saved:
        guard.save(record)
    store.close()
    return store


def test_a_record_without_a_valid_block_survives_a_restart(h: Harness, tmp_path: Path) -> None:
    prevote = height_one(h)[1]
    save_all(tmp_path / "node", [prevote])
    assert reloaded(tmp_path / "node") == prevote
    assert stored_block(tmp_path / "node") is None


def test_a_record_with_a_valid_block_survives_a_restart_with_its_block(h: Harness, tmp_path: Path) -> None:
    precommit = height_one(h)[2]
    save_all(tmp_path / "node", [precommit])
    loaded = reloaded(tmp_path / "node")
    assert loaded == precommit
    assert loaded is not None and loaded.valid_block == precommit.valid_block
    # The record itself names the block by hash: it is far smaller than the record with the block inside.
    store = Store(tmp_path / "node")
    raw = store.get_consensus(SAFETY_KEY)
    store.close()
    assert raw is not None and len(raw) < len(codec.encode(precommit))


def test_the_valid_block_is_written_once_for_all_the_votes_that_name_it(h: Harness, tmp_path: Path) -> None:
    store = save_all(tmp_path / "node", height_one(h))
    # Five records; B0 is named by the 3rd and 4th, B1 by the 5th: each block is written with the first naming it.
    assert store.block_puts() == [2, 4]
    assert all(puts[0] == SAFETY_KEY for puts, _ in store.writes)


def test_a_restart_knows_the_stored_block_and_does_not_write_it_again(h: Harness, tmp_path: Path) -> None:
    saved = height_one(h)
    save_all(tmp_path / "node", saved[:3])
    store = CountingStore(tmp_path / "node")
    guard = SafetyStore(store)
    assert guard.load() == saved[2]
    guard.save(saved[3])  # the nil prevote of round 1 still names B0
    store.close()
    assert store.writes == [([SAFETY_KEY], [])]
    assert reloaded(tmp_path / "node") == saved[3]


def test_a_new_valid_block_replaces_the_stored_one(h: Harness, tmp_path: Path) -> None:
    saved = height_one(h)
    save_all(tmp_path / "node", saved)
    assert reloaded(tmp_path / "node") == saved[4]
    assert saved[4].valid_block is not None
    assert stored_block(tmp_path / "node") == codec.encode(saved[4].valid_block)


def test_the_next_height_deletes_the_stored_block(h: Harness, tmp_path: Path) -> None:
    saved = height_one(h)
    store = save_all(tmp_path / "node", [*saved, height_two(h)])
    assert store.writes[-1] == ([SAFETY_KEY], [SAFETY_BLOCK_KEY])
    assert stored_block(tmp_path / "node") is None
    loaded = reloaded(tmp_path / "node")
    assert loaded is not None and loaded.slot[0] == 2 and loaded.valid_block is None


def test_a_record_stored_with_its_block_inside_still_loads_and_is_rewritten_small(h: Harness, tmp_path: Path) -> None:
    saved = height_one(h)
    store = CountingStore(tmp_path / "node")
    store.put_consensus(SAFETY_KEY, codec.encode(saved[2]))  # the form written before the block had its own key
    guard = SafetyStore(store)
    assert guard.load() == saved[2]
    guard.save(saved[3])
    store.close()
    assert store.writes[-1] == ([SAFETY_KEY, SAFETY_BLOCK_KEY], [])
    assert reloaded(tmp_path / "node") == saved[3]


def test_a_record_without_a_valid_block_has_the_same_bytes_in_both_forms(h: Harness, tmp_path: Path) -> None:
    prevote = height_one(h)[1]
    store = Store(tmp_path / "node")
    SafetyStore(store).save(prevote)
    assert store.get_consensus(SAFETY_KEY) == codec.encode(prevote)
    store.close()


@pytest.mark.parametrize(
    ("record", "block", "error"),
    [
        ("garbage", "valid", "the stored safety record is unreadable"),
        ("valid", "garbage", "the stored valid block is unreadable"),
        ("valid", "missing", r"names valid block [0-9a-f]{16}, which is not stored"),
        ("valid", "other", r"the stored valid block is [0-9a-f]{16}, the safety record names [0-9a-f]{16}"),
    ],
)
def test_bad_bytes_in_the_store_are_a_storage_error(
    h: Harness, tmp_path: Path, record: str, block: str, error: str
) -> None:
    saved = height_one(h)
    save_all(tmp_path / "node", saved[:3])
    store = Store(tmp_path / "node")
    other = saved[4].valid_block
    assert other is not None
    replacements = {"garbage": b"\x92\xc4\x01", "other": codec.encode(other)}
    if record in replacements:
        store.put_consensus(SAFETY_KEY, replacements[record])
    if block == "missing":
        store.write_consensus({}, [SAFETY_BLOCK_KEY])
    elif block in replacements:
        store.put_consensus(SAFETY_BLOCK_KEY, replacements[block])
    with pytest.raises(StorageError, match=error):
        SafetyStore(store).load()
    store.close()


async def test_the_driver_writes_each_heights_valid_block_once(tmp_path: Path) -> None:
    """A lone validator signs a proposal, a prevote and a precommit per height; only the precommit's record names
    the valid block, so each height writes it once, and the next height's first record deletes it."""
    network = make_network(1, params=Params(heartbeat_ms=60_000))
    now = T0 / 1000 + 5
    store = CountingStore(tmp_path / "solo")
    chain = LedgerApplication(
        store, network.genesis, mempool=Mempool(max_events=10, max_bytes=1 << 20), clock=lambda: now
    )
    driver = Driver(chain, signer=network["m0.test"].node, clock=lambda: now)
    driver.start()
    try:
        for height in (1, 2):
            chain.admit(issue(network["m0.test"], digest(f"safety {height}"), time_ms=int(now * 1000)))
            async with asyncio.timeout(10):
                while chain.height < height:
                    await asyncio.sleep(0.01)
    finally:
        driver.stop()
    assert [(puts, deletes) for puts, deletes in store.writes] == [
        ([SAFETY_KEY], [SAFETY_BLOCK_KEY]),  # height 1: nothing known stored yet, so the first save makes sure
        ([SAFETY_KEY], []),
        ([SAFETY_KEY, SAFETY_BLOCK_KEY], []),
        ([SAFETY_KEY], [SAFETY_BLOCK_KEY]),  # height 2
        ([SAFETY_KEY], []),
        ([SAFETY_KEY, SAFETY_BLOCK_KEY], []),
    ]
    loaded = SafetyStore(store).load()
    with store.snapshot() as snap:
        committed = snap.block(2).block
    store.close()
    assert loaded is not None and loaded.slot[0] == 2 and loaded.valid_block == committed
    assert isinstance(loaded.signed[1], Prevote)
