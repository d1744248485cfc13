"""The LMDB-persisted, versioned state map: behaviour on a real environment in a temporary directory."""

from __future__ import annotations

import hashlib
import random
import statistics
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from unittest import mock

import lmdb
import pytest

from credledger.ledger.errors import StorageError, VerificationError
from credledger.ledger.smt import EMPTY, EMPTY_ROOT, StateProof, verify_proof
from credledger.ledger.storage.presence import PresenceFilter
from credledger.ledger.storage.schema import SMT_DEPTHS, SMT_LEAVES, SMT_NODES, open_env
from credledger.ledger.storage.smtupdate import group_prefix
from credledger.ledger.storage.statemap import StateMap

MAP_SIZE = 1 << 28


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(key: bytes, value: bytes) -> bytes:
    return sha(b"\x02" + key + sha(value))


def node(left: bytes, right: bytes) -> bytes:
    return sha(b"\x03" + left + right)


def flip_bit(key: bytes, bit: int) -> bytes:
    """`key` with bit number `bit` (0 = most significant) inverted."""
    return (int.from_bytes(key, "big") ^ (1 << (255 - bit))).to_bytes(32, "big")


K = sha(b"base key")
DEEP = flip_bit(K, 255)  # shares 255 bits with K
FAR = flip_bit(K, 0)  # shares none


@pytest.fixture
def env(tmp_path: Path) -> Iterator[lmdb.Environment]:
    environment = open_env(tmp_path / "env", map_size=MAP_SIZE)
    yield environment
    environment.close()


@pytest.fixture
def smap(env: lmdb.Environment) -> StateMap:
    return StateMap(env)


def write(env: lmdb.Environment, smap: StateMap, version: int, changes: Mapping[bytes, bytes | None]) -> bytes:
    with env.begin(write=True) as txn:
        return smap.update(txn, version, changes)


def node_count(env: lmdb.Environment, txn: lmdb.Transaction[bytes]) -> int:
    names = (SMT_NODES, SMT_LEAVES, *SMT_DEPTHS)
    return sum(txn.stat(env.open_db(name, txn=txn, create=False))["entries"] for name in names)


def check_proof(env: lmdb.Environment, smap: StateMap, key: bytes, version: int | None = None) -> StateProof:
    """Prove `key` and check the proof against the stored root and the stored value."""
    with env.begin() as txn:
        proof = smap.prove(txn, key, version)
        verify_proof(smap.root(txn, version), key, smap.get(txn, key, version), proof)
    return proof


def test_empty_map_has_the_empty_root_and_proves_absence(env: lmdb.Environment, smap: StateMap) -> None:
    with env.begin() as txn:
        assert smap.latest_version(txn) is None
        assert smap.root(txn) == EMPTY_ROOT
        assert smap.get(txn, K) is None
        assert list(smap.items(txn)) == []
        proof = smap.prove(txn, K)
    assert proof == StateProof(None, ())
    verify_proof(EMPTY_ROOT, K, None, proof)


def test_genesis_with_no_entries_stores_the_empty_root(env: lmdb.Environment, smap: StateMap) -> None:
    assert write(env, smap, 0, {}) == EMPTY_ROOT
    with env.begin() as txn:
        assert smap.latest_version(txn) == 0
        assert smap.root(txn, 0) == EMPTY_ROOT


def test_single_key_root_is_its_leaf_and_its_proof_is_empty(env: lmdb.Environment, smap: StateMap) -> None:
    root = write(env, smap, 0, {K: b"v"})
    assert root == leaf(K, b"v")
    proof = check_proof(env, smap, K)
    assert proof.siblings == ()
    with env.begin() as txn:
        assert smap.get(txn, K) == b"v"
        assert smap.get(txn, FAR) is None
        verify_proof(root, FAR, None, smap.prove(txn, FAR))


