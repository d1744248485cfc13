"""A bounded state history against a model: every kept version proves every key, and nothing else is stored.

Random batch histories over keys that part at every depth (the pool of `test_smt_properties`), committed one
version per transaction with `prune` in the same transaction, as the store does. After every commit, the versions
kept are exactly the last `history` ones, each proves every key of the pool against the from-scratch reference
root, older versions are refused with `StatePruned`, and the stored nodes are exactly the nodes reachable from the
kept roots: no garbage is left beyond the history, and nothing a kept version needs is gone.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lmdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credledger.ledger.errors import StatePruned
from credledger.ledger.smt import verify_proof
from credledger.ledger.storage.schema import SMT_LEAVES, SMT_NODES, SMT_REPLACED, SMT_ROOTS, from_u64, open_env
from credledger.ledger.storage.smtupdate import EMPTY_REF
from credledger.ledger.storage.statemap import StateMap
from tests.property.test_smt_properties import MAP_SIZE, POOL, batch, reference_root

Model = dict[bytes, bytes]


@contextmanager
def fresh_env() -> Iterator[lmdb.Environment]:
    with tempfile.TemporaryDirectory() as tmp:
        env = open_env(Path(tmp), map_size=MAP_SIZE)
        try:
            yield env
        finally:
            env.close()


def commit(env: lmdb.Environment, smap: StateMap, version: int, changes: dict[bytes, bytes | None]) -> None:
    with env.begin(write=True) as txn:
        smap.update(txn, version, changes)
        smap.prune(txn)


def applied(model: Model, changes: dict[bytes, bytes | None]) -> Model:
    out = dict(model)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def reachable(
    txn: lmdb.Transaction[bytes], nodes: lmdb._Database, leaves: lmdb._Database, roots: list[bytes]
) -> set[bytes]:
    """Every node ref reachable from `roots`, read straight from the node tables (a ref with its first bit set
    names a leaf stored apart)."""
    seen: set[bytes] = set()
    stack = [r for r in roots if r != EMPTY_REF]
    while stack:
        ref = stack.pop()
        if ref in seen:
            continue
        seen.add(ref)
        record = txn.get(ref, db=leaves if ref[0] & 0x80 else nodes)
        assert record is not None, f"node {ref.hex()} of a kept version is missing"
        assert record[0] == 0x02 or not ref[0] & 0x80, f"internal node {ref.hex()} is named as a leaf"
        if record[0] == 0x03:
            stack.extend(child for child in (record[1:41], record[41:81]) if child != EMPTY_REF)
    return seen


def check_history(env: lmdb.Environment, smap: StateMap, models: list[Model], oldest: int) -> None:
    latest = len(models) - 1
    nodes = env.open_db(SMT_NODES, create=False)
    leaves = env.open_db(SMT_LEAVES, create=False)
    roots_db = env.open_db(SMT_ROOTS, create=False)
    journal = env.open_db(SMT_REPLACED, create=False)
    with env.begin() as txn:
        assert smap.oldest_version(txn) == oldest
        assert smap.latest_version(txn) == latest
        for version in range(oldest, latest + 1):
            model = models[version]
            root = smap.root(txn, version)
            assert root == reference_root(model)
            for key in POOL:
                value, proof = smap.get_proven(txn, key, version)
                assert value == model.get(key)
                verify_proof(root, key, value, proof)
        for version in range(oldest):
            with pytest.raises(StatePruned) as refused:
                smap.prove(txn, POOL[0], version)
            assert refused.value.oldest == oldest
        kept_roots = [bytes(v) for _, v in txn.cursor(db=roots_db)]
        assert len(kept_roots) == latest - oldest + 1
        stored = {bytes(k) for k in txn.cursor(db=nodes).iternext(values=False)}
        stored_apart = {bytes(k) for k in txn.cursor(db=leaves).iternext(values=False)}
        assert all(ref[0] & 0x80 for ref in stored_apart) and not any(ref[0] & 0x80 for ref in stored)
        # Leaves of versions from `leaves_apart_from` on are stored apart; those of earlier versions are not.
        for ref, record in txn.cursor(db=nodes):
            assert record[0] == 0x03 or from_u64(ref[:8]) < smap.leaves_apart_from
        assert stored | stored_apart == reachable(txn, nodes, leaves, kept_roots)
        # Journals are kept only for versions whose replaced nodes a kept version still holds.
        assert all(oldest < from_u64(k) <= latest for k in txn.cursor(db=journal).iternext(values=False))


@settings(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(batch, min_size=1, max_size=14), history=st.integers(1, 5), apart=st.integers(0, 15))
def test_kept_versions_prove_every_key_and_nothing_unreachable_is_stored(
    batches: list[dict[bytes, bytes | None]], history: int, apart: int
) -> None:
    # `apart`: the first version storing its leaves apart, as in a store upgraded from schema 1 (0: a new store).
    with fresh_env() as env:
        smap = StateMap(env, cache_size=64, history=history)
        smap.leaves_apart_from = apart
        models: list[Model] = []
        for version, changes in enumerate(batches):
            models.append(applied(models[-1] if models else {}, changes))
            commit(env, smap, version, changes)
            check_history(env, smap, models, max(0, version - history + 1))


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(batch, min_size=2, max_size=40),
    before=st.integers(3, 12),
    after=st.integers(1, 2),
    switch=st.integers(1, 39),
)
def test_a_shorter_history_is_caught_up_a_bounded_step_at_a_time(
    batches: list[dict[bytes, bytes | None]], before: int, after: int, switch: int
) -> None:
    # Then blocks that change nothing, until the backlog is worked off (each forgets one version more than it adds).
    switch = min(switch, len(batches) - 1)
    batches = batches + [{}] * before
    with fresh_env() as env:
        models: list[Model] = []
        smap = StateMap(env, cache_size=64, history=before)
        oldest = 0
        for version, changes in enumerate(batches):
            if version == switch:
                smap = StateMap(env, cache_size=64, history=after)
            models.append(applied(models[-1] if models else {}, changes))
            commit(env, smap, version, changes)
            with env.begin() as txn:
                found = smap.oldest_version(txn)
            assert found is not None and oldest <= found <= max(0, version - min(before, after) + 1)
            oldest = found
            check_history(env, smap, models, oldest)
        assert oldest == len(batches) - after
