"""Bundles served with the parts shared at one height kept between requests are the bundles built afresh."""

from __future__ import annotations

import json
from pathlib import Path

import msgpack
import pytest

from credledger.ledger.bundle import Bundle, verify_bundle
from credledger.ledger.errors import StorageError
from credledger.ledger.events import Revoke
from credledger.ledger.state import cred_key
from credledger.ledger.storage.bundles import SharedParts, build_bundle, bundle_json, record_json
from credledger.ledger.storage.schema import SMT_LEAVES
from credledger.ledger.storage.store import Store
from tests.blocks import commit
from tests.factories import T0, Network, digest, issue, make_network, signed


def built(store: Store, network: Network, credential: bytes, shared: SharedParts | None) -> Bundle:
    with store.snapshot() as snap:
        return build_bundle(snap, credential, network.genesis.hash(), network.genesis.origin, shared)


def test_bundles_built_with_shared_parts_equal_fresh_ones_at_every_height(tmp_path: Path) -> None:
    network = make_network(4)
    m0, m1 = network["m0.test"], network["m1.test"]
    store = Store(tmp_path / "ledger")
    store.initialize(network.genesis)
    shared = SharedParts()
    try:
        commit(store, network, issue(m0, digest("a")), issue(m1, digest("b")), issue(m0, digest("c")))
        first = [built(store, network, digest(name), shared) for name in ("a", "b", "c", "absent")]
        assert first == [built(store, network, digest(name), None) for name in ("a", "b", "c", "absent")]
        assert first[0].member == first[2].member and first[0].member != first[1].member

        # A new height: the shared parts follow it (new checkpoint, header and proofs against the new state).
        commit(store, network, signed(Revoke(digest("a"), 0), m0.issuer, time_ms=T0 + 1))
        again = built(store, network, digest("c"), shared)
        assert again == built(store, network, digest("c"), None)
        assert again.checkpoint != first[2].checkpoint and again.header != first[2].header
        revoked = built(store, network, digest("a"), shared)
        assert verify_bundle(revoked, network.genesis, now_ms=T0 + 10_000).status == "revoked"
        assert verify_bundle(again, network.genesis, now_ms=T0 + 10_000).status == "valid"
    finally:
        store.close()


def test_bundle_json_is_the_compact_json_of_the_bundle_built_afresh(tmp_path: Path) -> None:
    network = make_network(4)
    m0, m1 = network["m0.test"], network["m1.test"]
    store = Store(tmp_path / "ledger")
    store.initialize(network.genesis)
    shared = SharedParts()
    names = ("a", "b", "c", "absent")
    genesis_hash, origin = network.genesis.hash(), network.genesis.origin
    try:
        commit(store, network, issue(m0, digest("a")), issue(m1, digest("b")), issue(m0, digest("c")))
        for height in (1, 2):
            if height == 2:
                commit(store, network, signed(Revoke(digest("a"), 0), m0.issuer, time_ms=T0 + 1))
            for name in names * 2:  # the second time from the text kept
                with store.snapshot() as snap:
                    served = bundle_json(snap, digest(name), genesis_hash, origin, shared)
                fresh = built(store, network, digest(name), None)
                assert served == json.dumps(fresh.to_json(), separators=(",", ":")).encode()
                assert Bundle.from_json(served) == fresh
        with store.snapshot() as snap:
            revoked = Bundle.from_json(bundle_json(snap, digest("a"), genesis_hash, origin, shared))
        assert verify_bundle(revoked, network.genesis, now_ms=T0 + 10_000).status == "revoked"
    finally:
        store.close()


