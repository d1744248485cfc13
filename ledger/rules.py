"""The ledger's rules: which events a block may hold, and what they do to the state (DESIGN §3).

Theory of operation
-------------------
The state map (`ledger.state`) holds every credential, member and issuer-key record. A block's events apply to
it one after another, each seeing the effects of the ones before it through a `StateOverlay`, so an issue and a
revoke of the same credential can share a block. The rules are a pure function of (state, events, block
context): no clock, no I/O, no randomness, so every node computes the same state changes or rejects the same
block.

Each event passes three stages, and the first refusal raises `InvalidEvent` or its subclass `Unauthorized`,
whose `rule` is a stable slug (listed in `RULES`) that the API and the metrics report:

1. the envelope — right chain (`wrong-origin`), within the size limit (`event-too-large`), signed at a time near
   the block's (`time-out-of-range`), never committed before (`replayed-event`);
2. authentication (`ledger.authority`) — the signatures say whether one member's issuer key or governance
   (more than 2/3 of the voting power, by node keys) speaks. An issuer's event must be signed within
   `max_clock_skew_ms` of the block time; a governance event may be up to `governance_window_ms` old, since
   its signatures are gathered from many institutions (neither may come from further in the future than the skew);
3. the kind's own rules (`ledger.credential_rules`, `ledger.membership_rules`) — authorisation for that kind,
   then the state checks, then the writes. Writes go to a per-event overlay merged only when the event passes,
   so a refused event leaves nothing behind.

Membership changes apply to the state at once, so governance later in the same block counts the new powers.
Consensus applies the resulting validator set at height H+2 (DESIGN §7); `BlockEffects.next_validators` tells it
when there is a new one.

Signatures are checked once per node: at admission (`check_event`), after which the node remembers the event's
RFC 6962 leaf hash (it names the exact signed encoding, unlike the event id, which ignores signatures) and
passes it in `verified` when the event comes back in a block. Key lookups and every other rule still run.

Replays: `committed` answers whether an event id is in the log already. An event passes the time check only
near the block time, so a replay could only succeed against a block at most `governance_window_ms +
max_clock_skew_ms` after the original; `committed` needs to answer correctly only for ids committed that recently.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import assert_never

from credledger.ledger.achievement_rules import (
    apply_achievement_publish,
    apply_achievement_retire,
    apply_recognition_publish,
    apply_recognition_withdraw,
)
from credledger.ledger.authority import Context, IssuerAuthority, authenticate
from credledger.ledger.credential_rules import apply_issue, apply_reinstate, apply_revoke, apply_suspend
from credledger.ledger.errors import InvalidEvent
from credledger.ledger.events import (
    AchievementPublish,
    AchievementRetire,
    Event,
    Issue,
    KeyAdd,
    KeyRetire,
    MemberAdd,
    MemberPayload,
    MemberRemove,
    MemberUpdate,
    RecognitionPublish,
    RecognitionWithdraw,
    Reinstate,
    ReportEvidence,
    Revoke,
    StatusPublish,
    Suspend,
)
from credledger.ledger.evidence_rules import apply_report_evidence
from credledger.ledger.genesis import Params
from credledger.ledger.limits import MAX_STATUS_EVENT_BYTES
from credledger.ledger.membership_rules import (
    apply_key_add,
    apply_key_retire,
    apply_member_add,
    apply_member_remove,
    apply_member_update,
)
from credledger.ledger.state import StateOverlay, StateView, validator_set
from credledger.ledger.status_rules import apply_status_publish
from credledger.ledger.validators import ValidatorSet

__all__ = ["RULES", "BlockEffects", "Selection", "StateView", "Trace", "apply_block", "check_event", "select_events"]

#: Every rule slug an event can be refused with.
RULES = frozenset(
    {
        # envelope
        "wrong-origin",
        "event-too-large",
        "time-out-of-range",
        "replayed-event",
        # authentication and authorisation
        "duplicate-signer",
        "signatures-not-sorted",
        "bad-signature",
        "unknown-issuer",
        "member-inactive",
        "unknown-key",
        "key-not-valid-at-height",
        "key-compromised",
        "not-a-validator",
        "insufficient-governance-power",
        "governance-required",
        "issuer-signature-required",
        "not-the-issuer",
        "not-the-member",
        # credentials
        "already-issued",
        "status-entry-used",
        "unknown-status-list",
        "status-list-refused",
        "status-list-stale",
        "expires-before-issue",
        "component-missing",
        "component-revoked",
        "not-issued",
        "revoked-is-terminal",
        "already-suspended",
        "not-suspended",
        # members and keys
        "duplicate-member",
        "unknown-member",
        "too-many-members",
        "would-remove-all-validators",
        "duplicate-key",
        "duplicate-did",
        "too-many-keys",
        "already-retired",
        "already-compromised",
        "compromise-in-future",
        "would-retire-last-key",
        # the catalogue and awards (DESIGN §14)
        "achievement-retired",
        "too-many-achievements",
        "rule-names-itself",
        "rule-unknown-achievement",
        "unknown-achievement",
        "award-rule-unmet",
        "component-suspended",
        "component-expired",
        "component-not-counted",
        "recognition-exists",
        "too-many-recognitions",
        "unknown-recognition",
        "recognition-withdrawn",
        # consensus evidence
        "reporter-signature-required",
        "evidence-from-the-future",
        "evidence-invalid",
        "evidence-duplicate",
    }
)


@dataclass(frozen=True, slots=True)
class BlockEffects:
    """What a block does to the state."""

    #: State-map key -> new value (None would delete; the rules never delete), in first-write order.
    changes: dict[bytes, bytes | None]
    #: The validator set after the block, if the block changed it (consensus applies it at height + 2).
    next_validators: ValidatorSet | None

    @property
    def validators_changed(self) -> bool:
        return self.next_validators is not None


@dataclass(frozen=True, slots=True)
class Selection:
    """A proposer's pick from pending events: those that apply in order, their effects, and the refused ones."""

    events: tuple[Event, ...]
    effects: BlockEffects
    refused: tuple[tuple[Event, InvalidEvent], ...]
    #: With `trace`: for each selected event, what it read and wrote.
    traces: tuple[Trace, ...] = ()


