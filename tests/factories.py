"""Builders for tests: deterministic members and keys, a small genesis, signed events, and a dict-backed ledger.

Keys are derived from names (never random), so every run signs the same bytes and failures reproduce.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from credledger.ledger.events import Event, Issue, MemberAdd, Payload, UnsignedEvent, sign_event
from credledger.ledger.genesis import Genesis, Params
from credledger.ledger.keys import SigningKey
from credledger.ledger.rules import BlockEffects, apply_block, check_event

ORIGIN = "credledger.test/unit"
#: Genesis time of every test network (2026-01-01T00:00:00Z).
T0 = 1_767_225_600_000
#: Time between consecutive test blocks.
BLOCK_INTERVAL_MS = 1_000


def key_for(name: str, label: str) -> SigningKey:
    """A deterministic key named `name` (a member id), distinct for each `label`."""
    return SigningKey(name, hashlib.sha256(f"credledger-test/{name}/{label}".encode()).digest())


def digest(label: str) -> bytes:
    """A credential digest standing for the document `label`."""
    return hashlib.sha256(label.encode()).digest()


@dataclass(frozen=True)
class TestMember:
    """A member with its private keys: `node` votes and governs, `issuers[0]` is the key it issues with."""

    __test__ = False  # not a pytest test class

    id: str
    power: int
    node: SigningKey
    issuers: tuple[SigningKey, ...]

    @property
    def issuer(self) -> SigningKey:
        return self.issuers[0]

    def add_payload(self, name: str | None = None) -> MemberAdd:
        """The member.add that admits this member (genesis uses the same)."""
        return MemberAdd(
            self.id,
            name or self.id.upper(),
            self.power,
            self.node.public.raw,
            tuple(k.public.raw for k in self.issuers),
        )


def make_member(member_id: str, power: int = 1, *, issuer_keys: int = 1, generation: int = 0) -> TestMember:
    """A member with deterministic keys; another `generation` gives the same id fresh keys."""
    return TestMember(
        member_id,
        power,
        key_for(member_id, f"node/{generation}"),
        tuple(key_for(member_id, f"issuer/{generation}/{i}") for i in range(issuer_keys)),
    )


@dataclass(frozen=True)
class Network:
    """A genesis and the private keys of its members."""

    genesis: Genesis
    members: dict[str, TestMember]

    def __getitem__(self, member_id: str) -> TestMember:
        return self.members[member_id]

    @property
    def ids(self) -> list[str]:
        return sorted(self.members)


def make_network(
    n: int = 4,
    *,
    powers: Sequence[int] | None = None,
    params: Params | None = None,
    origin: str = ORIGIN,
    issuer_keys: int = 1,
) -> Network:
    """A genesis with members m0.test, m1.test, ... (power 1 each unless `powers` says otherwise)."""
    powers = list(powers) if powers is not None else [1] * n
    members = [make_member(f"m{i}.test", power, issuer_keys=issuer_keys) for i, power in enumerate(powers)]
    genesis = Genesis.of(origin, T0, [m.add_payload() for m in members], params or Params())
    return Network(genesis, {m.id: m for m in members})


def signed(payload: Payload, *keys: SigningKey, time_ms: int = T0, origin: str = ORIGIN) -> Event:
    """An event carrying `payload`, signed by `keys`."""
    return sign_event(UnsignedEvent(origin, time_ms, payload), *keys)


def issue(
    member: TestMember,
    credential: bytes,
    *,
    key: SigningKey | None = None,
    time_ms: int = T0,
    expires_ms: int | None = None,
    components: Iterable[bytes] = (),
) -> Event:
    """`member` issues `credential` with `key` (its first issuer key by default)."""
    payload = Issue(credential, member.id, expires_ms, tuple(components))
    return signed(payload, key or member.issuer, time_ms=time_ms)


def by_governance(network: Network, payload: Payload, signers: Iterable[str] | None = None, time_ms: int = T0) -> Event:
    """`payload` signed by the node keys of `signers` (every member with power by default)."""
    ids = list(signers) if signers is not None else [m.id for m in network.members.values() if m.power > 0]
    return signed(payload, *(network[i].node for i in ids), time_ms=time_ms)


@dataclass
class Ledger:
    """A dict-backed chain for tests: applies blocks through the rules and remembers what they committed."""

    network: Network
    state: dict[bytes, bytes] = field(default_factory=dict)
    height: int = 0
    log_size: int = 0
    committed: set[bytes] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.state:
            self.state = self.network.genesis.initial_state()

    @property
    def params(self) -> Params:
        return self.network.genesis.params

    @property
    def next_block_time(self) -> int:
        return T0 + (self.height + 1) * BLOCK_INTERVAL_MS

    def block(self, *events: Event, verified: Iterable[bytes] = ()) -> BlockEffects:
        """Apply `events` as the next block and commit its changes; raises (changing nothing) if one is refused."""
        effects = apply_block(
            self.state,
            events,
            origin=self.network.genesis.origin,
            height=self.height + 1,
            block_time_ms=self.next_block_time,
            first_index=self.log_size,
            params=self.params,
            committed=self.committed,
            verified=frozenset(verified),
        )
        for key, value in effects.changes.items():
            assert value is not None, "the rules never delete"
            self.state[key] = value
        self.height += 1
        self.log_size += len(events)
        self.committed.update(e.id for e in events)
        return effects

    def check(self, event: Event) -> None:
        """The admission check for `event` against the current state."""
        check_event(
            self.state,
            event,
            origin=self.network.genesis.origin,
            height=self.height + 1,
            now_ms=self.next_block_time,
            params=self.params,
            committed=self.committed,
        )
