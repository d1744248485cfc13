"""Proof bundles: every status verifies, and every way a bundle can lie is caught and named."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from credledger.ledger import codec
from credledger.ledger.bundle import Bundle, ProofError, StateEntry, verify_bundle
from credledger.ledger.events import KeyRetire, MemberAdd, Reinstate, Revoke, Suspend
from credledger.ledger.note import SignedNote
from credledger.ledger.state import cred_key
from credledger.ledger.storage.bundles import build_bundle
from credledger.ledger.storage.store import Store
from credledger.ledger.validators import ValidatorSet
from tests.blocks import certify, commit, next_block
from tests.factories import T0, Network, by_governance, digest, issue, make_member, make_network, signed


@pytest.fixture
def network() -> Network:
    return make_network(4)


@pytest.fixture
def store(tmp_path: Path, network: Network) -> Iterator[Store]:
    s = Store(tmp_path / "ledger")
    s.initialize(network.genesis)
    yield s
    s.close()


def bundle_for(store: Store, network: Network, credential: bytes) -> Bundle:
    with store.snapshot() as snap:
        built = build_bundle(snap, credential, network.genesis.hash(), network.genesis.origin)
    # Every bundle travels as JSON; verify what a verifier would actually parse.
    return Bundle.from_json(built.dumps())


def test_valid_revoked_suspended_reinstated_expired_and_unknown(store: Store, network: Network) -> None:
    m0 = network["m0.test"]
    commit(
        store,
        network,
        issue(m0, digest("ok")),
        issue(m0, digest("gone")),
        issue(m0, digest("held")),
        issue(m0, digest("back")),
        issue(m0, digest("old"), expires_ms=T0 + 10_000),
    )
    commit(
        store,
        network,
        signed(Revoke(digest("gone"), 4), m0.issuer),
        signed(Suspend(digest("held"), 6), m0.issuer),
        signed(Suspend(digest("back"), 6), m0.issuer),
    )
    commit(store, network, signed(Reinstate(digest("back")), m0.issuer))
    genesis = network.genesis
    expected = {"ok": "valid", "gone": "revoked", "held": "suspended", "back": "valid", "nothing": "unknown"}
    for label, status in expected.items():
        verdict = verify_bundle(bundle_for(store, network, digest(label)), genesis)
        assert verdict.status == status, label
        assert verdict.height == 3
    gone = verify_bundle(bundle_for(store, network, digest("gone")), genesis)
    assert gone.reason == 4 and gone.issuer == "m0.test" and gone.issuer_name == "M0.TEST"
    assert verify_bundle(bundle_for(store, network, digest("old")), genesis, now_ms=T0 + 20_000).status == "expired"
    assert verify_bundle(bundle_for(store, network, digest("old")), genesis).status == "valid"
    assert any(
        "signed by m0.test" in c for c in verify_bundle(bundle_for(store, network, digest("ok")), genesis).checks
    )


@pytest.fixture
def issued(store: Store, network: Network) -> Bundle:
    m0 = network["m0.test"]
    commit(store, network, issue(m0, digest("a")), issue(m0, digest("b")))
    commit(store, network, signed(Revoke(digest("b"), 0), m0.issuer))
    return bundle_for(store, network, digest("a"))


def expect_step(bundle: Bundle, network: Network, step: str) -> None:
    with pytest.raises(ProofError) as info:
        verify_bundle(bundle, network.genesis)
    assert info.value.step == step, str(info.value)


def test_tampered_record_is_caught(issued: Bundle, network: Network) -> None:
    value = bytearray(issued.credential.value or b"")
    value[-3] ^= 1
    expect_step(
        dataclasses.replace(issued, credential=StateEntry(bytes(value), issued.credential.proof)), network, "state"
    )


def test_wrong_state_root_is_caught(issued: Bundle, network: Network) -> None:
    from credledger.ledger.block import decode_header

    header = dataclasses.replace(decode_header(issued.header), state_root=b"\x07" * 32)
    expect_step(dataclasses.replace(issued, header=header.encode()), network, "certificate")


def test_inclusion_proof_for_another_size_is_caught(store: Store, network: Network, issued: Bundle) -> None:
    with store.snapshot() as snap:
        other = tuple(snap.inclusion_proof(0, 2))
    events = (dataclasses.replace(issued.events[0], proof=other),)
    expect_step(dataclasses.replace(issued, events=events), network, "inclusion")


def test_certificate_with_too_little_power_is_caught(issued: Bundle, network: Network) -> None:
    note = SignedNote.parse(issued.checkpoint)
    weak = SignedNote(note.text, note.signatures[:2]).format()
    expect_step(dataclasses.replace(issued, checkpoint=weak), network, "certificate")


def test_duplicated_signer_is_not_counted_twice(issued: Bundle, network: Network) -> None:
    note = SignedNote.parse(issued.checkpoint)
    doubled = SignedNote(note.text, note.signatures[:2] * 3).format()
    expect_step(dataclasses.replace(issued, checkpoint=doubled), network, "certificate")


def test_signers_outside_the_certifying_set_do_not_count(issued: Bundle, network: Network) -> None:
    from credledger.ledger.note import sign_note
    from tests.factories import key_for

    note = SignedNote.parse(issued.checkpoint)
    outsiders = tuple(sign_note(note.text, key_for(f"x{i}.test", "node")) for i in range(4))
    padded = SignedNote(note.text, note.signatures[:2] + outsiders).format()
    expect_step(dataclasses.replace(issued, checkpoint=padded), network, "certificate")


def test_validator_chain_with_a_gap_is_caught(tmp_path: Path, network: Network) -> None:
    store = Store(tmp_path / "gov")
    store.initialize(network.genesis)
    newcomer = make_member("m9.test", 1)
    commit(store, network, by_governance(network, MemberAdd(**dataclasses.asdict(newcomer.add_payload()))))
    members = {**network.members, newcomer.id: newcomer}
    bigger = Network(network.genesis, members)
    commit(store, bigger, issue(network["m0.test"], digest("a")))
    # From height 3 the five-member set certifies.
    block = next_block(store, bigger, [])
    store.commit_block(block, certify(bigger, block))
    bundle = bundle_for(store, bigger, digest("a"))
    assert len(bundle.validators) == 1
    assert verify_bundle(bundle, network.genesis).status == "valid"
    expect_step(dataclasses.replace(bundle, validators=()), network, "certificate")
    link = bundle.validators[0]
    fake_set = codec.encode(ValidatorSet.of([v for v in codec.decode(ValidatorSet, link.next_set).validators][:1]))
    expect_step(
        dataclasses.replace(bundle, validators=(dataclasses.replace(link, next_set=fake_set),)), network, "validators"
    )
    store.close()


def test_issuer_key_compromised_before_the_issue_is_caught(store: Store, network: Network) -> None:
    m0 = network["m0.test"]
    commit(store, network, issue(m0, digest("a")))
    retire = by_governance(network, KeyRetire("m0.test", m0.issuer.key_id, 1))
    commit(store, network, retire)
    expect_step(bundle_for(store, network, digest("a")), network, "issuer-key")


def test_issuer_key_retired_after_the_issue_keeps_the_credential_valid(tmp_path: Path) -> None:
    network = make_network(4, issuer_keys=2)
    store = Store(tmp_path / "rotate")
    store.initialize(network.genesis)
    m0 = network["m0.test"]
    old_key, new_key = m0.issuers
    commit(store, network, issue(m0, digest("a"), key=old_key))
    commit(store, network, signed(KeyRetire("m0.test", old_key.key_id, None), new_key))
    verdict = verify_bundle(bundle_for(store, network, digest("a")), network.genesis)
    assert verdict.status == "valid"
    assert any(old_key.key_id.hex() in c for c in verdict.checks)
    store.close()


def test_digest_of_another_credential_is_caught(store: Store, network: Network, issued: Bundle) -> None:
    other = bundle_for(store, network, digest("b"))
    # Serve b's record and events under a's digest: the state proof is for another key.
    expect_step(dataclasses.replace(other, digest=digest("a")), network, "state")
    lying = dataclasses.replace(issued, events=(other.events[0],))
    expect_step(lying, network, "inclusion")


def test_bundle_for_another_network_is_refused(issued: Bundle) -> None:
    with pytest.raises(ProofError, match="network"):
        verify_bundle(issued, make_network(4, origin="credledger.test/elsewhere").genesis)


def test_malformed_bundle_json_is_a_decode_error() -> None:
    from credledger.ledger.errors import DecodeError

    for text in ("{", "[]", '{"format": "other"}', '{"format": "credledger-proof/v1", "origin": 3}'):
        with pytest.raises(DecodeError):
            Bundle.from_json(text)


def test_membership_proof_ends_in_the_digest_key(issued: Bundle) -> None:
    assert issued.credential.proof.leaf is not None
    assert issued.credential.proof.leaf.key == cred_key(digest("a"))