def test_bundle_text_kept_across_empty_blocks_is_the_bundle_built_afresh_at_each_height(tmp_path: Path) -> None:
    network = make_network(4)
    m0 = network["m0.test"]
    store = Store(tmp_path / "ledger")
    store.initialize(network.genesis)
    shared = SharedParts(own_texts=4)  # two kept per generation: the third digest pushes the first to the older
    genesis_hash, origin = network.genesis.hash(), network.genesis.origin
    try:
        commit(store, network, issue(m0, digest("a")), issue(m0, digest("b")), issue(m0, digest("c")))
        served: dict[int, bytes] = {}
        for height in (1, 2, 3):
            if height > 1:
                commit(store, network)  # an empty block: the same state root and log, a new checkpoint and header
            for name in ("a", "b", "c", "absent", "a", "c"):
                with store.snapshot() as snap:
                    text = bundle_json(snap, digest(name), genesis_hash, origin, shared)
                fresh = built(store, network, digest(name), None)
                assert text == json.dumps(fresh.to_json(), separators=(",", ":")).encode()
                served[height] = text
        assert len({Bundle.from_json(text).checkpoint for text in served.values()}) == 3
        with store.snapshot() as snap:
            assert len({(snap.header(h).state_root, snap.header(h).log_size) for h in (1, 2, 3)}) == 1
    finally:
        store.close()


def test_bundle_json_serves_the_note_it_is_given_for_the_certificate(tmp_path: Path) -> None:
    network = make_network(4)
    store = Store(tmp_path / "ledger")
    store.initialize(network.genesis)
    shared = SharedParts()
    try:
        commit(store, network, issue(network["m0.test"], digest("a")))
        genesis_hash, origin = network.genesis.hash(), network.genesis.origin
        with store.snapshot() as snap:
            plain = Bundle.from_json(bundle_json(snap, digest("a"), genesis_hash, origin, shared))
            served = bundle_json(
                snap, digest("a"), genesis_hash, origin, shared, cosigned=lambda height, note: f"{note}#{height}"
            )
            marked = Bundle.from_json(served)
        assert marked.checkpoint == f"{plain.checkpoint}#1"
        assert plain.checkpoint == built(store, network, digest("a"), None).checkpoint
    finally:
        store.close()


@pytest.mark.parametrize(
    "damaged",
    [
        b"\xc1",  # not msgpack
        b"\x91\xa1x",  # an array too short to be a credential record
        msgpack.packb(["m0.test", b"k", "not an index", None, 0]),
        msgpack.packb(["m0.test", b"k", 1 << 40, None, 0]),  # an index past the end of the log
    ],
)
def test_a_damaged_credential_record_in_the_store_is_a_storage_error_naming_it(tmp_path: Path, damaged: bytes) -> None:
    network = make_network(4)
    m0 = network["m0.test"]
    store = Store(tmp_path / "ledger")
    store.initialize(network.genesis)
    shared = SharedParts()
    genesis_hash, origin = network.genesis.hash(), network.genesis.origin
    try:
        commit(store, network, issue(m0, digest("a")))
        commit(store, network)  # the record is also read at an older height, strictly decoded
        # Damage the value in the credential's leaf record (stored as 0x02 || key || value).
        nodes = store.env.open_db(SMT_LEAVES, create=False)
        with store.env.begin(write=True) as txn:
            key = cred_key(digest("a"))
            for ref, record in list(txn.cursor(db=nodes)):
                if record[0] == 0x02 and record[1:33] == key:
                    txn.put(ref, record[:33] + damaged, db=nodes)
        expected = f"record of credential {digest('a').hex()} is not a credential record"
        with store.snapshot() as snap:
            with pytest.raises(StorageError, match=expected):
                bundle_json(snap, digest("a"), genesis_hash, origin, shared)
            with pytest.raises(StorageError, match=expected):
                record_json(snap, [digest("b"), digest("a")], genesis_hash, origin)
            for height in (1, 2):
                with pytest.raises(StorageError, match=expected):
                    build_bundle(snap, digest("a"), genesis_hash, origin, height=height)
            # Other credentials are served as before.
            assert Bundle.from_json(bundle_json(snap, digest("b"), genesis_hash, origin, shared)).events == ()
    finally:
        store.close()
