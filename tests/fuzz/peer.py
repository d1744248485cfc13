"""A fake peer: it completes the handshake with a member's real node key, then sends mutated frames.

What it sends is made from what the node sends it: the consensus messages the node broadcasts (its proposals,
prevotes and precommits) are decoded and turned into statements by the fake peer's own member -- heights and
rounds moved, block hashes swapped, nil and block votes exchanged, proposals carrying altered blocks -- and
signed with that member's real key, so they pass the signature check and reach the consensus rules (a Byzantine
validator, equivocating at will). Other frames are the same messages with bytes flipped, cut or inserted, and
mutated gossiped events. Every frame keeps a known kind byte, so the node must judge the payload itself.

The node is expected to drop or refuse each frame (counting it against the peer), record equivocation as
evidence, and go on committing with the honest validators.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
from dataclasses import dataclass, field

import aiohttp

from credledger.ledger import codec, domains
from credledger.ledger.block import Block
from credledger.ledger.errors import DecodeError
from credledger.ledger.keys import SigningKey
from credledger.ledger.note import sign_note
from credledger.ledger.votes import (
    BlockRef,
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
from credledger.node.peers import KIND_CONSENSUS, KIND_EVENT, PEER_PATH, Hello, Proof, challenge
from tests.factories import digest
from tests.fuzz.mutations import INTERESTING_BYTES
from tests.integration.cluster import Cluster, Node

#: How long the fake peer waits for each handshake step.
HANDSHAKE_TIMEOUT_S = 10.0


@dataclass
class PeerFuzzReport:
    """What the fake peer saw and sent."""

    received: int = 0
    sent: dict[str, int] = field(default_factory=lambda: {"resigned": 0, "mutated": 0, "event": 0})
    #: Whether the connection was still open after the attack (every frame kept a known kind, so it should be).
    still_connected: bool = False
    #: A credential issued through the attacked node while the attack went on.
    credential: bytes = b""


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """A few byte-level mutations: flips, boundary values, insertions, deletions, truncation."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(out)) if out else 0
        operation = rng.randrange(5)
        if operation == 0 and out:
            out[at] ^= 1 << rng.randrange(8)
        elif operation == 1 and out:
            out[at] = rng.choice(INTERESTING_BYTES)
        elif operation == 2:
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        elif operation == 3:
            del out[at : at + rng.randint(1, 16)]
        else:
            del out[at:]
    return bytes(out)


def resigned(message: Message, key: SigningKey, origin: str, rng: random.Random) -> Message | None:
    """`message` turned into a statement by `key`'s member, with its fields moved, and validly signed."""
    height = max(1, message.height + rng.choice((-1, 0, 0, 0, 1, 2)))
    round_ = max(0, message.round + rng.choice((0, 0, 1, 2, 5, 1000)))
    block_hash = rng.choice((message.block_hash, os.urandom(32), None))
    if isinstance(message, Proposal):
        return _proposal(message, key, origin, rng, height=height, round_=round_)
    if isinstance(message, Prevote) or rng.random() < 0.5:
        return sign_prevote(key, origin, height, round_, block_hash)
    if block_hash is None:
        unsigned = Precommit(height, round_, None, key.name, bytes(64))
        return dataclasses.replace(unsigned, signature=key.sign(*signing_payload(unsigned, origin)))
    ref = message.block if isinstance(message, Precommit) and message.block is not None else None
    ref = ref or BlockRef(block_hash, rng.randrange(1 << 20), os.urandom(32))
    ref = dataclasses.replace(ref, header_hash=block_hash) if rng.random() < 0.5 else ref
    signature = sign_note(ref.checkpoint(origin, height, round_).body(), key).signature
    return Precommit(height, round_, ref, key.name, signature)


