"""The state map against a plain dict model and a from-scratch reference tree, over random batch histories.

The reference below is written straight from DESIGN §5 and shares no code with `ledger.smt` or
`ledger.storage.statemap`, so agreement on roots means both follow the design, not each other.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import lmdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credledger.ledger.errors import VerificationError
from credledger.ledger.smt import ProofLeaf, StateProof, verify_proof
from credledger.ledger.storage.schema import open_env
from credledger.ledger.storage.statemap import StateMap

MAP_SIZE = 1 << 26


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def reference_root(items: dict[bytes, bytes], depth: int = 0) -> bytes:
    """The DESIGN §5 root of `items`: empty = zeros, a lone leaf stands for its subtree, else hash both halves."""
    if not items:
        return bytes(32)
    if len(items) == 1:
        ((key, value),) = items.items()
        return sha(b"\x02" + key + sha(value))
    left = {k: v for k, v in items.items() if not (k[depth // 8] >> (7 - depth % 8)) & 1}
    right = {k: v for k, v in items.items() if k not in left}
    return sha(b"\x03" + reference_root(left, depth + 1) + reference_root(right, depth + 1))


def flip(data: bytes, bit: int) -> bytes:
    """`data` with bit number `bit` (0 = most significant bit of the first byte) inverted."""
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


# Keys that exercise every depth: random ones, and a family around one base key that part from it at the first,
# middle and last bits (and pairs of bits), so subtrees are built and collapsed deep down as well as near the root.
_BASE = sha(b"property base key")
POOL = sorted(
    {
        _BASE,
        *(flip(_BASE, b) for b in (0, 1, 2, 7, 8, 100, 200, 254, 255)),
        *(flip(flip(_BASE, 255), b) for b in (3, 128, 254)),
        *(sha(bytes([i])) for i in range(14)),
    }
)

keys = st.sampled_from(POOL)
values = st.binary(max_size=6)
batch = st.dictionaries(keys, st.none() | values, max_size=12)
histories = st.lists(batch, min_size=1, max_size=8)


@contextmanager
def fresh_map() -> Iterator[tuple[lmdb.Environment, StateMap]]:
    with tempfile.TemporaryDirectory() as tmp:
        env = open_env(Path(tmp), map_size=MAP_SIZE)
        try:
            yield env, StateMap(env, cache_size=64)
        finally:
            env.close()


def apply_history(
    env: lmdb.Environment, smap: StateMap, history: list[dict[bytes, bytes | None]], one_txn: bool
) -> list[dict[bytes, bytes]]:
    """Write each batch as the next version (all in one transaction, or one each); return the model per version."""
    models: list[dict[bytes, bytes]] = []
    model: dict[bytes, bytes] = {}
    txn = env.begin(write=True) if one_txn else None
    for version, changes in enumerate(history):
        if txn is None:
            with env.begin(write=True) as own:
                smap.update(own, version, changes)
        else:
            smap.update(txn, version, changes)
        for key, value in changes.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        models.append(dict(model))
    if txn is not None:
        txn.commit()
    return models


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories, one_txn=st.booleans())
def test_map_matches_the_model_at_every_version(history: list[dict[bytes, bytes | None]], one_txn: bool) -> None:
    with fresh_map() as (env, smap):
        models = apply_history(env, smap, history, one_txn)
        with env.begin() as txn:
            assert smap.latest_version(txn) == len(history) - 1
            for version, model in enumerate(models):
                root = smap.root(txn, version)
                assert root == reference_root(model)
                assert dict(smap.items(txn, version)) == model
                for key in POOL:
                    assert smap.get(txn, key, version) == model.get(key)
                    assert smap.get_proven(txn, key, version)[0] == model.get(key)
                    verify_proof(root, key, model.get(key), smap.prove(txn, key, version))


def assert_rejected(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> None:
    with pytest.raises(VerificationError):
        verify_proof(root, key, value, proof)


@settings(deadline=None, max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories, data=st.data())
def test_every_single_bit_flip_is_caught(history: list[dict[bytes, bytes | None]], data: st.DataObject) -> None:
    with fresh_map() as (env, smap):
        model = apply_history(env, smap, history, one_txn=False)[-1]
        with env.begin() as txn:
            root = smap.root(txn)
            for key in data.draw(st.lists(keys, min_size=1, max_size=3, unique=True), label="keys"):
                value = model.get(key)
                proof = smap.prove(txn, key)
                verify_proof(root, key, value, proof)
                for bit in range(256):
                    assert_rejected(flip(root, bit), key, value, proof)
                # Every sibling, at a bit Hypothesis picks (all 256 bits of all siblings would be 65,536 checks).
                for i in range(len(proof.siblings)):
                    bit = data.draw(st.integers(0, 255), label=f"sibling {i} bit")
                    siblings = list(proof.siblings)
                    siblings[i] = flip(siblings[i], bit)
                    assert_rejected(root, key, value, replace(proof, siblings=tuple(siblings)))
                if proof.leaf is not None:
                    for bit in range(256):
                        assert_rejected(root, key, value, replace(proof, leaf=flip_leaf(proof.leaf, "key", bit)))
                        assert_rejected(root, key, value, replace(proof, leaf=flip_leaf(proof.leaf, "value_hash", bit)))
                if value is None:
                    assert_rejected(root, key, data.draw(values, label="claimed value"), proof)
                else:
                    for bit in range(8 * len(value)):
                        assert_rejected(root, key, flip(value, bit), proof)
                    assert_rejected(root, key, value + b"\x00", proof)
                    assert_rejected(root, key, None, proof)


def flip_leaf(leaf: ProofLeaf, field: str, bit: int) -> ProofLeaf:
    return replace(leaf, **{field: flip(getattr(leaf, field), bit)})