def test_keys_parting_at_the_first_bit_sit_under_the_root(env: lmdb.Environment, smap: StateMap) -> None:
    root = write(env, smap, 0, {K: b"1", FAR: b"2"})
    left, right = (K, FAR) if K < FAR else (FAR, K)
    assert root == node(leaf(left, b"1" if left == K else b"2"), leaf(right, b"2" if right == FAR else b"1"))
    assert check_proof(env, smap, K).siblings == (leaf(FAR, b"2"),)


def test_keys_parting_at_the_last_bit_give_a_256_sibling_proof(env: lmdb.Environment, smap: StateMap) -> None:
    root = write(env, smap, 0, {K: b"1", DEEP: b"2"})
    expected = node(leaf(K, b"1"), leaf(DEEP, b"2")) if K < DEEP else node(leaf(DEEP, b"2"), leaf(K, b"1"))
    for depth in range(254, -1, -1):
        bit = (int.from_bytes(K, "big") >> (255 - depth)) & 1
        expected = node(EMPTY, expected) if bit else node(expected, EMPTY)
    assert root == expected
    proof = check_proof(env, smap, K)
    assert len(proof.siblings) == 256
    assert proof.siblings[0] == leaf(DEEP, b"2")
    assert set(proof.siblings[1:]) == {EMPTY}


def test_deleting_a_key_collapses_its_sibling_leaf_back_up(env: lmdb.Environment, smap: StateMap) -> None:
    alone = write(env, smap, 0, {K: b"1"})
    write(env, smap, 1, {DEEP: b"2", FAR: b"3"})
    assert write(env, smap, 2, {DEEP: None, FAR: None}) == alone
    assert check_proof(env, smap, K).siblings == ()
    assert write(env, smap, 3, {K: None}) == EMPTY_ROOT


def test_deleting_one_of_three_lifts_the_survivor(env: lmdb.Environment, smap: StateMap) -> None:
    write(env, smap, 0, {K: b"1", DEEP: b"2", FAR: b"3"})
    root = write(env, smap, 1, {DEEP: None})
    assert root == one_batch_root({K: b"1", FAR: b"3"})
    assert len(check_proof(env, smap, K, 1).siblings) == 1


def test_one_key_deletes_one_at_a_time_match_fresh_maps(env: lmdb.Environment, smap: StateMap) -> None:
    rng = random.Random(7)
    keys = [flip_bit(K, b) for b in (3, 4, 60, 61, 200, 255)] + [rng.randbytes(32) for _ in range(20)]
    present = {k: bytes([i]) for i, k in enumerate(keys)}
    write(env, smap, 0, present)
    for version, key in enumerate(keys, start=1):
        del present[key]
        root = write(env, smap, version, {key: None})
        assert root == one_batch_root(present)
        for other in keys:
            check_proof(env, smap, other)


def test_same_value_again_and_deleting_an_absent_key_change_nothing(env: lmdb.Environment, smap: StateMap) -> None:
    root = write(env, smap, 0, {K: b"1", FAR: b"2"})
    with env.begin() as txn:
        nodes_before = node_count(env, txn)
    assert write(env, smap, 1, {K: b"1", DEEP: None}) == root
    assert write(env, smap, 2, {}) == root
    with env.begin() as txn:
        assert node_count(env, txn) == nodes_before
        assert smap.latest_version(txn) == 2


def test_old_versions_stay_readable_and_provable(env: lmdb.Environment, smap: StateMap) -> None:
    roots = [
        write(env, smap, 0, {K: b"a", FAR: b"b"}),
        write(env, smap, 5, {K: b"a2", DEEP: b"c"}),
        write(env, smap, 9, {K: None, FAR: None}),
    ]
    expected = [
        {K: b"a", FAR: b"b"},
        {K: b"a2", FAR: b"b", DEEP: b"c"},
        {DEEP: b"c"},
    ]
    with env.begin() as txn:
        for version, root, model in zip((0, 5, 9), roots, expected, strict=True):
            assert smap.root(txn, version) == root
            assert dict(smap.items(txn, version)) == model
            for key in (K, FAR, DEEP):
                proof = smap.prove(txn, key, version)
                verify_proof(root, key, model.get(key), proof)
                assert smap.get(txn, key, version) == model.get(key)
        with pytest.raises(VerificationError, match="expected root"):
            verify_proof(roots[2], K, b"a", smap.prove(txn, K, 0))


