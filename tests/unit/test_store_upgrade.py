"""A store of schema 1, which kept every state-map node in one table: a node opening it upgrades it in place (later
versions store their nodes by group: leaves, internal nodes by depth), every height stays provable, and an audit of
the data directory -- before and after the upgrade -- compares the node's records byte for byte and still catches an
altered one."""

from __future__ import annotations

from pathlib import Path

import lmdb
import pytest

from credledger.ledger import smt
from credledger.ledger.events import Revoke
from credledger.ledger.state import cred_key
from credledger.ledger.storage import schema
from credledger.ledger.storage.statemap import StateMap
from credledger.ledger.storage.store import Store
from tests.blocks import commit
from tests.factories import Network, digest, issue, make_network, signed
from tests.unit.test_audit import run_audit

#: The heights the schema-1 store holds: issues, then a revocation.
OLD_HEIGHT = 2


@pytest.fixture(scope="module")
def network() -> Network:
    return make_network(4)


def schema_1_store(path: Path, network: Network) -> None:
    """A data directory as schema 1 wrote it: every state node in SMT_NODES under its plain ref, no other tables."""
    store = Store(path)
    store.initialize(network.genesis, state_grouped_from=schema.NEVER_GROUPED)
    m0 = network["m0.test"]
    commit(store, network, *(issue(m0, digest(f"c{i}")) for i in range(20)))
    commit(store, network, signed(Revoke(digest("c1"), 4), m0.issuer))
    env = store.env
    with env.begin(write=True) as txn:
        mark_schema_1(env, txn)
        for name in (schema.SMT_LEAVES, *schema.SMT_DEPTHS):
            txn.drop(env.open_db(name, txn=txn), delete=True)
    store.close()


def mark_schema_1(env: lmdb.Environment, txn: lmdb.Transaction[bytes]) -> None:
    """Mark a store as schema 1 wrote it: schema 1, and no record of a first version grouped."""
    meta = env.open_db(schema.CHAIN_META, txn=txn)
    txn.put(schema.SCHEMA_KEY, schema.u64(1), db=meta)
    txn.delete(schema.GROUPED_KEY, db=meta)


def node_versions(path: Path, db_names: tuple[bytes, ...]) -> dict[int, set[int]]:
    """Per record tag (2 leaf, 3 internal), the versions of the refs in some node tables (their group cleared)."""
    env = schema.open_env(path)
    found: dict[int, set[int]] = {}
    with env.begin() as txn:
        for name in db_names:
            for ref, record in txn.cursor(db=env.open_db(name, txn=txn)):
                found.setdefault(record[0], set()).add(schema.from_u64(b"\x00" + ref[1:8]))
    env.close()
    return found


def test_an_upgraded_store_keeps_old_nodes_in_place_and_audits_clean(tmp_path: Path, network: Network) -> None:
    path = tmp_path / "ledger"
    schema_1_store(path, network)
    assert run_audit(path, network, tmp_path / "before").clean

    store = Store(path)
    m0 = network["m0.test"]
    try:
        commit(store, network, *(issue(m0, digest(f"n{i}")) for i in range(10)))
        # A revocation replaces a leaf schema 1 wrote; a new leaf of a credential issued then sits beside old ones.
        commit(store, network, signed(Revoke(digest("c2"), 4), m0.issuer), signed(Revoke(digest("n3"), 4), m0.issuer))
        with store.env.begin() as txn:
            meta = store.env.open_db(schema.CHAIN_META, txn=txn)
            assert schema.from_u64(txn.get(schema.SCHEMA_KEY, db=meta) or b"") == schema.SCHEMA_VERSION
            assert schema.grouped_from(txn, meta) == OLD_HEIGHT + 1
        with store.snapshot() as snap:
            for height in range(OLD_HEIGHT + 3):
                root = snap.state_root(height)
                for name in ("c0", "c1", "c2", "n3"):
                    value, proof = snap.prove_state(cred_key(digest(name)), height)
                    smt.verify_proof(root, cred_key(digest(name)), value, proof)
            assert snap.prove_state(cred_key(digest("c2")))[0] != snap.prove_state(cred_key(digest("c2")), 2)[0]
    finally:
        store.close()

    # The new versions' nodes are grouped, leaves and internal nodes by depth; schema 1's stay in SMT_NODES.
    leaves = node_versions(path, (schema.SMT_LEAVES,))
    internal = node_versions(path, schema.SMT_DEPTHS)
    kept = node_versions(path, (schema.SMT_NODES,))
    assert set(leaves) == {0x02} and leaves[0x02] == {OLD_HEIGHT + 1, OLD_HEIGHT + 2}
    assert set(internal) == {0x03} and internal[0x03] == {OLD_HEIGHT + 1, OLD_HEIGHT + 2}
    assert kept[0x02] | kept[0x03] <= set(range(OLD_HEIGHT + 1))
    for workers in (0, 2):
        result = run_audit(path, network, tmp_path / f"after-{workers}", workers=workers)
        assert result.clean, result.discrepancy
        assert result.height == OLD_HEIGHT + 2 and result.credentials["revoked"] == 3


