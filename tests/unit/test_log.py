from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import lmdb
import pytest

from credledger.ledger.errors import CredledgerError, StorageError
from credledger.ledger.merkle import (
    EMPTY_ROOT,
    consistency_path,
    inclusion_path,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from credledger.ledger.storage import schema
from credledger.ledger.storage.log import DEFAULT_TILE_HEIGHT, LogRangeError, MerkleLog
from credledger.ledger.tiles import hashes_from_leaves

MAP_SIZE = 1 << 28


def leaves(start: int, count: int) -> list[bytes]:
    return [leaf_hash(b"event %d" % i) for i in range(start, start + count)]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[lmdb.Environment]:
    environment = schema.open_env(tmp_path / "node", map_size=MAP_SIZE)
    yield environment
    environment.close()


def append_in_batches(env: lmdb.Environment, log: MerkleLog, batches: list[int]) -> list[bytes]:
    """Append batches of the given sizes, one write transaction each; return every leaf hash appended."""
    model: list[bytes] = []
    for count in batches:
        batch = leaves(len(model), count)
        with env.begin(write=True) as txn:
            assert log.append(txn, batch) == len(model) + count
        model += batch
    return model


def test_empty_log_has_the_empty_root(env: lmdb.Environment) -> None:
    log = MerkleLog(env)
    with env.begin() as txn:
        assert log.size(txn) == 0
        assert log.root(txn) == EMPTY_ROOT
        assert log.root(txn, 0) == EMPTY_ROOT


@pytest.mark.parametrize("tile_height", [1, 2, 3, DEFAULT_TILE_HEIGHT])
def test_roots_and_proofs_at_every_historical_size_match_the_rfc(env: lmdb.Environment, tile_height: int) -> None:
    log = MerkleLog(env, tile_height=tile_height)
    model = append_in_batches(env, log, [1, 2, 1, 5, 8, 3, 1, 16, 2, 7])  # 46 leaves, uneven batches
    roots = [root_from_leaf_hashes(model[:n]) for n in range(len(model) + 1)]
    with env.begin() as txn:
        assert log.size(txn) == len(model)
        assert log.root(txn) == roots[-1]
        for size in range(len(model) + 1):
            assert log.root(txn, size) == roots[size]
        for size in range(1, len(model) + 1):
            for index in range(size):
                proof = log.inclusion_proof(txn, index, size)
                assert proof == inclusion_path(model[:size], index)
                verify_inclusion(model[index], index, size, proof, roots[size])
            for size1 in range(1, size + 1):
                proof = log.consistency_proof(txn, size1, size)
                assert proof == consistency_path(model[:size], size1)
                verify_consistency(size1, size, proof, roots[size1], roots[size])
        assert [log.leaf_hash(txn, i) for i in range(len(model))] == model


def test_proofs_default_to_the_current_size(env: lmdb.Environment) -> None:
    log = MerkleLog(env)
    model = append_in_batches(env, log, [11])
    with env.begin() as txn:
        assert log.inclusion_proof(txn, 3) == inclusion_path(model, 3)
        assert log.consistency_proof(txn, 5) == consistency_path(model, 5)
        assert log.consistency_proof(txn, 11) == []


def test_large_batches_across_tile_boundaries(env: lmdb.Environment) -> None:
    # With 32-leaf tiles, 1,024 and 2,048 leaves complete the level-10 and level-11 nodes.
    log = MerkleLog(env)
    model = append_in_batches(env, log, [1000, 23, 1, 1, 1000, 100])
    rng = random.Random(7)
    with env.begin() as txn:
        for size in [1, 31, 32, 33, 1023, 1024, 1025, 1026, 2047, 2048, 2049, len(model)]:
            root = root_from_leaf_hashes(model[:size])
            assert log.root(txn, size) == root
            for index in {0, size - 1, rng.randrange(size)}:
                verify_inclusion(model[index], index, size, log.inclusion_proof(txn, index, size), root)
            for size1 in {1, size, rng.randint(1, size)}:
                proof = log.consistency_proof(txn, size1, size)
                verify_consistency(size1, size, proof, root_from_leaf_hashes(model[:size1]), root)


@pytest.mark.parametrize("tile_height", [1, 2, DEFAULT_TILE_HEIGHT])
def test_shared_paths_give_the_inclusion_proofs_of_their_size(env: lmdb.Environment, tile_height: int) -> None:
    log = MerkleLog(env, tile_height=tile_height)
    model = append_in_batches(env, log, [70, 3, 1, 60])
    with env.begin() as txn:
        for size in [1, 2, 31, 32, 33, 64, 70, 73, 74, len(model)]:
            # A limit of 2 upper paths: every index order clears and refills what is kept.
            shared = log.shared_paths(txn, size, limit=2)
            for index in [*range(size), *reversed(range(size))]:
                assert shared.inclusion_proof(txn, index) == log.inclusion_proof(txn, index, size)
            with pytest.raises(LogRangeError, match=f"expected 0 <= index < tree size {size}, got {size}"):
                shared.inclusion_proof(txn, size)
        with pytest.raises(LogRangeError, match=f"got {len(model) + 1}"):
            log.shared_paths(txn, len(model) + 1)


def test_several_appends_in_one_transaction(env: lmdb.Environment) -> None:
    log = MerkleLog(env)
    model = leaves(0, 40)
    with env.begin(write=True) as txn:
        log.append(txn, model[:3])
        log.append(txn, model[3:33])
        log.append(txn, model[33:])
        assert log.root(txn) == root_from_leaf_hashes(model)
    with env.begin() as txn:
        assert log.size(txn) == 40
        assert log.root(txn, 17) == root_from_leaf_hashes(model[:17])


def test_appending_nothing_changes_nothing(env: lmdb.Environment) -> None:
    log = MerkleLog(env)
    model = append_in_batches(env, log, [5])
    with env.begin(write=True) as txn:
        assert log.append(txn, []) == 5
    with env.begin() as txn:
        assert log.root(txn) == root_from_leaf_hashes(model)


def test_reopening_the_environment_gives_the_same_log(tmp_path: Path) -> None:
    env = schema.open_env(tmp_path / "node", map_size=MAP_SIZE)
    log = MerkleLog(env)
    model = append_in_batches(env, log, [3, 30, 4])
    with env.begin() as txn:
        before = (log.root(txn), log.root(txn, 20), log.inclusion_proof(txn, 6, 30), log.consistency_proof(txn, 9))
    env.close()

    env = schema.open_env(tmp_path / "node", map_size=MAP_SIZE)
    log = MerkleLog(env)
    with env.begin() as txn:
        assert log.size(txn) == len(model)
        after = (log.root(txn), log.root(txn, 20), log.inclusion_proof(txn, 6, 30), log.consistency_proof(txn, 9))
    assert after == before
    more = leaves(len(model), 9)
    with env.begin(write=True) as txn:
        log.append(txn, more)
    with env.begin() as txn:
        assert log.root(txn) == root_from_leaf_hashes(model + more)
    env.close()


def test_a_read_only_environment_serves_proofs(tmp_path: Path) -> None:
    env = schema.open_env(tmp_path / "node", map_size=MAP_SIZE)
    model = append_in_batches(env, MerkleLog(env), [12])
    env.close()
    env = schema.open_env(tmp_path / "node", map_size=MAP_SIZE, readonly=True)
    log = MerkleLog(env)
    with env.begin() as txn:
        assert log.root(txn) == root_from_leaf_hashes(model)
        assert log.inclusion_proof(txn, 11) == inclusion_path(model, 11)
    env.close()


def test_an_aborted_transaction_leaves_nothing(env: lmdb.Environment) -> None:
    log = MerkleLog(env)
    model = append_in_batches(env, log, [7])
    txn = env.begin(write=True)
    log.append(txn, leaves(1000, 50))
    txn.abort()
    with pytest.raises(RuntimeError), env.begin(write=True) as txn:
        log.append(txn, leaves(2000, 50))
        raise RuntimeError("the block failed to commit")
    with env.begin() as txn:
        assert log.size(txn) == 7
        assert log.root(txn) == root_from_leaf_hashes(model)
    # The partly filled tile that the aborted appends rewrote is back as it was: new leaves hash correctly.
    more = leaves(7, 30)
    with env.begin(write=True) as txn:
        log.append(txn, more)
    with env.begin() as txn:
        assert log.root(txn) == root_from_leaf_hashes(model + more)


def test_proofs_stay_valid_after_a_buffers_transaction_ends(env: lmdb.Environment) -> None:
    log = MerkleLog(env)
    model = append_in_batches(env, log, [9])
    with env.begin(buffers=True) as txn:
        proof = log.inclusion_proof(txn, 2)
        root = log.root(txn)
    assert all(isinstance(p, bytes) for p in proof)
    verify_inclusion(model[2], 2, 9, proof, root)


def test_tiles_are_keyed_by_the_size_at_which_they_began(env: lmdb.Environment) -> None:
    log = MerkleLog(env)
    append_in_batches(env, log, [33])
    with env.begin() as txn:
        stored = list(txn.cursor(db=env.open_db(schema.LOG_NODES, txn=txn)))
    # Tile (0, 0) began at size 1, tile (1, 0) at 32 (its first node, level 5, completed), tile (0, 1) at 33.
    assert [schema.from_u64(key) for key, _ in stored] == [1, 32, 33]
    # Every tile has the same fixed length: 2^(H+1) - 2 hashes.
    assert {len(value) for _, value in stored} == {((1 << (DEFAULT_TILE_HEIGHT + 1)) - 2) * 32}


def test_wrong_size_leaf_hash_is_refused_before_anything_is_written(env: lmdb.Environment) -> None:
    log = MerkleLog(env)
    with env.begin(write=True) as txn:
        with pytest.raises(StorageError, match="leaf hash 1: expected 32 bytes, got 31"):
            log.append(txn, [leaf_hash(b"a"), b"\x00" * 31])
        assert log.size(txn) == 0


def test_opening_with_another_tile_height_is_refused(env: lmdb.Environment) -> None:
    append_in_batches(env, MerkleLog(env, tile_height=3), [4])
    with pytest.raises(StorageError, match="expected 5, the stored log uses 3"):
        MerkleLog(env, tile_height=5)
    with pytest.raises(ValueError, match="tile height"):
        MerkleLog(env, tile_height=0)


def test_appending_with_another_tile_height_is_refused(env: lmdb.Environment) -> None:
    three, five = MerkleLog(env, tile_height=3), MerkleLog(env)  # both opened while the log is empty
    append_in_batches(env, three, [4])
    with env.begin(write=True) as txn, pytest.raises(StorageError, match="stored log uses 3"):
        five.append(txn, leaves(4, 1))


def test_an_environment_without_the_log_databases_is_refused(tmp_path: Path) -> None:
    bare = lmdb.open(str(tmp_path / "bare"), max_dbs=4)
    with pytest.raises(StorageError, match=r"schema\.open_env"):
        MerkleLog(bare)
    bare.close()


def test_bad_arguments_are_refused_as_out_of_range(env: lmdb.Environment) -> None:
    log = MerkleLog(env)
    append_in_batches(env, log, [10])
    calls: dict[str, Callable[[lmdb.Transaction], object]] = {
        "leaf index: expected 0 <= index < 10, got 10": lambda txn: log.leaf_hash(txn, 10),
        "leaf index: expected 0 <= index < 10, got -1": lambda txn: log.leaf_hash(txn, -1),
        "tree size: expected 0 <= size <= 10, got 11": lambda txn: log.root(txn, 11),
        "tree size: expected 0 <= size <= 10, got -1": lambda txn: log.root(txn, -1),
        "expected 0 <= index < tree size 5, got 5": lambda txn: log.inclusion_proof(txn, 5, 5),
        "expected 0 <= index < tree size 0, got 0": lambda txn: log.inclusion_proof(txn, 0, 0),
        "expected 0 <= index < tree size 10, got -1": lambda txn: log.inclusion_proof(txn, -1),
        "got 11": lambda txn: log.inclusion_proof(txn, 0, 11),
        "expected 0 < size1 <= size2 = 4, got size1 = 5": lambda txn: log.consistency_proof(txn, 5, 4),
        "expected 0 < size1 <= size2 = 10, got size1 = 0": lambda txn: log.consistency_proof(txn, 0),
        "expected 0 < size1 <= size2 = 0, got size1 = 0": lambda txn: log.consistency_proof(txn, 0, 0),
        "size <= 10, got 12": lambda txn: log.consistency_proof(txn, 1, 12),
    }
    with env.begin() as txn:
        for message, call in calls.items():
            with pytest.raises(LogRangeError, match=message) as caught:
                call(txn)
            assert isinstance(caught.value, ValueError)
            assert isinstance(caught.value, CredledgerError)
            assert caught.value.code == "out-of-range"


@pytest.mark.parametrize("tile_height", [1, 3, DEFAULT_TILE_HEIGHT])
def test_node_hashes_are_the_complete_nodes_of_a_level(env: lmdb.Environment, tile_height: int) -> None:
    log = MerkleLog(env, tile_height=tile_height)
    model = append_in_batches(env, log, [300, 1, 211, 40])  # 552 leaves
    expected = hashes_from_leaves(model)
    with env.begin() as txn:
        for level in range(10):
            complete = len(model) >> level
            for start, end in [(0, complete), (1, complete), (complete // 2, complete), (0, 0), (3, 5)]:
                if start <= end <= complete:
                    assert log.node_hashes(txn, level, start, end) == list(expected(level, start, end))


def test_node_hashes_refuse_nodes_that_are_not_complete(env: lmdb.Environment) -> None:
    log = MerkleLog(env)
    append_in_batches(env, log, [10])
    with env.begin() as txn, pytest.raises(LogRangeError, match=r"nodes \[4, 6\) of level 1: not complete"):
        log.node_hashes(txn, 1, 4, 6)
