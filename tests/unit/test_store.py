from __future__ import annotations

import dataclasses
from pathlib import Path

import lmdb
import pytest

from credledger.ledger import merkle, smt
from credledger.ledger.block import Block
from credledger.ledger.errors import InvalidBlock, StatePruned, StorageError
from credledger.ledger.events import KeyRetire, MemberAdd, Revoke, decode_event
from credledger.ledger.state import cred_key, get_credential
from credledger.ledger.storage import schema
from credledger.ledger.storage.store import Store
from tests.blocks import certify, commit, next_block
from tests.factories import by_governance, digest, issue, make_member, make_network, signed


@pytest.fixture
def network():  # type: ignore[no-untyped-def]
    return make_network(4)


@pytest.fixture
def store(tmp_path: Path, network):  # type: ignore[no-untyped-def]
    s = Store(tmp_path / "ledger")
    s.initialize(network.genesis)
    yield s
    s.close()


def test_committed_blocks_are_readable_with_verifiable_proofs(store, network) -> None:  # type: ignore[no-untyped-def]
    m0 = network["m0.test"]
    commit(store, network, issue(m0, digest("a")), issue(m0, digest("b")))
    commit(store, network, signed(Revoke(digest("a"), 0), m0.issuer))
    with store.snapshot() as snap:
        assert snap.height == 2
        assert snap.log_size == 3
        header = snap.header(2)
        root = snap.log_root()
        assert root == header.log_root
        for index in range(3):
            leaf = merkle.leaf_hash(snap.entry(index))
            merkle.verify_inclusion(leaf, index, 3, snap.inclusion_proof(index, 3), root)
        merkle.verify_consistency(2, 3, snap.consistency_proof(2, 3), snap.header(1).log_root, root)
        value, proof = snap.prove_state(cred_key(digest("a")))
        assert value is not None
        smt.verify_proof(header.state_root, cred_key(digest("a")), value, proof)
        record = get_credential(snap.state_view(), digest("a"))
        assert record is not None and record.status == "revoked"
        old = get_credential(snap.state_view(1), digest("a"))
        assert old is not None and old.status == "active"
        event = decode_event(snap.entry(0))
        assert snap.event_index(event.id) == 0
        assert snap.block_height_of(2) == 2
        assert snap.block(1).block.events == (snap.entry(0), snap.entry(1))


def test_block_with_wrong_root_or_link_is_refused_and_nothing_is_written(store, network) -> None:  # type: ignore[no-untyped-def]
    m0 = network["m0.test"]
    block = next_block(store, network, [issue(m0, digest("a"))])
    bad_headers = {
        "state root": dataclasses.replace(block.header, state_root=b"\x00" * 32),
        "log root": dataclasses.replace(block.header, log_root=b"\x00" * 32),
        "previous hash": dataclasses.replace(block.header, prev_hash=b"\x00" * 32),
        "height": dataclasses.replace(block.header, height=2),
        "origin": dataclasses.replace(block.header, origin="other.example/net"),
        "proposer": dataclasses.replace(block.header, proposer="stranger"),
        "validator-set hashes": dataclasses.replace(block.header, next_validators_hash=b"\x01" * 32),
    }
    for what, header in bad_headers.items():
        bad = Block(header, block.events)
        with pytest.raises(InvalidBlock):
            store.commit_block(bad, certify(network, bad))
        assert store.height() == 0, what
    with store.snapshot() as snap:
        assert snap.log_size == 0


def test_certificate_without_quorum_or_for_another_block_is_refused(store, network) -> None:  # type: ignore[no-untyped-def]
    m0 = network["m0.test"]
    block = next_block(store, network, [issue(m0, digest("a"))])
    with pytest.raises(InvalidBlock, match="need more than 2/3"):
        store.commit_block(block, certify(network, block, ["m0.test", "m1.test"]))
    other = next_block(store, network, [issue(m0, digest("b"))])
    with pytest.raises(InvalidBlock, match="certificate is for"):
        store.commit_block(block, certify(network, other))
    with pytest.raises(InvalidBlock, match="note"):
        store.commit_block(block, "not a note")
    assert store.height() == 0


def test_replayed_event_is_refused(store, network) -> None:  # type: ignore[no-untyped-def]
    event = issue(network["m0.test"], digest("a"))
    commit(store, network, event)
    block = next_block(store, network, [])
    smuggled = Block(dataclasses.replace(block.header, event_count=1), (event.encode(),))
    with pytest.raises(InvalidBlock):
        store.commit_block(smuggled, certify(network, smuggled))
    assert store.height() == 1


def test_store_reopens_with_the_same_chain_and_refuses_another_genesis(tmp_path: Path, network) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "db")
    store.initialize(network.genesis)
    commit(store, network, issue(network["m0.test"], digest("a")))
    head = store.height()
    store.close()
    again = Store(tmp_path / "db")
    assert again.genesis == network.genesis
    assert again.height() == head
    again.initialize(network.genesis)
    with pytest.raises(StorageError, match="belongs to network"):
        again.initialize(make_network(3, origin="credledger.test/other").genesis)
    again.close()


