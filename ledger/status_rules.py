"""The rule for `status.publish`: a member's signed Bitstring Status List enters the log (DESIGN §13).

A status list credential is accepted only if it says exactly what certified state says: it is the
`BitstringStatusListCredential` of the signing member's list and purpose, at the URL `status_list_url` names,
issued by the member's DID, signed (``eddsa-rdfc-2022``) by one of the member's issuer keys valid at this height,
and its bits equal the state's bits for that list and purpose at the event's position in its block. The state
then records where the event is, so every node serves the same credential bytes (`node.api.standard`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from credledger.ledger import keys
from credledger.ledger.authority import Context, require_issuer
from credledger.ledger.errors import DecodeError, InvalidEvent, Unauthorized
from credledger.ledger.events import StatusPublish
from credledger.ledger.state import (
    MemberRecord,
    StatusPublishedRecord,
    get_issuer_key,
    get_status_list,
    key_valid_at,
    status_published_key,
)
from credledger.ledger.vc.errors import ProofError
from credledger.ledger.vc.members import status_list_url
from credledger.ledger.vc.multikey import DID_KEY_PREFIX, parse_did_key

if TYPE_CHECKING:
    from credledger.ledger.vc.proof import KeyResolver

#: The purposes a member publishes lists for (`ledger.vc.statuslist.PURPOSES`, which a test holds equal).
PURPOSES = ("revocation", "suspension")


def apply_status_publish(ctx: Context, payload: StatusPublish) -> None:
    # Imported here, not at the top: they bring the JSON-LD processor, which takes most of a second to load, and
    # every process that applies rules (the node, the CLI, auditors) would pay it at start-up for a rare event.
    from credledger.ledger.vc.proof import verify_credential  # noqa: PLC0415
    from credledger.ledger.vc.statuslist import read_status_list_credential  # noqa: PLC0415

    authority = require_issuer(ctx, "a status list")
    member = authority.member
    if member.id != payload.member:
        raise Unauthorized("not-the-issuer", f"signed by {member.id!r} but publishes {payload.member!r}'s list")
    if payload.purpose not in PURPOSES:
        raise InvalidEvent("status-list-refused", f"purpose must be one of {', '.join(PURPOSES)}")
    record = get_status_list(ctx.view, member.id, payload.list_number)
    if record is None:
        raise InvalidEvent("unknown-status-list", f"{member.id} has no status list {payload.list_number}")
    document = _document(payload.credential)
    try:
        expected_url = status_list_url(member, payload.list_number, payload.purpose)
        listed = read_status_list_credential(document)
        verify_credential(document, _member_keys(ctx, member))
    except (DecodeError, ProofError) as exc:
        raise InvalidEvent("status-list-refused", str(exc)) from None
    for what, got, expected in (
        ("id", listed.list_url, expected_url),
        ("issuer", listed.issuer, member.did),
        ("statusPurpose", listed.purpose, payload.purpose),
    ):
        if got != expected:
            raise InvalidEvent("status-list-refused", f"{what}: expected {expected!r}, got {got!r}")
    state_bits: bytes = getattr(record, payload.purpose)
    if listed.bits.data != state_bits:
        raise InvalidEvent(
            "status-list-stale",
            f"the list's {payload.purpose} bits are not the state's at this position "
            f"({len(listed.bits.set_indices())} set, the state has {bin(int.from_bytes(state_bits)).count('1')})",
        )
    ctx.view.put(
        status_published_key(member.id, payload.list_number, payload.purpose),
        StatusPublishedRecord(ctx.index, ctx.height),
    )


def _document(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidEvent("status-list-refused", "the credential is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidEvent("status-list-refused", "the credential is not a JSON object")
    return document


def _member_keys(ctx: Context, member: MemberRecord) -> KeyResolver:
    """Resolve ``<member DID>#<key id hex>`` (or a did:key member's ``<did>#<multibase key>``) to the member's issuer
    key, if it is valid at this height."""

    def resolve(verification_method: str) -> bytes:
        did, _, fragment = verification_method.partition("#")
        if did != member.did:
            raise ProofError("verification-method", f"{verification_method!r} is not a key of {member.did!r}")
        if did.startswith(DID_KEY_PREFIX):
            try:  # the DID names its one key: it must be a registered issuer key of the member
                key_id = keys.key_id(member.id, parse_did_key(verification_method))
            except DecodeError as exc:
                raise ProofError("verification-method", str(exc)) from None
        else:
            try:
                key_id = bytes.fromhex(fragment)
            except ValueError:
                key_id = b""
        key = get_issuer_key(ctx.view, member.id, key_id) if len(key_id) == 4 else None
        if key is None or not key_valid_at(key, ctx.height):
            raise ProofError("verification-method", f"{verification_method!r} is no valid issuer key of {member.id}")
        return key.public_key

    return resolve