def test_items_are_in_key_order(env: lmdb.Environment, smap: StateMap) -> None:
    rng = random.Random(3)
    model = {rng.randbytes(32): rng.randbytes(rng.randrange(0, 50)) for _ in range(300)}
    write(env, smap, 0, model)
    with env.begin() as txn:
        assert list(smap.items(txn)) == sorted(model.items())


def test_reopened_environment_serves_the_same_roots_values_and_proofs(tmp_path: Path) -> None:
    path = tmp_path / "env"
    first = open_env(path, map_size=MAP_SIZE)
    smap = StateMap(first)
    roots = [write(first, smap, 0, {K: b"1"}), write(first, smap, 1, {FAR: b"2"})]
    first.close()
    again = open_env(path, map_size=MAP_SIZE)
    try:
        reopened = StateMap(again)
        with again.begin() as txn:
            assert [reopened.root(txn, v) for v in (0, 1)] == roots
            assert reopened.get(txn, FAR) == b"2"
            assert reopened.get(txn, FAR, 0) is None
            verify_proof(roots[0], K, b"1", reopened.prove(txn, K, 0))
        assert write(again, reopened, 2, {K: None}) == leaf(FAR, b"2")
    finally:
        again.close()


def test_aborted_transaction_leaves_nothing(env: lmdb.Environment, smap: StateMap) -> None:
    txn = env.begin(write=True)
    root = smap.update(txn, 0, {K: b"1", FAR: b"2", DEEP: b"3"})
    txn.abort()
    with env.begin() as txn:
        assert smap.latest_version(txn) is None
        assert node_count(env, txn) == 0
    assert write(env, smap, 0, {K: b"1", FAR: b"2", DEEP: b"3"}) == root


def test_versions_must_strictly_increase(env: lmdb.Environment, smap: StateMap) -> None:
    write(env, smap, 3, {K: b"1"})
    for stale in (3, 2):
        with env.begin(write=True) as txn, pytest.raises(StorageError, match=r"greater than the latest version 3"):
            smap.update(txn, stale, {K: b"2"})
    with env.begin() as txn, pytest.raises(StorageError, match=r"no state root stored for version 4 \(latest"):
        smap.root(txn, 4)


@pytest.mark.parametrize(
    ("changes", "version", "message"),
    [
        ({K[:31]: b"1"}, 0, "state key: expected 32 bytes, got 31 bytes"),
        ({K: "text"}, 0, "expected bytes or None, got str"),
        ({K: b"1"}, -1, "state version: expected an integer"),
        ({K: b"1"}, True, "state version: expected an integer"),
    ],
)
def test_malformed_updates_are_refused_before_writing(
    env: lmdb.Environment, smap: StateMap, changes: dict[bytes, object], version: int, message: str
) -> None:
    with env.begin(write=True) as txn:
        with pytest.raises(ValueError, match=message):
            smap.update(txn, version, {FAR: b"ok", **changes})  # type: ignore[dict-item]
        assert node_count(env, txn) == 0