def _proposal(
    message: Proposal, key: SigningKey, origin: str, rng: random.Random, *, height: int, round_: int
) -> Message | None:
    block = message.block
    header = block.header
    choice = rng.randrange(4)
    if choice == 0:  # another time, proposer or event count in the header
        header = dataclasses.replace(header, time_ms=header.time_ms + rng.randint(-(10**6), 10**6), proposer=key.name)
    elif choice == 1:  # a state or log root that does not follow from the events
        header = dataclasses.replace(header, state_root=os.urandom(32), log_root=os.urandom(32))
    elif choice == 2 and block.events:  # an event's bytes damaged
        events = list(block.events)
        events[0] = mutate_bytes(events[0], rng) or b"\x00"
        block = Block(header, tuple(events))
    header = dataclasses.replace(header, height=height)
    try:
        block = Block(header, block.events)
        return sign_proposal(key, origin, height, round_, block, pol_round=rng.choice((-1, -1, round_ - 1)))
    except ValueError:
        return None  # fields the records themselves refuse (pol_round >= round, ...)


class FakePeer:
    """One authenticated connection to a node, as `key`'s member."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, key: SigningKey, origin: str) -> None:
        self.ws = ws
        self.key = key
        self.origin = origin
        self.seen: list[Message] = []

    @classmethod
    async def connect(
        cls, session: aiohttp.ClientSession, url: str, key: SigningKey, origin: str, genesis: bytes
    ) -> FakePeer:
        ws = await session.ws_connect(url + PEER_PATH, max_msg_size=0)
        theirs = codec.decode(Hello, (await ws.receive(timeout=HANDSHAKE_TIMEOUT_S)).data)
        nonce = os.urandom(32)
        await ws.send_bytes(codec.encode(Hello(origin, genesis, key.name, nonce)))
        codec.decode(Proof, (await ws.receive(timeout=HANDSHAKE_TIMEOUT_S)).data)
        signature = key.sign(domains.PEER_CHALLENGE, challenge(genesis, theirs.nonce, nonce, key.name))
        await ws.send_bytes(codec.encode(Proof(signature)))
        return cls(ws, key, origin)

    async def listen(self, report: PeerFuzzReport) -> None:
        """Keep the consensus messages the node sends (the material for mutations)."""
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.BINARY:
                break
            report.received += 1
            if frame.data[:1] == bytes([KIND_CONSENSUS]):
                try:
                    self.seen.append(decode_message(frame.data[1:]))
                except DecodeError:
                    continue
                del self.seen[:-200]

    async def attack(self, frames: int, seed: int, events: tuple[bytes, ...], report: PeerFuzzReport) -> None:
        """Send `frames` mutated frames, a little apart so consensus keeps running between them."""
        rng = random.Random(seed)
        for _ in range(frames):
            if self.ws.closed:
                return
            roll = rng.random()
            if self.seen and roll < 0.5:
                message = resigned(rng.choice(self.seen), self.key, self.origin, rng)
                if message is None:
                    continue
                await self.ws.send_bytes(bytes([KIND_CONSENSUS]) + encode_message(message))
                report.sent["resigned"] += 1
            elif self.seen and roll < 0.85:
                payload = mutate_bytes(encode_message(rng.choice(self.seen)), rng)
                await self.ws.send_bytes(bytes([KIND_CONSENSUS]) + payload)
                report.sent["mutated"] += 1
            else:
                await self.ws.send_bytes(bytes([KIND_EVENT]) + mutate_bytes(rng.choice(events), rng))
                report.sent["event"] += 1
            await asyncio.sleep(0.005)


async def fuzz_peer(cluster: Cluster, target: Node, frames: int, seed: int) -> PeerFuzzReport:
    """Attack `target` (a running validator of `cluster`) as m3.test with `frames` mutated frames; returns once
    the attack is over and an issue event submitted during it has been committed."""
    report = PeerFuzzReport()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        genesis, key = cluster.genesis, cluster.members["m3.test"].node
        peer = await FakePeer.connect(session, target.url, key, genesis.origin, genesis.hash())
        listener = asyncio.create_task(peer.listen(report))
        for _ in range(100):  # material to mutate: the node's own consensus messages
            if len(peer.seen) >= 5:
                break
            await asyncio.sleep(0.1)
        gossip = tuple(cluster.issue("m1.test", digest(f"gossip {seed} {i}")).encode() for i in range(4))
        attack = asyncio.create_task(peer.attack(frames, seed, gossip, report))
        # Honest work goes on during the attack.
        report.credential = digest(f"committed under attack {seed}")
        await asyncio.to_thread(cluster.submit, target, cluster.issue("m0.test", report.credential))
        await attack
        report.still_connected = not peer.ws.closed
        await peer.ws.close()
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    return report
