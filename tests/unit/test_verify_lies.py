"""More ways a bundle can lie, beyond `test_proof.py`: each is caught and named by the step that fails.

Some lies need the validators themselves to certify what the rules forbid (a signature never checked, a state
map written by hand); the test holds their keys, and the verifier must refuse all the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from credledger.ledger import codec
from credledger.ledger.block import decode_header
from credledger.ledger.bundle import Bundle, ProofError, StateEntry, verify_bundle
from credledger.ledger.events import KeyRetire, MemberAdd, MemberRemove, Revoke
from credledger.ledger.state import IssuerKeyRecord
from credledger.ledger.storage.store import Store
from credledger.verifier.credential import verify_credential
from tests.blocks import certify, commit, next_block
from tests.factories import Network, by_governance, digest, issue, make_member, make_network, signed
from tests.forge import bundle_of, certify_header, commit_unchecked, forge_key_record, with_bad_signature


@pytest.fixture
def network() -> Network:
    return make_network(4)


@pytest.fixture
def store(tmp_path: Path, network: Network) -> Iterator[Store]:
    s = Store(tmp_path / "ledger")
    s.initialize(network.genesis)
    yield s
    s.close()


def expect_step(bundle: Bundle, network: Network, step: str) -> ProofError:
    with pytest.raises(ProofError) as info:
        verify_bundle(bundle, network.genesis)
    assert info.value.step == step, str(info.value)
    return info.value


def test_tampered_issue_event_bytes_are_caught(store: Store, network: Network) -> None:
    commit(store, network, issue(network["m0.test"], digest("a")))
    bundle = bundle_of(store, network, digest("a"))
    event = bytearray(bundle.events[0].event)
    event[-70] ^= 0x01  # inside the signature: the event still decodes, but is not the leaf the log holds
    lying = dataclasses.replace(bundle, events=(dataclasses.replace(bundle.events[0], event=bytes(event)),))
    assert "expected root" in str(expect_step(lying, network, "inclusion"))


def test_an_issue_signature_that_does_not_verify_is_caught_even_when_certified(store: Store, network: Network) -> None:
    commit_unchecked(store, network, with_bad_signature(issue(network["m0.test"], digest("a"))))
    bundle = bundle_of(store, network, digest("a"))
    assert "does not verify" in str(expect_step(bundle, network, "issue-signature"))


def test_issuer_key_retired_before_the_issue_is_caught(tmp_path: Path, store: Store, network: Network) -> None:
    m0 = network["m0.test"]
    commit(store, network)
    commit(store, network, issue(m0, digest("a")))  # issued at height 2
    bundle = bundle_of(store, network, digest("a"))
    assert verify_bundle(bundle, network.genesis).status == "valid"
    key = codec.decode(IssuerKeyRecord, bundle.key.value or b"") if bundle.key else None
    assert key is not None
    retired = dataclasses.replace(key, retired_at=1)
    lying = forge_key_record(tmp_path, store, network, bundle, retired)
    assert "retired at height 1, before the issue (2)" in str(expect_step(lying, network, "issuer-key"))
    not_yet = forge_key_record(tmp_path / "2", store, network, bundle, dataclasses.replace(key, valid_from=3))
    assert "became valid at 3" in str(expect_step(not_yet, network, "issuer-key"))


def test_issuer_key_compromised_at_the_issue_height_is_caught(store: Store, network: Network) -> None:
    m0 = network["m0.test"]
    commit(store, network)
    commit(store, network, issue(m0, digest("a")))
    commit(store, network, by_governance(network, KeyRetire("m0.test", m0.issuer.key_id, 2)))
    assert "compromised since height 2" in str(
        expect_step(bundle_of(store, network, digest("a")), network, "issuer-key")
    )


def test_a_revocation_hidden_behind_an_old_status_event_is_caught(store: Store, network: Network) -> None:
    m0 = network["m0.test"]
    commit(store, network, issue(m0, digest("a")), issue(m0, digest("b")))
    commit(store, network, signed(Revoke(digest("a"), 4), m0.issuer), signed(Revoke(digest("b"), 4), m0.issuer))
    a, b = bundle_of(store, network, digest("a")), bundle_of(store, network, digest("b"))
    # a's revoke event swapped for b's: both are in the log, but the record names another index.
    swapped = dataclasses.replace(a, events=(a.events[0], b.events[1]))
    assert "the record says" in str(expect_step(swapped, network, "inclusion"))
    dropped = dataclasses.replace(a, events=(a.events[0],))
    assert "no status event" in str(expect_step(dropped, network, "inclusion"))


def test_a_header_from_another_height_than_the_checkpoint_is_caught(store: Store, network: Network) -> None:
    commit(store, network, issue(network["m0.test"], digest("a")))
    commit(store, network)
    bundle = bundle_of(store, network, digest("a"))
    with store.snapshot() as snap:
        old_header = snap.header(1).encode()
    assert "certificate is for height 2" in str(
        expect_step(dataclasses.replace(bundle, header=old_header), network, "certificate")
    )


def test_a_validator_chain_that_skips_a_change_is_caught(tmp_path: Path, network: Network) -> None:
    store = Store(tmp_path / "gov")
    store.initialize(network.genesis)
    newcomer = make_member("m9.test", 1)
    commit(store, network, by_governance(network, MemberAdd(**dataclasses.asdict(newcomer.add_payload()))))
    five = Network(network.genesis, {**network.members, newcomer.id: newcomer})
    commit(store, five)  # height 2: still the genesis set
    # Height 3 onwards: the five-member set, which then removes m3.test (the four-member set takes over at 5).
    for _ in range(2):
        block = next_block(store, five, [])
        store.commit_block(block, certify(five, block))
    remove = by_governance(five, MemberRemove("m3.test"), signers=["m0.test", "m1.test", "m2.test", "m9.test"])
    block = next_block(store, five, [remove])
    store.commit_block(block, certify(five, block))
    survivors = Network(network.genesis, {k: v for k, v in five.members.items() if k != "m3.test"})
    block = next_block(store, five, [issue(network["m0.test"], digest("a"))])
    store.commit_block(block, certify(five, block))
    for _ in range(2):
        block = next_block(store, survivors, [])
        store.commit_block(block, certify(survivors, block))
    bundle = bundle_of(store, survivors, digest("a"))
    assert len(bundle.validators) == 2
    assert verify_bundle(bundle, network.genesis).status == "valid"
    skipped = dataclasses.replace(bundle, validators=bundle.validators[1:])
    assert "gap in the validator-set chain" in str(expect_step(skipped, network, "validators"))
    reordered = dataclasses.replace(bundle, validators=bundle.validators[::-1])
    expect_step(reordered, network, "validators")
    store.close()


def test_a_link_certified_by_too_little_power_is_caught(tmp_path: Path, network: Network) -> None:
    store = Store(tmp_path / "gov")
    store.initialize(network.genesis)
    newcomer = make_member("m9.test", 1)
    commit(store, network, by_governance(network, MemberAdd(**dataclasses.asdict(newcomer.add_payload()))))
    five = Network(network.genesis, {**network.members, newcomer.id: newcomer})
    commit(store, five, issue(network["m0.test"], digest("a")))
    block = next_block(store, five, [])
    store.commit_block(block, certify(five, block))
    bundle = bundle_of(store, five, digest("a"))
    link = bundle.validators[0]
    weak = certify_header(network, decode_header(link.header), ["m0.test", "m1.test"])
    lying = dataclasses.replace(bundle, validators=(dataclasses.replace(link, certificate=weak),))
    assert "need more than 2/3" in str(expect_step(lying, network, "validators"))
    store.close()


def test_verify_credential_reports_a_certified_lie_as_a_misbehaving_source(
    tmp_path: Path, store: Store, network: Network
) -> None:
    commit_unchecked(store, network, with_bad_signature(issue(network["m0.test"], digest("a"))))
    receipt = tmp_path / "receipt.json"
    receipt.write_text(bundle_of(store, network, digest("a")).dumps())
    report = verify_credential(digest("a").hex(), genesis=network.genesis, bundle=receipt)
    assert report.status == "unverified"
    assert [(f.source, f.step) for f in report.misbehaving] == [(str(receipt), "issue-signature")]


def test_a_record_with_no_issue_event_is_caught(store: Store, network: Network) -> None:
    commit(store, network, issue(network["m0.test"], digest("a")))
    bundle = bundle_of(store, network, digest("a"))
    assert "no issue event" in str(expect_step(dataclasses.replace(bundle, events=()), network, "inclusion"))
    no_issuer = dataclasses.replace(bundle, member=None, key=None)
    expect_step(no_issuer, network, "issuer-key")
    absent = dataclasses.replace(
        bundle, key=StateEntry(None, bundle.key.proof if bundle.key else bundle.credential.proof)
    )
    expect_step(absent, network, "issuer-key")