@dataclass(slots=True)
class Trace:
    """What one event did: the state keys it read or wrote (its outcome depends on no other), and its writes.

    Built for every admitted event and never changed after; not frozen, which would cost a call per field."""

    touched: frozenset[bytes]
    writes: dict[bytes, bytes | None]


@dataclass(frozen=True, slots=True)
class _Block:
    """What the rules need to know about the block the events land in."""

    origin: str
    height: int
    time_ms: int
    params: Params
    committed: Container[bytes]
    verified: Container[bytes]


def apply_block(
    state: StateView,
    events: Sequence[Event],
    *,
    origin: str,
    height: int,
    block_time_ms: int,
    first_index: int,
    params: Params,
    committed: Container[bytes],
    verified: Container[bytes] = frozenset(),
) -> BlockEffects:
    """Apply a block's events in order to `state` (as of the previous block) and return the state changes.

    `first_index` is the log size before the block; `committed` holds the ids of events already in the log;
    `verified` the leaf hashes of events whose signatures this node has checked. Raises the first event's
    refusal, its detail prefixed with the event's position and id.
    """
    applier = _Applier(state, _Block(origin, height, block_time_ms, params, committed, verified), first_index)
    for position, event in enumerate(events):
        try:
            applier.apply(event)
        except InvalidEvent as exc:
            raise type(exc)(exc.rule, f"event {position} ({event.id.hex()}): {exc.detail}") from None
    return applier.effects()


def select_events(
    state: StateView,
    candidates: Sequence[Event],
    *,
    origin: str,
    height: int,
    block_time_ms: int,
    first_index: int,
    params: Params,
    committed: Container[bytes],
    verified: Container[bytes] = frozenset(),
    trace: bool = False,
) -> Selection:
    """Like `apply_block`, but skip refused events instead of failing: what a proposer puts in its block.

    The selected events, applied with `apply_block` under the same arguments, give exactly `effects`. With
    `trace`, the selection also says which state keys each selected event read or wrote.
    """
    applier = _Applier(state, _Block(origin, height, block_time_ms, params, committed, verified), first_index)
    accepted: list[Event] = []
    refused: list[tuple[Event, InvalidEvent]] = []
    traces: list[Trace] = []
    for event in candidates:
        reads: set[bytes] | None = set() if trace else None
        try:
            written = applier.apply(event, reads)
        except InvalidEvent as exc:
            refused.append((event, exc))
        else:
            accepted.append(event)
            if reads is not None:
                traces.append(Trace(frozenset(reads.union(written)), written))
    return Selection(tuple(accepted), applier.effects(), tuple(refused), tuple(traces))


def check_event(
    state: StateView,
    event: Event,
    *,
    origin: str,
    height: int,
    now_ms: int,
    params: Params,
    committed: Container[bytes],
    verified: Container[bytes] = frozenset(),
) -> None:
    """Admission check: would `event` apply to `state` in the next block (at `height`), at time `now_ms`?

    Raises the refusal the block would get. The node runs this on every submitted event and again on pending
    events after each commit (with `verified`, so the signatures are not checked twice).
    """
    _Applier(state, _Block(origin, height, now_ms, params, committed, verified), 0).apply(event)


