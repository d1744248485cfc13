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
from credledger.ledger.storage.schema import (
    SMT_DEPTHS,
    SMT_LEAVES,
    SMT_NODES,
    SMT_REPLACED,
    SMT_ROOTS,
    from_u64,
    open_env,
)
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


def state_tables(env: lmdb.Environment, txn: lmdb.Transaction[bytes]) -> dict[int, lmdb._Database]:
    """The state map's node databases by the group a ref names (its first byte): 0 for SMT_NODES, 0x80 the leaves,
    0x81 + d the internal nodes at depth d (the last one every depth from its own down)."""
    groups = {0: env.open_db(SMT_NODES, txn=txn, create=False), 0x80: env.open_db(SMT_LEAVES, txn=txn, create=False)}
    for depth, name in enumerate(SMT_DEPTHS):
        groups[0x81 + depth] = env.open_db(name, txn=txn, create=False)
    return groups


def stored_refs(env: lmdb.Environment, txn: lmdb.Transaction[bytes]) -> set[bytes]:
    """The refs of every state node stored, each checked to be in its group's database."""
    refs: set[bytes] = set()
    for group, db in state_tables(env, txn).items():
        keys = {bytes(k) for k in txn.cursor(db=db).iternext(values=False)}
        assert all((ref[0] if ref[0] >= 0x80 else 0) == group for ref in keys), f"a ref of another group in {group}"
        refs |= keys
    return refs


def reachable(env: lmdb.Environment, txn: lmdb.Transaction[bytes], roots: list[bytes]) -> set[bytes]:
    """Every node ref reachable from `roots`, read straight from the node tables; each node grouped (a ref's first
    byte 0x80 or more) must be in the group of its kind and depth."""
    tables = state_tables(env, txn)
    last = 0x81 + len(SMT_DEPTHS) - 1
    seen: set[bytes] = set()
    stack = [(r, 0) for r in roots if r != EMPTY_REF]
    while stack:
        ref, depth = stack.pop()
        if ref in seen:
            continue
        seen.add(ref)
        group = ref[0]
        record = txn.get(ref, db=tables[group if group >= 0x80 else 0])
        assert record is not None, f"node {ref.hex()} of a kept version is missing"
        if group >= 0x80:
            expected = 0x80 if record[0] == 0x02 else min(0x81 + depth, last)
            assert group == expected, f"node {ref.hex()} at depth {depth} is in group {group:#x}, not {expected:#x}"
        if record[0] == 0x03:
            stack.extend((child, depth + 1) for child in (record[1:41], record[41:81]) if child != EMPTY_REF)
    return seen


def check_history(env: lmdb.Environment, smap: StateMap, models: list[Model], oldest: int) -> None:
    latest = len(models) - 1
    nodes = env.open_db(SMT_NODES, create=False)
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
        # Nodes of versions from `grouped_from` on are stored by group; those of earlier versions in SMT_NODES.
        for ref, _ in txn.cursor(db=nodes):
            assert from_u64(ref[:8]) < smap.grouped_from
        assert stored_refs(env, txn) == reachable(env, txn, kept_roots)
        # Journals are kept only for versions whose replaced nodes a kept version still holds.
        assert all(oldest < from_u64(k) <= latest for k in txn.cursor(db=journal).iternext(values=False))


@settings(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(batch, min_size=1, max_size=14), history=st.integers(1, 5), grouped_from=st.integers(0, 15))
def test_kept_versions_prove_every_key_and_nothing_unreachable_is_stored(
    batches: list[dict[bytes, bytes | None]], history: int, grouped_from: int
) -> None:
    # `grouped_from`: the first version storing nodes by group, as in a store upgraded from schema 1 (0: a new one).
    with fresh_env() as env:
        smap = StateMap(env, cache_size=64, history=history)
        smap.grouped_from = grouped_from
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