def test_new_nodes_are_named_by_group_and_version_and_rehash_to_their_ref(
    env: lmdb.Environment, smap: StateMap
) -> None:
    write(env, smap, 0, {K: b"1", FAR: b"2"})
    write(env, smap, 7, {DEEP: b"3"})
    with env.begin() as txn:
        assert txn.stat(env.open_db(SMT_NODES, txn=txn, create=False))["entries"] == 0  # schema 1's table only
        leaves = list(txn.cursor(db=env.open_db(SMT_LEAVES, txn=txn, create=False)))
        by_depth = [list(txn.cursor(db=env.open_db(name, txn=txn, create=False))) for name in SMT_DEPTHS]
    # A ref is group || 7-byte version || hash: leaves are group 0x80, internal nodes at depth d group 0x81 + d.
    assert {ref[:8] for ref, _ in leaves} == {group_prefix(0x80, 0), group_prefix(0x80, 7)}
    # A leaf is stored as 0x02 || key || value; its hash is over 0x02 || key || SHA-256(value).
    for ref, record in leaves:
        assert record[0] == 0x02 and ref[8:] == sha(record[:33] + sha(record[33:]))
    assert {record[33:] for _, record in leaves} == {b"1", b"2", b"3"}
    # K and FAR part at the first bit (the root, version 0); DEEP parts from K at the last bit: version 7 rewrote the
    # root and wrote a node at every depth down to 255, the deepest ones sharing the last table.
    assert [len(nodes) for nodes in by_depth[:3]] == [2, 1, 1]
    assert len(by_depth[-1]) == 256 - (len(SMT_DEPTHS) - 1)
    for depth, nodes in enumerate(by_depth):
        for ref, record in nodes:
            assert ref[0] == 0x81 + depth and record[0] == 0x03 and len(record) == 81
            assert ref[8:] == sha(b"\x03" + record[9:41] + record[49:81])
    # The leaves written at version 0 are shared, not copied, by version 7.
    assert len(leaves) == 3


def test_missing_or_malformed_nodes_raise_storage_errors(env: lmdb.Environment, smap: StateMap) -> None:
    write(env, smap, 0, {K: b"1", FAR: b"2"})
    nodes = env.open_db(SMT_LEAVES, create=False)  # outside any transaction: this takes the write lock
    with env.begin(write=True) as txn:
        leaf_ref = next(ref for ref, record in txn.cursor(db=nodes) if record[1:33] == K)
        txn.put(leaf_ref, b"\x02short", db=nodes)
    with env.begin() as txn, pytest.raises(StorageError, match="malformed record of 6 bytes"):
        smap.get_proven(txn, K)
    with env.begin(write=True) as txn:
        txn.delete(leaf_ref, db=nodes)
    with env.begin() as txn, pytest.raises(StorageError, match=f"state node {leaf_ref.hex()} is missing"):
        smap.prove(txn, K)


@pytest.mark.parametrize("cache_size", [0, 4, 1 << 16])
def test_any_cache_size_gives_the_same_answers(env: lmdb.Environment, cache_size: int) -> None:
    rng = random.Random(11)
    smap = StateMap(env, cache_size=cache_size)
    keys = [rng.randbytes(32) for _ in range(200)]
    for version in range(4):
        write(env, smap, version, {k: rng.randbytes(4) if rng.random() < 0.7 else None for k in rng.sample(keys, 80)})
    plain = StateMap(env, cache_size=0)
    with env.begin() as txn:
        for version in range(4):
            for key in keys[:50]:
                assert smap.prove(txn, key, version) == plain.prove(txn, key, version)


def test_proofs_through_kept_upper_walks_are_the_proofs_walked_afresh(env: lmdb.Environment) -> None:
    rng = random.Random(12)
    # Keys in clusters sharing 14 leading bits (walks that go on below the kept depth), and keys alone higher up.
    clustered = [(0xABC << 242 | rng.getrandbits(242)).to_bytes(32, "big") for _ in range(40)]
    keys = clustered + [rng.randbytes(32) for _ in range(60)]
    smap = StateMap(env)
    for version in range(3):
        write(env, smap, version, {k: rng.randbytes(4) if rng.random() < 0.8 else None for k in rng.sample(keys, 70)})
    probes = [*keys, *(flip_bit(k, 200) for k in clustered[:10]), *(rng.randbytes(32) for _ in range(20))]
    with env.begin() as txn:
        for _ in range(2):  # the second round from the kept walks
            for version in range(3):
                root = smap.root(txn, version)
                for key in probes:
                    value, proof = smap.get_proven(txn, key, version)
                    # A map that never proved anything walks the whole path.
                    assert (value, proof) == StateMap(env).get_proven(txn, key, version)
                    verify_proof(root, key, value, proof)
        assert max(len(smap.prove(txn, k).siblings) for k in clustered) > 14


