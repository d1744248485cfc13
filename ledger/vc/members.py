"""Members as standard verifiers see them (DESIGN §13): DID documents from certified records, and the issuer registry.

Pure functions over state records, so every node derives the same document from the same height, and a verifier
holding the records (from a bundle or `GET /v1/members`) can derive it too.

The registry is the Digital Credentials Consortium's "dcc-legacy" known-issuer list, the form its verifier library
(`@digitalcredentials/verifier-core`, through `issuer-registry-client`) reads: ``{"meta": {...}, "registry": {<DID>:
{"name", "url"}}}``; a verifier looks the credential's issuer DID up in ``registry``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from credledger.ledger.errors import DecodeError
from credledger.ledger.state import IssuerKeyRecord, MemberRecord
from credledger.ledger.vc.did import (
    DID_WEB_PREFIX,
    IssuerKey,
    KeyStatus,
    default_did,
    did_document,
    did_web_url,
)

#: The `meta.type` of the registry document: which format it is.
REGISTRY_FORMAT = "dcc-legacy"


def issuer_key(record: IssuerKeyRecord) -> IssuerKey:
    """An issuer-key record as a DID document lists it: compromised, retired or valid."""
    if record.compromised_since is not None:
        status = KeyStatus.COMPROMISED
    elif record.retired_at is not None:
        status = KeyStatus.RETIRED
    else:
        status = KeyStatus.VALID
    return IssuerKey(record.key_id, record.public_key, status)


def member_did_document(member: MemberRecord, keys: Iterable[IssuerKeyRecord]) -> dict[str, Any]:
    """`member`'s DID document: every issuer key it ever registered except those marked compromised."""
    records = list(keys)
    strangers = sorted({k.member for k in records} - {member.id})
    if strangers:
        raise ValueError(f"issuer keys of {', '.join(strangers)} are not {member.id}'s")
    return did_document(member.did, (issuer_key(k) for k in records))


def member_home_page(member: MemberRecord) -> str | None:
    """The institution's web origin when its DID is a did:web (``https://<host>``); None for a did:key."""
    if not member.did.startswith(DID_WEB_PREFIX):
        return None
    url = did_web_url(member.did)
    return url[: url.index("/", len("https://"))]


def status_host(member: MemberRecord) -> str:
    """The web origin a member's status lists are published under: its did:web host, or -- for a did:key, which
    names no host -- its member id, a domain like every default DID's (``https://<id>``)."""
    home = member_home_page(member)
    if home is not None:
        return home
    try:
        return member_home_page(replace(member, did=default_did(member.id))) or ""
    except ValueError:
        raise DecodeError(
            f"{member.id} has the DID {member.did[:60]}..., which names no web host, and its member id is not a "
            "DNS name to publish its status lists under"
        ) from None


def status_list_url(member: MemberRecord, list_number: int, purpose: str) -> str:
    """Where verifiers fetch `member`'s status list `list_number` for `purpose`: on its `status_host`, a path every
    node serves (``/v1/members/<id>/status/<list>/<purpose>``), so pointing the domain at any node works."""
    return f"{status_host(member)}/v1/members/{member.id}/status/{list_number}/{purpose}"


def member_status_list(
    member: MemberRecord, list_number: int, purpose: str, bits: bytes, *, valid_from_ms: int, validity_ms: int
) -> dict[str, Any]:
    """The unsigned ``BitstringStatusListCredential`` of `member`'s list for `purpose` holding `bits`, valid for
    `validity_ms` from `valid_from_ms`; verifiers may cache it for a tenth of that (``ttl``)."""
    # Imported here: the status-list module brings the JSON-LD processor, which the ledger rules (importing this
    # module for `status_list_url`) must not load at start-up: it takes most of a second.
    from credledger.ledger.vc.statuslist import Bitstring, status_list_credential  # noqa: PLC0415

    return status_list_credential(
        member.did,
        status_list_url(member, list_number, purpose),
        purpose,
        Bitstring(bits),
        valid_from_ms,
        valid_until_ms=valid_from_ms + validity_ms,
        ttl_ms=max(1, validity_ms // 10),
    )


def issuer_registry(members: Iterable[MemberRecord], origin: str) -> dict[str, Any]:
    """The active members of chain `origin` as a known-issuer registry: DID -> name, home page and member id.

    Nothing in it but the member set, which changes only through governance, so it stays byte-identical (and
    cacheable) from block to block."""
    entries: dict[str, Any] = {}
    for member in sorted((m for m in members if m.active), key=lambda m: m.did):
        home = member_home_page(member)
        entries[member.did] = {"name": member.name, **({"url": home} if home is not None else {}), "id": member.id}
    return {
        "meta": {"type": REGISTRY_FORMAT, "name": f"credledger members of {origin}"},
        "registry": entries,
    }
