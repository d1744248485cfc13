"""Who an event speaks for: one member through one of its issuer keys, or governance.

An event's signatures are *authenticated* here, once, before any kind-specific rule runs:

- **Issuer authority**: exactly one signature, by an issuer key of an active member that is valid at the block's
  height. Key ids are C2SP key ids named by the member id, so a signature's (member, key id) pair finds the key's
  record in the state map.
- **Governance**: signatures by members' *node keys* (the key id equals the member's node-key id), from current
  validators (active members with voting power), together holding more than 2/3 of the power the state gives
  all validators (`ValidatorSet.quorum`).

A single signature is governance exactly when it is by the signer's node key; the rules keep node-key ids and
issuer-key ids of one member distinct, so that is never ambiguous. Signatures must be sorted by member id with
no member twice, so one set of signers has exactly one encoding. A signature that counts for nothing (a
non-validator, an issuer key among node keys) makes the event malformed rather than being skipped: a node
never stores a signature it could not check.

- **Reporter**: for consensus evidence only, one signature by an active member's node key. The evidence itself
  carries the offender's two signatures; the reporter only vouches for having seen it.

The kind-specific rules then *authorise*: `require_governance`, `require_issuer`, `require_member_or_governance`.
"""

from __future__ import annotations

from dataclasses import dataclass

from credledger.ledger import domains
from credledger.ledger.errors import BadSignature, InvalidEvent, Unauthorized
from credledger.ledger.events import Event, ReportEvidence, Signature
from credledger.ledger.keys import verify_signature
from credledger.ledger.state import (
    IssuerKeyRecord,
    MemberRecord,
    StateOverlay,
    StateView,
    get_issuer_key,
    get_member,
    key_valid_at,
    validator_set,
)

# Who signed an event, and the context its rules run in, are built afresh for every event of every rule pass and
# never changed after: plain slotted dataclasses, since a frozen one pays an object.__setattr__ call per field.


@dataclass(slots=True)
class IssuerAuthority:
    """The event is signed by `member` with its issuer key `key`."""

    member: MemberRecord
    key: IssuerKeyRecord


@dataclass(slots=True)
class Governance:
    """The event is signed by validators holding `power` of `total_power` (more than 2/3)."""

    signers: tuple[str, ...]
    power: int
    total_power: int


@dataclass(slots=True)
class Reporter:
    """The event is signed by `member`'s node key alone: how a node reports consensus evidence it holds."""

    member: MemberRecord


Authority = IssuerAuthority | Governance | Reporter


@dataclass(slots=True)
class Context:
    """One event being applied: the pending state, who it speaks for, and where it lands in the chain."""

    view: StateOverlay
    event: Event
    authority: Authority
    height: int
    index: int


def authenticate(view: StateView, event: Event, *, height: int, check_signatures: bool) -> Authority:
    """Check the event's signatures against the keys in `view` and say whom they speak for.

    With `check_signatures` false the Ed25519 checks are skipped (the caller verified this exact encoding before)
    but every key is still looked up, since keys can be retired between admission and commit.
    """
    signatures = event.signatures
    _check_signer_order(signatures)
    if isinstance(event.payload, ReportEvidence):
        return _reporter(view, event, check_signatures)
    if len(signatures) == 1:
        sig = signatures[0]
        member = get_member(view, sig.member)
        if member is None:
            raise Unauthorized("unknown-issuer", f"signer {sig.member!r} is not a member")
        if sig.key_id != member.node_key_id:
            key = _issuer_key(view, member, sig, height)
            if check_signatures:
                _verify(event, sig, key.public_key)
            return IssuerAuthority(member, key)
    return _governance(view, event, check_signatures)


