"""Test helpers that drive a real `Store`: build the next block, certify it with the validators' node keys."""

from __future__ import annotations

from collections.abc import Iterable

from credledger.ledger.block import Block, sign_checkpoint
from credledger.ledger.events import Event
from credledger.ledger.note import SignedNote
from credledger.ledger.storage.store import Store
from tests.factories import BLOCK_INTERVAL_MS, T0, Network


def certify(network: Network, block: Block, signers: Iterable[str] | None = None, decision_round: int = 0) -> str:
    """The commit certificate for `block`, signed by `signers` (every member with power by default)."""
    ids = list(signers) if signers is not None else [m.id for m in network.members.values() if m.power > 0]
    header = block.header
    sigs = tuple(sign_checkpoint(header, decision_round, network[i].node) for i in ids)
    return SignedNote(header.checkpoint(decision_round).body(), sigs).format()


def next_block(store: Store, network: Network, events: Iterable[Event], proposer: str | None = None) -> Block:
    """A proposal for the next height carrying `events` (each must be valid: refused ones raise)."""
    candidates = list(events)
    height = store.height() + 1
    block, selection = store.build_block(
        candidates,
        proposer=proposer or network.ids[0],
        round=0,
        time_ms=T0 + height * BLOCK_INTERVAL_MS,
    )
    if selection.refused:
        _event, error = selection.refused[0]
        raise error
    return block


def commit(store: Store, network: Network, *events: Event) -> Block:
    """Build, certify and commit the next block."""
    block = next_block(store, network, events)
    store.commit_block(block, certify(network, block))
    return block