def test_an_altered_leaf_of_schema_1_is_still_caught_at_its_block(tmp_path: Path, network: Network) -> None:
    path = tmp_path / "ledger"
    schema_1_store(path, network)
    Store(path).close()  # upgraded, nothing more written
    env = schema.open_env(path)
    nodes = env.open_db(schema.SMT_NODES)
    with env.begin(write=True) as txn:
        victim = next(ref for ref, record in txn.cursor(db=nodes) if record[0] == 0x02 and ref[:8] == schema.u64(1))
        record = bytearray(txn.get(victim, db=nodes) or b"")
        record[-1] ^= 1
        txn.put(victim, bytes(record), db=nodes)
    env.close()
    result = run_audit(path, network, tmp_path / "state")
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (1, "state-node")


def test_a_resumed_audit_begins_afresh_when_its_replay_groups_nodes_otherwise(tmp_path: Path, network: Network) -> None:
    path, state = tmp_path / "ledger", tmp_path / "state"
    schema_1_store(path, network)
    assert run_audit(path, network, state).clean  # its replay keeps every node in one table, as the node did
    store = Store(path)  # upgraded: its next blocks store their nodes by group, as that replay would not
    try:
        commit(store, network, issue(network["m0.test"], digest("late")))
    finally:
        store.close()
    result = run_audit(path, network, state, resume=True)
    assert result.clean, result.discrepancy
    assert (result.from_height, result.height) == (0, OLD_HEIGHT + 1)


def test_a_resumed_audit_begins_afresh_when_its_replay_is_of_schema_1(tmp_path: Path, network: Network) -> None:
    path, state = tmp_path / "ledger", tmp_path / "state"
    schema_1_store(path, network)  # never opened by a node since: every node, old and new, in one table
    assert run_audit(path, network, state, to=1).clean
    # The replay as an earlier credledger left it: schema 1. Opened to go on, it would be upgraded and group its next
    # blocks' nodes, which the node stored in one table.
    env = schema.open_env(state / "replay")
    with env.begin(write=True) as txn:
        mark_schema_1(env, txn)
    env.close()
    result = run_audit(path, network, state, resume=True)
    assert result.clean, result.discrepancy
    assert (result.from_height, result.height) == (0, OLD_HEIGHT)


def test_a_state_version_beyond_seven_bytes_is_refused(tmp_path: Path) -> None:
    env = schema.open_env(tmp_path / "env")
    try:
        smap = StateMap(env)  # before the write transaction: opening its databases takes the write lock
        with env.begin(write=True) as txn, pytest.raises(ValueError, match=r"in \[0, 2\*\*56\)"):
            smap.update(txn, 1 << 56, {bytes(32): b"x"})
    finally:
        env.close()
