"""Turning an unsigned VC 2.0 / Open Badges 3.0 credential into a signed one a member issues (DESIGN §13).

`prepare_credential` fills what the ledger knows: ``issuer`` (the member's DID; for an Open Badge, its profile's
``id``, and ``name``/``url`` if absent), ``validFrom`` if absent, and ``credentialStatus``: a revocation and a
suspension `BitstringStatusListEntry` at one entry of the member's list. `sign_issued` then signs it
(``eddsa-rdfc-2022``). A credential that already has a proof or status entries, names another issuer, or is not
valid JSON-LD is refused with `CredentialRefused` naming the check; so is one whose Open Badges achievement is not
the ledger achievement its issue names (`check_awarded_achievement`). `choose_status_entry` picks the entry: a
uniformly random free index of the member's first list that is less than half full.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from credledger.ledger.errors import DecodeError
from credledger.ledger.keys import SigningKey
from credledger.ledger.limits import MAX_STATUS_LISTS, STATUS_LIST_ENTRIES
from credledger.ledger.state import MemberRecord
from credledger.ledger.vc.canon import canonicalize
from credledger.ledger.vc.did import member_method_id
from credledger.ledger.vc.errors import ProofError
from credledger.ledger.vc.loader import CREDENTIALS_V2
from credledger.ledger.vc.members import member_home_page, status_list_url
from credledger.ledger.vc.proof import format_datetime, sign_credential
from credledger.ledger.vc.statuslist import PURPOSES, status_entries

OPEN_BADGE_TYPES = frozenset({"OpenBadgeCredential", "AchievementCredential"})
#: Tries to find a free entry at random before giving up (each try fails with probability below 1/2).
MAX_ENTRY_TRIES = 64


class CredentialRefused(DecodeError):
    """An unsigned credential that cannot be issued as it is; `check` names why."""

    code = "credential-refused"

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check


def prepare_credential(
    document: Mapping[str, Any], member: MemberRecord, list_number: int, index: int, issued_ms: int
) -> dict[str, Any]:
    """A copy of `document` with issuer, validFrom and status entries filled in, ready to sign."""
    if not isinstance(document, Mapping):
        raise CredentialRefused("document", "a credential is a JSON object")
    if "proof" in document:
        raise CredentialRefused("proof-absent", "the credential already carries a proof; give the unsigned one")
    if "credentialStatus" in document:
        raise CredentialRefused("status-absent", "the credential already has credentialStatus; the ledger assigns it")
    contexts = document.get("@context")
    if not isinstance(contexts, list) or not contexts or contexts[0] != CREDENTIALS_V2:
        raise CredentialRefused("context", f"a VC 2.0 credential's @context is a list starting with {CREDENTIALS_V2}")
    credential = copy.deepcopy(dict(document))
    credential["issuer"] = _issuer(credential.get("issuer"), member, _is_open_badge(credential))
    credential.setdefault("validFrom", format_datetime(issued_ms))
    urls = {purpose: status_list_url(member, list_number, purpose) for purpose in PURPOSES}
    credential["credentialStatus"] = status_entries(urls, index)
    try:
        canonicalize(credential)
    except DecodeError as exc:
        raise CredentialRefused("json-ld", str(exc)) from None
    return credential


def sign_issued(credential: Mapping[str, Any], member: MemberRecord, key: SigningKey, issued_ms: int) -> dict[str, Any]:
    """`credential` (from `prepare_credential`) signed ``eddsa-rdfc-2022`` by the member's issuer `key`."""
    if key.name != member.id:
        raise CredentialRefused("issuer-key", f"the key is {key.name}'s, not {member.id}'s")
    try:
        method = member_method_id(member.did, key.key_id, key.public.raw)
    except ProofError as exc:
        raise CredentialRefused(exc.check, exc.detail) from None
    return sign_credential(credential, key, method, issued_ms)


def check_awarded_achievement(document: Mapping[str, Any], achievement: str | None) -> None:
    """Refuse a credential whose Open Badges 3.0 achievement (`credentialSubject.achievement.id`, in every subject
    that has one) is not `achievement`, the ledger achievement its issue event names (DESIGN §14): the signed
    document and the ledger must say the same thing about what is awarded. Nothing to check when the event names
    no achievement or the credential carries none."""
    if achievement is None:
        return
    subjects = document.get("credentialSubject")
    for i, subject in enumerate(subjects if isinstance(subjects, list) else [subjects]):
        awarded = subject.get("achievement") if isinstance(subject, Mapping) else None
        if awarded is None:
            continue
        where = "credentialSubject" + (f"[{i}]" if isinstance(subjects, list) else "") + ".achievement"
        given = awarded.get("id") if isinstance(awarded, Mapping) else None
        if not isinstance(given, str):
            raise CredentialRefused(
                "achievement", f"{where} has no id to compare with the achievement {achievement!r} the issue names"
            )
        if given != achievement:
            raise CredentialRefused(
                "achievement",
                f"{where}.id is {given!r}, but the issue names the achievement {achievement!r}: the credential "
                "must award the published achievement it is registered as (publish the definition under the "
                "credential's achievement id, or give the credential the definition's id)",
            )


def _is_open_badge(credential: Mapping[str, Any]) -> bool:
    types = credential.get("type")
    return isinstance(types, list) and any(t in OPEN_BADGE_TYPES for t in types)


def _issuer(given: Any, member: MemberRecord, open_badge: bool) -> Any:
    named = given.get("id") if isinstance(given, dict) else given
    if named is not None and named != member.did:
        raise CredentialRefused("issuer", f"the credential names {named!r} as issuer, but {member.id} is {member.did}")
    if not open_badge and not isinstance(given, dict):
        return member.did
    profile: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
    profile["id"] = member.did
    profile.setdefault("type", ["Profile"])
    profile.setdefault("name", member.name)
    home = member_home_page(member)
    if home is not None:
        profile.setdefault("url", home)
    return profile


def choose_list(used: Sequence[int]) -> int:
    """The first list less than half full (`used[L]`: entries taken in list L), or the next list to open."""
    for list_number, taken in enumerate(used):
        if taken < STATUS_LIST_ENTRIES // 2:
            return list_number
    if len(used) >= MAX_STATUS_LISTS:
        raise CredentialRefused("status-entry", "every status list of the member is half full")
    return len(used)


def choose_status_entry(
    used: Sequence[int], taken: Callable[[int, int], bool], randbelow: Callable[[int], int] = secrets.randbelow
) -> tuple[int, int]:
    """A (list, index) that `taken` says is free: random indexes of `choose_list(used)` until one is."""
    list_number = choose_list(used)
    for _ in range(MAX_ENTRY_TRIES):
        index = randbelow(STATUS_LIST_ENTRIES)
        if not taken(list_number, index):
            return list_number, index
    raise CredentialRefused("status-entry", f"found no free entry of list {list_number} in {MAX_ENTRY_TRIES} tries")