def test_a_store_of_an_unknown_schema_is_refused(tmp_path: Path, network) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "db")
    store.initialize(network.genesis)
    with store.env.begin(write=True) as txn:
        txn.put(b"schema", schema.u64(99), db=store.env.open_db(schema.CHAIN_META, txn=txn))
    store.close()
    with pytest.raises(StorageError, match=f"store schema 99, expected {schema.SCHEMA_VERSION}"):
        Store(tmp_path / "db")


def test_consensus_entries_are_put_and_deleted_together_or_not_at_all(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    store.write_consensus({b"one": b"1", b"two": b"2"})
    store.write_consensus({b"three": b"3"}, [b"one", b"never-stored"])
    with pytest.raises(lmdb.BadValsizeError):  # LMDB refuses an empty key: the whole transaction is dropped
        store.write_consensus({b"four": b"4", b"": b"x"}, [b"two"])
    store.close()
    again = Store(tmp_path / "db")
    stored = {key: again.get_consensus(key) for key in (b"one", b"two", b"three", b"four")}
    again.close()
    assert stored == {b"one": None, b"two": b"2", b"three": b"3", b"four": None}


def test_governance_change_schedules_the_new_set_two_heights_later(store, network) -> None:  # type: ignore[no-untyped-def]
    newcomer = make_member("m9.test", 1)
    add = by_governance(network, MemberAdd(**dataclasses.asdict(newcomer.add_payload())))
    commit(store, network, add)
    with store.snapshot() as snap:
        assert "m9.test" not in snap.validator_set(2)
        assert "m9.test" in snap.validator_set(3)
        assert snap.header(1).next_validators_hash == snap.validator_set(2).hash()
        assert [h for h, _ in snap.validator_changes()] == [1, 3]


def test_block_with_a_refused_event_is_invalid(store, network) -> None:  # type: ignore[no-untyped-def]
    m0 = network["m0.test"]
    retire = signed(KeyRetire("m1.test", network["m1.test"].issuer.key_id, None), m0.issuer)
    block = next_block(store, network, [])
    forged = Block(dataclasses.replace(block.header, event_count=1), (retire.encode(),))
    with pytest.raises(InvalidBlock, match="block 1: not-the-member"):
        store.commit_block(forged, certify(network, forged))
    assert store.height() == 0


def test_the_event_index_refuses_an_id_already_stored(store, network) -> None:  # type: ignore[no-untyped-def]
    # The rules refuse replays first; this guard keeps the index one-to-one even if they did not.
    m0 = network["m0.test"]
    commit(store, network, issue(m0, digest("a")))
    with store.snapshot() as snap:
        stored = decode_event(snap.entry(0))
    fresh = issue(m0, digest("b"))
    with store.env.begin(write=True) as txn:
        with pytest.raises(InvalidBlock, match=f"event {stored.id.hex()} is already committed"):
            store._put_events(txn, 2, 1, [fresh.encode(), stored.encode()], [fresh, stored])
        txn.abort()
    with (
        pytest.raises(StorageError, match="log entries from index 0 are stored already"),
        store.env.begin(write=True) as txn,
    ):
        store._put_events(txn, 2, 0, [fresh.encode()], [fresh])
    assert store.height() == 1


def test_a_bounded_state_history_keeps_the_last_blocks_provable_and_refuses_older(tmp_path: Path, network) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "pruned", state_history=2)
    try:
        store.initialize(network.genesis)
        m0 = network["m0.test"]
        for height in range(1, 6):
            commit(store, network, issue(m0, digest(f"h{height}")))
        commit(store, network, signed(Revoke(digest("h1"), 1), m0.issuer))
        with store.snapshot() as snap:
            assert (snap.height, snap.oldest_state_height) == (6, 5)
            key = cred_key(digest("h1"))
            for height, status in ((5, "active"), (6, "revoked")):
                value, proof = snap.prove_state(key, height)
                smt.verify_proof(snap.header(height).state_root, key, value, proof)
                record = get_credential(snap.state_view(height), digest("h1"))
                assert record is not None and record.status == status
            for height in (0, 4):
                with pytest.raises(StatePruned, match=rf"height {height} is no longer kept.*from height 5") as gone:
                    snap.prove_state(key, height)
                assert gone.value.oldest == 5
                with pytest.raises(StatePruned):
                    snap.state_view(height)
            assert snap.block(1).header.height == 1  # blocks, events and the log stay
            assert decode_event(snap.entry(0)).payload == issue(m0, digest("h1")).payload
    finally:
        store.close()


def test_a_state_history_of_no_block_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="state history: expected a positive number of versions"):
        Store(tmp_path / "bad", state_history=0)
