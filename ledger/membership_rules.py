"""The rules for membership and issuer-key events (DESIGN §2, §3).

Membership changes (`member.add`, `member.update`, `member.remove`) need governance. A member manages its own
issuer keys (`key.add`, `key.retire`) with one of its valid issuer keys; governance may do the same for any
member (to recover one that lost every key), and only governance may mark a key compromised.

Invariants these rules keep:
- the state always holds at least one validator (an active member with voting power);
- within one member, no two keys (issuer keys, ever registered, and the node key) share a key id, so a
  signature's key id names exactly one key and `ledger.authority` can tell governance from issuer signatures;
- no two active members share a node key, so one key never casts two members' votes;
- no two active members share a DID, so a credential's issuer DID names one member (DESIGN §13);
- retirement takes effect from the next height (`retired_at = height + 1`): events the same block accepted
  earlier under the key stay verifiable, since verifiers know heights, not positions within a block.
"""

from __future__ import annotations

import dataclasses

from credledger.ledger.authority import Context, IssuerAuthority, require_governance, require_member_or_governance
from credledger.ledger.errors import InvalidEvent
from credledger.ledger.events import KeyAdd, KeyRetire, MemberAdd, MemberRemove, MemberUpdate
from credledger.ledger.keys import key_id
from credledger.ledger.limits import MAX_ISSUER_KEYS, MAX_MEMBERS
from credledger.ledger.state import (
    IssuerKeyRecord,
    MemberRecord,
    StateOverlay,
    StateView,
    active_members,
    get_directory,
    get_issuer_key,
    get_member,
)
from credledger.ledger.vc.did import default_did


def admit_member(view: StateOverlay, payload: MemberAdd, height: int) -> None:
    """Write the records of a member admitted at `height` (checked already; genesis uses this too)."""
    key_ids = tuple(key_id(payload.member, k) for k in payload.issuer_keys)
    for kid, public_key in zip(key_ids, payload.issuer_keys, strict=True):
        view.put_issuer_key(IssuerKeyRecord(payload.member, kid, public_key, height, None, None))
    did = payload.did or default_did(payload.member)
    view.put_member(
        MemberRecord(payload.member, payload.name, payload.power, payload.node_key, True, height, key_ids, did)
    )
    view.put_directory(get_directory(view).with_member(payload.member))


def apply_member_add(ctx: Context, payload: MemberAdd) -> None:
    require_governance(ctx, "member.add")
    existing = get_member(ctx.view, payload.member)
    if existing is not None and existing.active:
        raise InvalidEvent("duplicate-member", f"{payload.member!r} is a member already")
    if len(get_directory(ctx.view).members) >= MAX_MEMBERS:
        raise InvalidEvent("too-many-members", f"the ledger holds its limit of {MAX_MEMBERS} members")
    _check_node_key(ctx.view, payload.member, payload.node_key)
    _check_did_free(ctx.view, payload.member, payload.did or default_did(payload.member))
    key_ids = [key_id(payload.member, k) for k in payload.issuer_keys]
    if len(set(key_ids)) != len(key_ids):
        raise InvalidEvent("duplicate-key", "two of the issuer keys share a key id")
    for kid in key_ids:
        _check_new_key_id(ctx.view, payload.member, kid, node_key=payload.node_key)
    admit_member(ctx.view, payload, ctx.height)


def apply_member_update(ctx: Context, payload: MemberUpdate) -> None:
    require_governance(ctx, "member.update")
    record = _active_member(ctx.view, payload.member)
    if payload.node_key != record.node_key:
        _check_node_key(ctx.view, payload.member, payload.node_key)
    if payload.did is not None and payload.did != record.did:
        _check_did_free(ctx.view, payload.member, payload.did)
    updated = dataclasses.replace(
        record, name=payload.name, power=payload.power, node_key=payload.node_key, did=payload.did or record.did
    )
    ctx.view.put_member(updated)
    _check_validators_remain(ctx.view, f"setting {payload.member!r}'s power to 0")


def _check_did_free(view: StateView, member_id: str, did: str) -> None:
    """No two active members share a DID: a verifier maps a credential's issuer DID to exactly one member."""
    for other in active_members(view):
        if other.id != member_id and other.did == did:
            raise InvalidEvent("duplicate-did", f"{other.id!r} already has the DID {did!r}")


def apply_member_remove(ctx: Context, payload: MemberRemove) -> None:
    require_governance(ctx, "member.remove")
    record = _active_member(ctx.view, payload.member)
    for kid in record.issuer_keys:
        key = _key(ctx.view, record.id, kid)
        ctx.view.put_issuer_key(dataclasses.replace(key, retired_at=ctx.height + 1))
    ctx.view.put_member(dataclasses.replace(record, active=False, issuer_keys=()))
    ctx.view.put_directory(get_directory(ctx.view).without_member(record.id))
    _check_validators_remain(ctx.view, f"removing {payload.member!r}")