def _reporter(view: StateView, event: Event, check_signatures: bool) -> Reporter:
    if len(event.signatures) != 1:
        raise Unauthorized("reporter-signature-required", "evidence is reported with one node-key signature")
    sig = event.signatures[0]
    member = get_member(view, sig.member)
    if member is None or not member.active:
        raise Unauthorized("unknown-issuer", f"reporter {sig.member!r} is not an active member")
    if sig.key_id != member.node_key_id:
        raise Unauthorized(
            "unknown-key", f"evidence is reported with a node key; {sig.key_id.hex()} is not {sig.member}'s"
        )
    if check_signatures:
        _verify(event, sig, member.node_key)
    return Reporter(member)


def _check_signer_order(signatures: tuple[Signature, ...]) -> None:
    if len(signatures) == 1:
        return  # the common case: one signer is always in order
    members = [s.member for s in signatures]
    if len(set(members)) != len(members):
        repeated = sorted({m for m in members if members.count(m) > 1})
        raise InvalidEvent("duplicate-signer", f"{', '.join(repeated)} signed more than once")
    if members != sorted(members):
        raise InvalidEvent("signatures-not-sorted", "signatures must be sorted by member id")


def _issuer_key(view: StateView, member: MemberRecord, sig: Signature, height: int) -> IssuerKeyRecord:
    if not member.active:
        raise Unauthorized("member-inactive", f"signer {member.id!r} is no longer a member")
    key = get_issuer_key(view, member.id, sig.key_id)
    if key is None:
        raise Unauthorized("unknown-key", f"{member.id!r} has no issuer key {sig.key_id.hex()}")
    if key.compromised_since is not None and height >= key.compromised_since:
        raise Unauthorized(
            "key-compromised", f"key {member.id}+{sig.key_id.hex()} is compromised since height {key.compromised_since}"
        )
    if not key_valid_at(key, height):
        until = "" if key.retired_at is None else f" until height {key.retired_at}"
        raise Unauthorized(
            "key-not-valid-at-height",
            f"key {member.id}+{sig.key_id.hex()} is valid from height {key.valid_from}{until}, not at {height}",
        )
    return key


def _governance(view: StateView, event: Event, check_signatures: bool) -> Governance:
    validators = validator_set(view)
    power = 0
    for sig in event.signatures:
        validator = validators.get(sig.member)
        if validator is None:
            raise Unauthorized("not-a-validator", f"governance signer {sig.member!r} is not a voting member")
        if sig.key_id != validator.public_key.key_id:
            raise Unauthorized(
                "unknown-key", f"governance signatures use node keys; {sig.key_id.hex()} is not {sig.member}'s"
            )
        if check_signatures:
            _verify(event, sig, validator.node_key)
        power += validator.power
    if power < validators.quorum:
        raise Unauthorized(
            "insufficient-governance-power",
            f"signers hold {power} of {validators.total_power} voting power, need more than 2/3 ({validators.quorum})",
        )
    return Governance(tuple(s.member for s in event.signatures), power, validators.total_power)


def _verify(event: Event, sig: Signature, public_key: bytes) -> None:
    try:
        verify_signature(public_key, domains.EVENT + event.signed_bytes(), sig.sig)
    except BadSignature:
        raise Unauthorized("bad-signature", f"signature by {sig.member}+{sig.key_id.hex()} does not verify") from None


def require_governance(ctx: Context, what: str) -> Governance:
    """Refuse unless governance signed the event."""
    if not isinstance(ctx.authority, Governance):
        raise Unauthorized("governance-required", f"{what} needs signatures of more than 2/3 of the voting power")
    return ctx.authority


def require_issuer(ctx: Context, what: str) -> IssuerAuthority:
    """Refuse unless one issuer key signed the event."""
    if not isinstance(ctx.authority, IssuerAuthority):
        raise Unauthorized("issuer-signature-required", f"{what} is signed by one issuer key of the issuing member")
    return ctx.authority


def require_member_or_governance(ctx: Context, member_id: str, rule: str) -> None:
    """Refuse unless governance signed, or `member_id` itself did (otherwise the refusal is named `rule`)."""
    authority = ctx.authority
    if isinstance(authority, IssuerAuthority) and authority.member.id != member_id:
        raise Unauthorized(rule, f"signed by {authority.member.id!r}; only {member_id!r} or governance may do this")
