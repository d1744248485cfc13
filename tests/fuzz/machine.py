"""The consensus machine as a fuzz target: what a peer's consensus frame meets after it decodes.

A frame that decodes is re-signed by the validator it names (the harness holds every validator's key), so it
passes the signature check and reaches the round rules, as a Byzantine validator's statements would. The
machine may refuse it only with `MessageRejected` or `MessageOutOfWindow`: the driver counts those against the
peer and goes on, while any other exception halts the node (tests/fuzz/targets.py holds the contract).

The machine keeps state from one input to the next (that is how deep states are reached); a fresh one starts
every `RESET_EVERY` inputs so its memory stays bounded, each in its own temporary directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from pathlib import Path

from hypothesis import strategies as st

from credledger.consensus.errors import MessageOutOfWindow, MessageRejected
from credledger.ledger.note import sign_note
from credledger.ledger.votes import (
    Message,
    Precommit,
    Prevote,
    Proposal,
    decode_message,
    encode_message,
    sign_prevote,
    sign_proposal,
    signing_payload,
)
from tests.sim.harness import Harness

#: Inputs one machine takes before a fresh one replaces it.
RESET_EVERY = 100
#: What the machine may refuse a peer's message with (anything else halts the node).
REFUSALS = (MessageRejected, MessageOutOfWindow)


class MachineTarget:
    """A machine of a four-validator network at height 1 (validator m0.test), fed re-signed messages."""

    def __init__(self) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._harness: Harness | None = None
        self._fed = 0

    def harness(self) -> Harness:
        if self._harness is None or self._fed >= RESET_EVERY:
            self.close()
            self._tmp = tempfile.TemporaryDirectory(prefix="credledger-fuzz-machine-")
            self._harness = Harness(Path(self._tmp.name))
            self._harness.start()
            self._fed = 0
        return self._harness

    def close(self) -> None:
        if self._harness is not None:
            self._harness.app.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        self._harness, self._tmp = None, None

    def seeds(self) -> tuple[bytes, ...]:
        """Valid statements of every kind by the other validators at height 1, none of them a quorum (a machine
        that decided height 1 would refuse the rest as out of window)."""
        with tempfile.TemporaryDirectory(prefix="credledger-fuzz-seeds-") as tmp:
            h = Harness(Path(tmp))
            h.start()
            block = h.block(1)
            m1, m2 = h.others[:2]
            messages: list[Message] = [
                h.proposal(1, block),
                h.proposal(2, h.block(2), pol_round=1),
                *h.prevotes(1, block.hash(), m1, m2),
                *h.prevotes(0, None, m1),
                *h.precommits(1, block, m1),
                *h.precommits(2, None, m2),
            ]
            h.app.close()
            return tuple(encode_message(m) for m in messages)

    def feed(self, data: bytes) -> None:
        """Decode `data`, re-sign it as its signer, and hand it to the machine."""
        harness = self.harness()
        message = resign(decode_message(data), harness)
        self._fed += 1
        harness.feed(message)


def resign(message: Message, harness: Harness) -> Message:
    """`message` signed by the validator it names (unchanged if it names no member of the network)."""
    member = harness.network.members.get(message.signer)
    if member is None:
        return message
    key, origin = member.node, harness.origin
    if isinstance(message, Proposal):
        return sign_proposal(key, origin, message.height, message.round, message.block, pol_round=message.pol_round)
    if isinstance(message, Precommit):
        if message.block is None:
            return dataclasses.replace(message, signature=key.sign(*signing_payload(message, origin)))
        body = message.block.checkpoint(origin, message.height, message.round).body()
        return dataclasses.replace(message, signature=sign_note(body, key).signature)
    return sign_prevote(key, origin, message.height, message.round, message.block_hash)


@st.composite
def moved_messages(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    """A seed statement with its height, round, signer, block hash or proof-of-lock round moved (the machine's
    own id and unknown ids among the signers), encoded: the inputs that reach the round rules."""
    message = decode_message(draw(st.sampled_from(seeds)))
    signer_field = "proposer" if isinstance(message, Proposal) else "validator"
    changes: dict[str, object] = {}
    if draw(st.booleans()):
        changes["height"] = draw(st.integers(1, 3) | st.integers(1, 2**63 - 1))
    if draw(st.booleans()):
        changes["round"] = draw(st.integers(0, 4) | st.integers(0, 2**31 - 1))
    if draw(st.booleans()):
        changes[signer_field] = draw(st.sampled_from(("m0.test", "m1.test", "m2.test", "m3.test", "m9.test")))
    if isinstance(message, Prevote) and draw(st.booleans()):
        changes["block_hash"] = draw(st.none() | st.binary(min_size=32, max_size=32))
    if isinstance(message, Proposal) and draw(st.booleans()):
        changes["pol_round"] = draw(st.integers(-1, 4))
    if isinstance(message, Precommit) and message.block is not None and draw(st.booleans()):
        changes["block"] = dataclasses.replace(message.block, header_hash=draw(st.binary(min_size=32, max_size=32)))
    # A combination the record refuses (pol_round >= round, a block of another height) leaves the seed as it was.
    with contextlib.suppress(ValueError):
        message = dataclasses.replace(message, **changes)  # type: ignore[arg-type]
    return encode_message(message)