def apply_key_add(ctx: Context, payload: KeyAdd) -> None:
    require_member_or_governance(ctx, payload.member, "not-the-member")
    record = _active_member(ctx.view, payload.member)
    kid = key_id(payload.member, payload.public_key)
    _check_new_key_id(ctx.view, payload.member, kid, node_key=record.node_key)
    if len(record.issuer_keys) >= MAX_ISSUER_KEYS:
        raise InvalidEvent(
            "too-many-keys", f"{payload.member!r} holds {MAX_ISSUER_KEYS} unretired issuer keys; retire one first"
        )
    ctx.view.put_issuer_key(IssuerKeyRecord(payload.member, kid, payload.public_key, ctx.height, None, None))
    ctx.view.put_member(dataclasses.replace(record, issuer_keys=(*record.issuer_keys, kid)))


def apply_key_retire(ctx: Context, payload: KeyRetire) -> None:
    if payload.compromised_since is not None:
        require_governance(ctx, "marking a key compromised")
    else:
        require_member_or_governance(ctx, payload.member, "not-the-member")
    record = get_member(ctx.view, payload.member)
    if record is None:
        raise InvalidEvent("unknown-member", f"{payload.member!r} is not a member")
    key = _key(ctx.view, payload.member, payload.key_id)
    if payload.compromised_since is None:
        if key.retired_at is not None:
            raise InvalidEvent("already-retired", f"key {_name(key)} is retired since height {key.retired_at}")
        if isinstance(ctx.authority, IssuerAuthority) and record.issuer_keys == (key.key_id,):
            raise InvalidEvent(
                "would-retire-last-key", f"{_name(key)} is {payload.member!r}'s last key; add another first"
            )
        updated = dataclasses.replace(key, retired_at=ctx.height + 1)
    else:
        since = payload.compromised_since
        if since > ctx.height:
            raise InvalidEvent("compromise-in-future", f"compromised since {since} is after this height {ctx.height}")
        if key.compromised_since is not None and key.compromised_since <= since:
            raise InvalidEvent(
                "already-compromised", f"key {_name(key)} is compromised since height {key.compromised_since} already"
            )
        retired_at = ctx.height + 1 if key.retired_at is None else key.retired_at
        updated = dataclasses.replace(key, retired_at=retired_at, compromised_since=since)
    ctx.view.put_issuer_key(updated)
    if key.key_id in record.issuer_keys:
        remaining = tuple(k for k in record.issuer_keys if k != key.key_id)
        ctx.view.put_member(dataclasses.replace(record, issuer_keys=remaining))


def _active_member(view: StateView, member_id: str) -> MemberRecord:
    record = get_member(view, member_id)
    if record is None:
        raise InvalidEvent("unknown-member", f"{member_id!r} is not a member")
    if not record.active:
        raise InvalidEvent("member-inactive", f"{member_id!r} was removed")
    return record


def _key(view: StateView, member_id: str, kid: bytes) -> IssuerKeyRecord:
    key = get_issuer_key(view, member_id, kid)
    if key is None:
        raise InvalidEvent("unknown-key", f"{member_id!r} has no issuer key {kid.hex()}")
    return key


def _check_node_key(view: StateView, member_id: str, node_key: bytes) -> None:
    for other in active_members(view):
        if other.id != member_id and other.node_key == node_key:
            raise InvalidEvent("duplicate-key", f"{other.id!r} already uses this node key")
    if get_issuer_key(view, member_id, key_id(member_id, node_key)) is not None:
        raise InvalidEvent("duplicate-key", f"the node key's id collides with one of {member_id!r}'s issuer keys")


def _check_new_key_id(view: StateView, member_id: str, kid: bytes, *, node_key: bytes) -> None:
    if kid == key_id(member_id, node_key):
        raise InvalidEvent("duplicate-key", f"issuer key id {kid.hex()} collides with {member_id!r}'s node key")
    if get_issuer_key(view, member_id, kid) is not None:
        raise InvalidEvent("duplicate-key", f"{member_id!r} has (or had) a key with id {kid.hex()}")


def _check_validators_remain(view: StateView, change: str) -> None:
    if not any(m.power > 0 for m in active_members(view)):
        raise InvalidEvent("would-remove-all-validators", f"{change} would leave no member with voting power")


def _name(key: IssuerKeyRecord) -> str:
    return f"{key.member}+{key.key_id.hex()}"