class _Applier:
    """Applies events one by one to an overlay over the block's starting state."""

    def __init__(self, state: StateView, block: _Block, first_index: int) -> None:
        self._state = state
        self._block = block
        self._overlay = StateOverlay(state)
        self._next_index = first_index
        self._in_block: set[bytes] = set()
        self._membership_changed = False

    def apply(self, event: Event, reads: set[bytes] | None = None) -> dict[bytes, bytes | None]:
        """Apply `event` (or raise its refusal, leaving nothing behind); return what it wrote. Each key it reads
        is added to `reads` if given."""
        block = self._block
        self._check_envelope(event, event.encode())
        check_signatures = event.leaf_hash() not in block.verified
        event_view = StateOverlay(self._overlay if reads is None else _Reads(self._overlay, reads))
        authority = authenticate(event_view, event, height=block.height, check_signatures=check_signatures)
        if isinstance(authority, IssuerAuthority):
            _check_time(event, block, block.params.max_clock_skew_ms)
        _dispatch(Context(event_view, event, authority, block.height, self._next_index))
        self._overlay.merge(event_view)
        self._in_block.add(event.id)
        self._next_index += 1
        if isinstance(event.payload, MemberPayload):
            self._membership_changed = True
        return event_view.changes

    def _check_envelope(self, event: Event, encoded: bytes) -> None:
        block = self._block
        if event.origin != block.origin:
            raise InvalidEvent("wrong-origin", f"event is for chain {event.origin!r}, this is {block.origin!r}")
        limit = event_size_limit(block.params, event)
        if len(encoded) > limit:
            raise InvalidEvent("event-too-large", f"event is {len(encoded)} bytes, the limit is {limit}")
        # The issuer's tighter bound on age waits until `authenticate` says who signed.
        _check_time(event, block, block.params.governance_window_ms)
        if event.id in block.committed:
            raise InvalidEvent("replayed-event", "this event is in the log already")
        if event.id in self._in_block:
            raise InvalidEvent("replayed-event", "this event appears earlier in the block")

    def effects(self) -> BlockEffects:
        next_validators = None
        if self._membership_changed:
            after = validator_set(self._overlay)
            if after != validator_set(self._state):
                next_validators = after
        return BlockEffects(dict(self._overlay.changes), next_validators)


class _Reads:
    """A state view that notes every key read through it."""

    __slots__ = ("_base", "_keys")

    def __init__(self, base: StateView, keys: set[bytes]) -> None:
        self._base = base
        self._keys = keys

    def get(self, key: bytes, /) -> bytes | None:
        self._keys.add(key)
        return self._base.get(key)


def event_size_limit(params: Params, event: Event) -> int:
    """The most bytes `event` may encode to: the genesis' `max_event_bytes`, except for a status list, whose size
    the standard fixes (`MAX_STATUS_EVENT_BYTES`: every possible list fits)."""
    if isinstance(event.payload, StatusPublish):
        return max(params.max_event_bytes, MAX_STATUS_EVENT_BYTES)
    return params.max_event_bytes


def _check_time(event: Event, block: _Block, max_age_ms: int) -> None:
    """Refuse an event signed more than `max_age_ms` before the block, or more than the clock skew after it."""
    offset = event.time_ms - block.time_ms
    if offset > block.params.max_clock_skew_ms:
        raise InvalidEvent(
            "time-out-of-range",
            f"event time is {offset} ms after the block's; at most {block.params.max_clock_skew_ms} ms allowed",
        )
    if -offset > max_age_ms:
        raise InvalidEvent(
            "time-out-of-range", f"event time is {-offset} ms before the block's; at most {max_age_ms} ms allowed"
        )


def _dispatch(ctx: Context) -> None:  # noqa: PLR0912 - one branch per kind
    payload = ctx.event.payload
    match payload:
        case Issue():
            apply_issue(ctx, payload)
        case Revoke():
            apply_revoke(ctx, payload)
        case Suspend():
            apply_suspend(ctx, payload)
        case Reinstate():
            apply_reinstate(ctx, payload)
        case MemberAdd():
            apply_member_add(ctx, payload)
        case MemberUpdate():
            apply_member_update(ctx, payload)
        case MemberRemove():
            apply_member_remove(ctx, payload)
        case KeyAdd():
            apply_key_add(ctx, payload)
        case KeyRetire():
            apply_key_retire(ctx, payload)
        case ReportEvidence():
            apply_report_evidence(ctx, payload)
        case StatusPublish():
            apply_status_publish(ctx, payload)
        case AchievementPublish():
            apply_achievement_publish(ctx, payload)
        case AchievementRetire():
            apply_achievement_retire(ctx, payload)
        case RecognitionPublish():
            apply_recognition_publish(ctx, payload)
        case RecognitionWithdraw():
            apply_recognition_withdraw(ctx, payload)
        case _:
            assert_never(payload)
