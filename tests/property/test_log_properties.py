"""The LMDB Merkle log against a plain list of leaf hashes, and tampering against the verifiers."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credledger.ledger.errors import VerificationError
from credledger.ledger.merkle import (
    consistency_path,
    inclusion_path,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from credledger.ledger.storage import schema
from credledger.ledger.storage.log import MerkleLog

MAP_SIZE = 1 << 26
TILE_HEIGHTS = st.sampled_from([1, 2, 3, 5])

# One step: the batch sizes appended in one write transaction, and whether that transaction commits.
STEP = st.tuples(st.lists(st.integers(0, 40), min_size=1, max_size=3), st.booleans())


@contextmanager
def fresh_log(tile_height: int) -> Iterator[tuple[lmdb.Environment, MerkleLog]]:
    with tempfile.TemporaryDirectory() as directory:
        env = schema.open_env(directory, map_size=MAP_SIZE)
        try:
            yield env, MerkleLog(env, tile_height=tile_height)
        finally:
            env.close()


def leaves(tag: str, start: int, count: int) -> list[bytes]:
    return [leaf_hash(f"{tag}/{i}".encode()) for i in range(start, start + count)]


def flips(value: bytes) -> Iterator[bytes]:
    """Every value that differs from `value` in exactly one bit."""
    for position in range(len(value) * 8):
        changed = bytearray(value)
        changed[position // 8] ^= 1 << (position % 8)
        yield bytes(changed)


@settings(max_examples=60, deadline=None)
@given(tile_height=TILE_HEIGHTS, steps=st.lists(STEP, min_size=1, max_size=10), data=st.data())
def test_log_agrees_with_a_list_model(
    tile_height: int, steps: list[tuple[list[int], bool]], data: st.DataObject
) -> None:
    with fresh_log(tile_height) as (env, log):
        model: list[bytes] = []
        for number, (batches, commit) in enumerate(steps):
            pending = list(model)
            txn = env.begin(write=True)
            for count in batches:
                # Tagged by step, so leaves from an aborted step never equal the ones that replace them.
                batch = leaves(f"step {number}", len(pending), count)
                assert log.append(txn, batch) == len(pending) + count
                pending += batch
            if commit:
                txn.commit()
                model = pending
            else:
                txn.abort()
            with env.begin() as read:
                assert log.size(read) == len(model)
                assert log.root(read) == root_from_leaf_hashes(model)

        with env.begin() as txn:
            for size in range(len(model) + 1):
                assert log.root(txn, size) == root_from_leaf_hashes(model[:size])
            if not model:
                return
            for _ in range(10):
                size = data.draw(st.integers(1, len(model)), label="size")
                index = data.draw(st.integers(0, size - 1), label="index")
                proof = log.inclusion_proof(txn, index, size)
                assert proof == inclusion_path(model[:size], index)
                verify_inclusion(model[index], index, size, proof, log.root(txn, size))

                size1 = data.draw(st.integers(1, size), label="size1")
                proof = log.consistency_proof(txn, size1, size)
                assert proof == consistency_path(model[:size], size1)
                verify_consistency(size1, size, proof, log.root(txn, size1), log.root(txn, size))


@st.composite
def log_and_sizes(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(tile height, log size, a leaf index below some size, that size)."""
    total = draw(st.integers(1, 300))
    size = draw(st.integers(1, total))
    return draw(TILE_HEIGHTS), total, draw(st.integers(0, size - 1)), size


@settings(max_examples=30, deadline=None)
@given(case=log_and_sizes())
def test_every_single_bit_flip_of_an_inclusion_proof_is_caught(case: tuple[int, int, int, int]) -> None:
    tile_height, total, index, size = case
    model = leaves("entry", 0, total)
    with fresh_log(tile_height) as (env, log):
        with env.begin(write=True) as txn:
            log.append(txn, model)
        with env.begin() as txn:
            proof = log.inclusion_proof(txn, index, size)
            root = log.root(txn, size)
    verify_inclusion(model[index], index, size, proof, root)

    for bad_leaf in flips(model[index]):
        with pytest.raises(VerificationError):
            verify_inclusion(bad_leaf, index, size, proof, root)
    for bad_root in flips(root):
        with pytest.raises(VerificationError):
            verify_inclusion(model[index], index, size, proof, bad_root)
    for position, element in enumerate(proof):
        for bad_element in flips(element):
            bad_proof = [*proof[:position], bad_element, *proof[position + 1 :]]
            with pytest.raises(VerificationError):
                verify_inclusion(model[index], index, size, bad_proof, root)


@settings(max_examples=30, deadline=None)
@given(case=log_and_sizes())
def test_every_single_bit_flip_of_a_consistency_proof_is_caught(case: tuple[int, int, int, int]) -> None:
    # Reuse the drawn (index, size) as (size1 - 1, size2).
    tile_height, total, index, size2 = case
    size1 = index + 1
    model = leaves("entry", 0, total)
    with fresh_log(tile_height) as (env, log):
        with env.begin(write=True) as txn:
            log.append(txn, model)
        with env.begin() as txn:
            proof = log.consistency_proof(txn, size1, size2)
            root1, root2 = log.root(txn, size1), log.root(txn, size2)
    verify_consistency(size1, size2, proof, root1, root2)

    for bad_root in flips(root1):
        with pytest.raises(VerificationError):
            verify_consistency(size1, size2, proof, bad_root, root2)
    for bad_root in flips(root2):
        with pytest.raises(VerificationError):
            verify_consistency(size1, size2, proof, root1, bad_root)
    for position, element in enumerate(proof):
        for bad_element in flips(element):
            bad_proof = [*proof[:position], bad_element, *proof[position + 1 :]]
            with pytest.raises(VerificationError):
                verify_consistency(size1, size2, bad_proof, root1, root2)
