"""What the chain keeps between calls to save work -- committed state entries, decoded events -- never changes an
answer: admission after a commit sees the committed state, and a commit's decoded events must be the block's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from credledger.ledger.block import CertifiedBlock
from credledger.ledger.errors import InvalidBlock, InvalidEvent
from credledger.ledger.events import Revoke, Signature
from credledger.ledger.storage.store import Store
from credledger.node.application import Admitted, LedgerApplication
from credledger.node.mempool import Mempool
from tests.blocks import certify, commit
from tests.factories import T0, Network, digest, issue, make_network, signed

NOW = T0 / 1000 + 5
TIME = int(NOW * 1000)


@pytest.fixture
def network() -> Network:
    return make_network(4)


@pytest.fixture
def chain(tmp_path: Path, network: Network) -> LedgerApplication:
    return LedgerApplication(
        Store(tmp_path / "chain"),
        network.genesis,
        mempool=Mempool(max_events=100, max_bytes=1 << 20),
        clock=lambda: NOW,
    )


def decide(chain: LedgerApplication, network: Network) -> CertifiedBlock:
    block = chain.build_block(chain.height + 1, 0, chain.now_ms(), network.ids[0])
    chain.validate_block(block)
    certified = CertifiedBlock(block, certify(network, block))
    chain.commit(certified)
    return certified


def test_admission_after_a_commit_sees_what_the_commit_wrote(chain: LedgerApplication, network: Network) -> None:
    m0 = network["m0.test"]
    credential = digest("cached")
    revoke = signed(Revoke(credential, 0), m0.issuer, time_ms=TIME)
    # Read while absent (and remembered as absent) ...
    with pytest.raises(InvalidEvent, match="not-issued"):
        chain.admit(revoke)
    chain.admit(issue(m0, credential, time_ms=TIME))
    decide(chain, network)
    # ... then written by a block: the revoke now finds it.
    chain.admit(revoke)
    decide(chain, network)
    with pytest.raises(InvalidEvent, match="revoked-is-terminal"):
        chain.admit(signed(Revoke(credential, 1), m0.issuer, time_ms=TIME))


def test_a_block_committed_around_the_chain_is_seen_all_the_same(chain: LedgerApplication, network: Network) -> None:
    m0 = network["m0.test"]
    credential = digest("around")
    with pytest.raises(InvalidEvent, match="not-issued"):
        chain.admit(signed(Revoke(credential, 0), m0.issuer, time_ms=TIME))
    # Written to the store directly, not through LedgerApplication.commit.
    commit(chain.store, network, issue(m0, credential, time_ms=T0 + 1000))
    chain.admit(signed(Revoke(credential, 0), m0.issuer, time_ms=TIME))


def test_a_commit_takes_decoded_events_only_if_they_are_the_blocks(tmp_path: Path, network: Network) -> None:
    store = Store(tmp_path / "store")
    store.initialize(network.genesis)
    m0 = network["m0.test"]
    one, two = (issue(m0, digest(x), time_ms=T0 + 1000) for x in "12")
    block, _ = store.build_block([one], proposer=network.ids[0], round=0, time_ms=T0 + 1000)
    certificate = certify(network, block)
    for wrong in ([two], [one, two], []):
        with pytest.raises(InvalidBlock, match="the decoded events given are not the block's"):
            store.commit_block(block, certificate, events=wrong)
    assert store.height() == 0
    store.commit_block(block, certificate, events=[one])
    assert store.height() == 1


def test_a_block_altered_after_validation_is_refused_at_commit(chain: LedgerApplication, network: Network) -> None:
    """Validating a block keeps its state-map nodes for the commit; a certified block that differs from it in its
    events or its roots, even one certified by every validator, is still checked and refused, and nothing is
    written."""
    m0 = network["m0.test"]
    for label in ("one", "two"):
        chain.admit(issue(m0, digest(label), time_ms=TIME))
    block = chain.build_block(1, 0, chain.now_ms(), network.ids[0])
    chain.validate_block(block)
    other = issue(m0, digest("forged"), time_ms=TIME)
    forgeries = [
        replace(block, header=replace(block.header, state_root=bytes(32))),
        replace(block, events=(block.events[0], other.encode())),
        replace(block, header=replace(block.header, event_count=1), events=block.events[:1]),
    ]
    for forged in forgeries:
        with pytest.raises(InvalidBlock, match="header commits to"):
            chain.commit(CertifiedBlock(forged, certify(network, forged)))
        assert chain.height == 0
    chain.commit(CertifiedBlock(block, certify(network, block)))
    with chain.store.snapshot() as snap:
        assert snap.height == 1
        assert snap.state_root() == block.header.state_root


def test_a_remembered_outcome_serves_only_the_same_events_in_the_same_order(
    chain: LedgerApplication, network: Network
) -> None:
    """The rules' outcome for a block built and validated here is remembered under its events' leaf hashes: a block
    under the same header whose events are reordered, repeated, re-signed or replaced meets the rules again and is
    refused, at validation and at commit, and nothing is written."""
    m0 = network["m0.test"]
    first = issue(m0, digest("ordered"), time_ms=TIME)
    then = signed(Revoke(digest("ordered"), 0), m0.issuer, time_ms=TIME)
    assert all(isinstance(outcome, Admitted) for outcome in chain.admit_batch([first, then]))
    block = chain.build_block(1, 0, chain.now_ms(), network.ids[0])
    chain.validate_block(block)
    assert block.events == (first.encode(), then.encode())
    forged = replace(first, signatures=(Signature(m0.id, m0.issuer.key_id, bytes(64)),))
    assert forged.id == first.id
    variants = {
        "not-issued": (then.encode(), first.encode()),
        "replayed-event": (first.encode(), first.encode()),
        "bad-signature": (forged.encode(), then.encode()),
        "roots": (first.encode(), issue(m0, digest("other"), time_ms=TIME).encode()),
    }
    for refusal, events in variants.items():
        variant = replace(block, events=events)
        with pytest.raises((InvalidBlock, InvalidEvent), match=refusal):
            chain.validate_block(variant)
        with pytest.raises(InvalidBlock, match="header commits to" if refusal == "roots" else refusal):
            chain.commit(CertifiedBlock(variant, certify(network, variant)))
        assert chain.height == 0
    chain.commit(CertifiedBlock(block, certify(network, block)))
    assert chain.height == 1