def test_batches_match_one_batch_rebuilds_and_keep_proofs_short(env: lmdb.Environment, smap: StateMap) -> None:
    rng = random.Random(5)
    keys = [rng.randbytes(32) for _ in range(1500)]
    model: dict[bytes, bytes] = {}
    for version in range(6):
        changes: dict[bytes, bytes | None] = {
            k: None if rng.random() < 0.3 else rng.randbytes(8) for k in rng.sample(keys, 600)
        }
        root = write(env, smap, version, changes)
        for k, v in changes.items():
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v
        assert root == one_batch_root(model)
    with env.begin() as txn:
        depths = [len(smap.prove(txn, k).siblings) for k in keys]
    # About log2(n) siblings, not 256: random keys part within a few bits of log2(n).
    assert statistics.fmean(depths) <= len(model).bit_length() + 1
    assert max(depths) <= 4 * len(model).bit_length()


def one_batch_root(model: dict[bytes, bytes]) -> bytes:
    """The root of `model` written as the only batch of a brand-new map (a different code path from updates)."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = open_env(Path(tmp), map_size=MAP_SIZE)
        try:
            return write(scratch, StateMap(scratch), 0, model)
        finally:
            scratch.close()


def test_reads_after_an_aborted_update_and_a_different_commit_find_every_key(
    env: lmdb.Environment, smap: StateMap
) -> None:
    write(env, smap, 0, {K: b"1"})
    with env.begin() as txn:
        assert smap.get(txn, FAR) is None  # the presence filter is built here, at version 0
    txn = env.begin(write=True)
    smap.update(txn, 1, {DEEP: b"aborted"})
    txn.abort()
    write(env, smap, 1, {FAR: b"2"})
    with env.begin() as txn:
        assert [smap.get(txn, key) for key in (K, FAR, DEEP)] == [b"1", b"2", None]
        assert [smap.get(txn, key, 0) for key in (K, FAR, DEEP)] == [b"1", None, None]


def test_keys_another_writer_committed_are_found(env: lmdb.Environment, smap: StateMap) -> None:
    write(env, smap, 0, {K: b"1"})
    with env.begin() as txn:
        assert smap.get(txn, FAR) is None
    other = StateMap(env)  # as another process would: this map never sees its updates
    write(env, other, 1, {FAR: b"2"})
    write(env, other, 2, {DEEP: b"3", K: None})
    with env.begin() as txn:
        assert [smap.get(txn, key) for key in (K, FAR, DEEP)] == [None, b"2", b"3"]
    write(env, smap, 3, {K: b"4"})
    with env.begin() as txn:
        assert [smap.get(txn, key) for key in (K, FAR, DEEP)] == [b"4", b"2", b"3"]


@mock.patch.object(PresenceFilter, "FIRST_CAPACITY", 300)
def test_reads_stay_exact_as_the_presence_filter_fills_and_grows(env: lmdb.Environment) -> None:
    smap = StateMap(env)  # its filter starts at 300 keys, so it grows layer by layer below
    rng = random.Random(17)
    model: dict[bytes, bytes] = {}
    absent = [rng.randbytes(32) for _ in range(500)]
    for version in range(12):  # 12,000 keys set, deletions along the way
        changes: dict[bytes, bytes | None] = {rng.randbytes(32): rng.randbytes(3) for _ in range(1_000)}
        changes.update({key: None for key in rng.sample(sorted(model), min(100, len(model)))})
        write(env, smap, version, changes)
        for key, value in changes.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        with env.begin() as txn:
            for key in rng.sample(sorted(model), 200):
                assert smap.get(txn, key) == model[key]
            assert all(smap.get(txn, key) is None for key in absent)


def test_a_map_that_only_reads_scans_once_and_then_walks(env: lmdb.Environment, smap: StateMap) -> None:
    writer = StateMap(env)
    write(env, writer, 0, {K: b"1"})
    with env.begin() as txn:
        assert smap.get(txn, K) == b"1"
    scanned = smap._presence
    for version in range(1, 4):
        write(env, writer, version, {flip_bit(K, version): b"%d" % version})
        with env.begin() as txn:
            assert smap.get(txn, flip_bit(K, version)) == b"%d" % version
            assert smap.get(txn, FAR) is None
    assert smap._presence is scanned  # not rescanned for every root the other writer made


def test_an_update_repeated_on_the_same_root_writes_the_nodes_already_computed(
    env: lmdb.Environment, smap: StateMap
) -> None:
    write(env, smap, 0, {K: b"1"})
    changes = {FAR: b"2", DEEP: b"3"}
    txn = env.begin(write=True)
    previewed = smap.update(txn, 1, changes)  # as validation does, in a transaction it aborts
    txn.abort()
    with mock.patch("credledger.ledger.storage.statemap.Updater", side_effect=AssertionError("recomputed")):
        assert write(env, smap, 1, dict(changes)) == previewed
    with env.begin() as txn:
        assert [smap.get(txn, key) for key in (K, FAR, DEEP)] == [b"1", b"2", b"3"]
        for key in (K, FAR, DEEP):
            check_proof(env, smap, key)
        assert smap.root(txn) == one_batch_root({K: b"1", FAR: b"2", DEEP: b"3"})


def test_an_update_that_differs_in_any_input_is_computed_afresh(env: lmdb.Environment, smap: StateMap) -> None:
    write(env, smap, 0, {K: b"1"})
    txn = env.begin(write=True)
    smap.update(txn, 1, {FAR: b"2", DEEP: b"3"})
    txn.abort()
    # Another value, another key set, another version: none may reuse what was computed for the first.
    for version, changes in ((1, {FAR: b"2", DEEP: b"altered"}), (1, {FAR: b"2"}), (2, {FAR: b"2", DEEP: b"3"})):
        txn = env.begin(write=True)
        try:
            assert smap.update(txn, version, changes) == one_batch_root({K: b"1", **changes})
        finally:
            txn.abort()


def test_compute_gives_the_update_root_writes_nothing_and_the_update_reuses_it(
    env: lmdb.Environment, smap: StateMap
) -> None:
    write(env, smap, 0, {K: b"1"})
    changes = {FAR: b"2", DEEP: b"3", K: None}
    with env.begin(write=True) as txn:
        computed = smap.compute(txn, 1, changes)
        assert smap.compute(txn, 1, {}) == smap.root(txn)
        assert (smap.latest_version(txn), node_count(env, txn)) == (0, 1)  # version 0 and its one leaf, no more
    assert computed == one_batch_root({FAR: b"2", DEEP: b"3"})
    with mock.patch("credledger.ledger.storage.statemap.Updater", side_effect=AssertionError("recomputed")):
        assert write(env, smap, 1, dict(changes)) == computed
    with env.begin() as txn:
        assert [smap.get(txn, key) for key in (K, FAR, DEEP)] == [None, b"2", b"3"]


def test_compute_checks_its_inputs_as_update_does(env: lmdb.Environment, smap: StateMap) -> None:
    write(env, smap, 3, {K: b"1"})
    with env.begin(write=True) as txn:
        with pytest.raises(StorageError, match="greater than the latest"):
            smap.compute(txn, 3, {FAR: b"2"})
        with pytest.raises(ValueError, match="state key"):
            smap.compute(txn, 4, {b"short": b"2"})
        with pytest.raises(ValueError, match="state value"):
            smap.compute(txn, 4, {FAR: "text"})  # type: ignore[dict-item]
