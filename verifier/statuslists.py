"""Check a signed credential's Bitstring Status Lists against the certified state (DESIGN §13: the split-view
defence).

A W3C verifier trusts the status list a URL serves. credledger's verifiers hold more: a bundle whose state proof
says, for this credential, whether it is revoked or suspended as of a certified checkpoint. So for each of the
credential's ``BitstringStatusListEntry``s, the list -- fetched from the node that served the bundle, or given by
the caller as fetched elsewhere -- must:

1. be the entry the ledger registered: the issue event in the bundle names the list number and index, and the
   entry's ``statusListCredential`` is that list's URL under the member's certified DID (``status-entry``);
2. be that list: a ``BitstringStatusListCredential`` whose ``id`` is the URL, whose purpose is the entry's, and
   whose ``issuer`` is the credential's issuer, the member's DID (``status-list``);
3. carry an ``eddsa-rdfc-2022`` proof by a key of that issuer: the issuer key the bundle proves (certified), or
   another of the member's keys found in its DID document as the node serves it (said so in the check);
4. say what the certified state says: its bit at the credential's index is set exactly when the bundle's verdict
   is revoked (revocation list) or suspended (suspension list).

A list that fails 2-4 is refused, naming its URL and where it came from; the report's status is then
`INVALID_STATUS_LIST`. A list published before a status change still in its last blocks can lag behind a fresh
bundle (§13: a change shows within two blocks), so a node's list that disagrees is fetched again a few times
before it is refused. A list that cannot be fetched (not published yet, the node unreachable) is a failed check
that leaves the ledger's answer standing: the bundle already proved it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from credledger.ledger import codec
from credledger.ledger.bundle import Bundle, Verdict
from credledger.ledger.errors import CredledgerError, DecodeError
from credledger.ledger.events import Issue, decode_event
from credledger.ledger.state import IssuerKeyRecord, MemberRecord

#: The step every status-list check is reported under.
STATUS_LIST_STEP = "status-list"
#: The report's status when a status list disagrees with the certified state, or is not the issuer's.
INVALID_STATUS_LIST = "invalid-status-list"
#: Largest status list credential read from a file (a list of 8 Mi entries encodes to at most about 1.4 MB).
MAX_STATUS_LIST_FILE_BYTES = 4 * 1024 * 1024
#: How often a node's list that disagrees with the bundle is fetched again, and how long apart (it may lag).
REFETCHES = 3
REFETCH_PAUSE_S = 1.0

#: Fetches the list credential at a URL (None: this source cannot serve that URL); raises `CredledgerError`.
ListFetcher = Callable[[str], dict[str, Any] | None]
#: Finds the public key of a verification method the bundle does not prove (the member's DID document).
KeyFinder = Callable[[str], bytes]


@dataclass(frozen=True, slots=True)
class ListCheck:
    """The outcome of checking one status entry: `refused` when the list is not to be believed."""

    ok: bool
    detail: str
    refused: bool = False


def read_status_list_file(source: str | os.PathLike[str]) -> dict[str, Any]:
    """A status list credential a caller fetched and saved (JSON); `DecodeError` if it is not one."""
    path = os.fspath(source)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_STATUS_LIST_FILE_BYTES + 1)
    except OSError as exc:
        raise DecodeError(f"{path}: cannot read the status list ({exc.strerror})") from None
    if len(data) > MAX_STATUS_LIST_FILE_BYTES:
        raise DecodeError(f"{path}: larger than {MAX_STATUS_LIST_FILE_BYTES} bytes")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise DecodeError(f"{path}: the status list is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("id"), str):
        raise DecodeError(f"{path}: a status list credential is a JSON object with an id")
    return document


def lists_by_url(lists: Sequence[str | os.PathLike[str] | Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Status list credentials given by a caller (files or documents), by their ``id``."""
    found: dict[str, dict[str, Any]] = {}
    for item in lists:
        document = dict(item) if isinstance(item, Mapping) else read_status_list_file(item)
        url = document.get("id")
        if not isinstance(url, str):
            raise DecodeError("a status list credential has an id (its URL)")
        found[url] = document
    return found


def check_status_lists(
    document: Mapping[str, Any],
    bundle: Bundle,
    verdict: Verdict,
    *,
    given: Mapping[str, dict[str, Any]],
    fetch: ListFetcher | None,
    find_key: KeyFinder | None,
    source: str,
    pause: Callable[[float], None] = time.sleep,
) -> list[ListCheck]:
    """Check every status entry of a signed credential whose bundle verified (see the module docstring)."""
    if bundle.member is None or bundle.key is None or bundle.member.value is None or bundle.key.value is None:
        return []
    member = codec.decode(MemberRecord, bundle.member.value)
    key = codec.decode(IssuerKeyRecord, bundle.key.value)
    issue = decode_event(bundle.events[0].event).payload
    raw = document.get("credentialStatus")
    entries = raw if isinstance(raw, list) else [] if raw is None else [raw]
    if not entries:
        return []
    if not isinstance(issue, Issue) or issue.status_list is None or issue.status_index is None:
        detail = (
            "the credential has status entries, but its issue event registered none: their lists are not the ledger's"
        )
        return [ListCheck(False, detail)]
    facts = _Certified(document, member, key, issue, verdict)
    return [
        _check_entry(entry, facts, given=given, fetch=fetch, find_key=find_key, source=source, pause=pause)
        for entry in entries
    ]


@dataclass(frozen=True, slots=True)
class _Certified:
    """What a verified bundle proves about the credential, and the credential itself."""

    document: Mapping[str, Any]
    member: MemberRecord
    key: IssuerKeyRecord
    issue: Issue
    verdict: Verdict


def _registered_entry(entry: Any, facts: _Certified) -> tuple[str, str, int] | ListCheck:
    """The entry's purpose, list URL and index if they are what the issue event registered; else the refusal."""
    # Imported here: they bring the JSON-LD processor, which takes most of a second to load.
    from credledger.ledger.vc.members import status_list_url  # noqa: PLC0415
    from credledger.ledger.vc.statuslist import PURPOSES, entry_index  # noqa: PLC0415

    if not isinstance(entry, dict):
        return ListCheck(False, "a credentialStatus entry is not an object", True)
    purpose, url = entry.get("statusPurpose"), entry.get("statusListCredential")
    if not isinstance(purpose, str) or not isinstance(url, str):
        return ListCheck(False, f"a status entry names purpose {purpose!r} and list {url!r}", True)
    if purpose not in PURPOSES:
        return ListCheck(
            True, f"{purpose[:40]!r} entry: the ledger certifies only {' and '.join(PURPOSES)}; not checked"
        )
    try:
        index = entry_index(entry)
        expected_url = status_list_url(facts.member, facts.issue.status_list or 0, purpose)
    except DecodeError as exc:
        return ListCheck(False, f"{purpose} entry: {exc}", True)
    if (url, index) != (expected_url, facts.issue.status_index):
        return ListCheck(
            False,
            f"the {purpose} entry points at {url} index {index}, but the issue event registered "
            f"{expected_url} index {facts.issue.status_index}",
            True,
        )
    return purpose, url, index


def _check_entry(
    entry: Any,
    facts: _Certified,
    *,
    given: Mapping[str, dict[str, Any]],
    fetch: ListFetcher | None,
    find_key: KeyFinder | None,
    source: str,
    pause: Callable[[float], None],
) -> ListCheck:
    registered = _registered_entry(entry, facts)
    if isinstance(registered, ListCheck):
        return registered
    purpose, url, index = registered
    if url in given:
        where = f"the list given for {url}"
        return _check_list(given[url], facts, url=url, where=where, purpose=purpose, index=index, find_key=find_key)
    if fetch is None:
        return ListCheck(True, f"{purpose}: no list fetched or given for {url}; only the ledger's answer was checked")
    outcome = ListCheck(False, "")
    for attempt in range(REFETCHES + 1):
        try:
            fetched = fetch(url)
        except CredledgerError as exc:
            return ListCheck(False, f"{purpose}: could not fetch {url} from {source}: {exc}")
        if fetched is None:
            return ListCheck(True, f"{purpose}: {source} does not serve {url}; only the ledger's answer was checked")
        where = f"the list {source} serves for {url}"
        outcome = _check_list(fetched, facts, url=url, where=where, purpose=purpose, index=index, find_key=find_key)
        if outcome.ok or attempt == REFETCHES:
            break
        pause(REFETCH_PAUSE_S)  # a list lags a status change by up to two blocks
    return outcome


def _check_list(
    listed: dict[str, Any],
    facts: _Certified,
    *,
    url: str,
    where: str,
    purpose: str,
    index: int,
    find_key: KeyFinder | None,
) -> ListCheck:
    """Steps 2 to 4 of the module docstring for one list credential (`where` says whose and which)."""
    from credledger.ledger.vc.did import member_method_id  # noqa: PLC0415
    from credledger.ledger.vc.errors import ProofError  # noqa: PLC0415
    from credledger.ledger.vc.proof import issuer_id, verify_credential  # noqa: PLC0415
    from credledger.ledger.vc.statuslist import REVOCATION, read_status_list_credential  # noqa: PLC0415

    member, verdict = facts.member, facts.verdict
    try:
        certified_key = member_method_id(member.did, facts.key.key_id, facts.key.public_key)
    except ProofError as exc:
        certified_key = f"(none: {exc.detail})"
    key_sources: list[str] = []

    def resolve(method: str) -> bytes:
        if method == certified_key:
            key_sources.append(f"{method}, the issuer key the ledger proves")
            return facts.key.public_key
        if find_key is None:
            raise ProofError("verification-method", f"{method} is not the issuer key the bundle proves")
        key_sources.append(f"{method}, from the member's DID document")
        return find_key(method)

    try:
        status_list = read_status_list_credential(listed)
        issuer = issuer_id(facts.document)
        for what, got, expected in (
            ("id", status_list.list_url, url),
            ("statusPurpose", status_list.purpose, purpose),
            ("issuer", status_list.issuer, issuer),
            ("issuer", status_list.issuer, member.did),
        ):
            if got != expected:
                return ListCheck(False, f"{where}: {what} is {got!r}, expected {expected!r}", True)
        verify_credential(listed, resolve)
        shown = status_list.bits.is_set(index)
    except ProofError as exc:
        return ListCheck(False, f"{where}: its proof fails: {exc.check}: {exc.detail}", True)
    except DecodeError as exc:
        return ListCheck(False, f"{where}: {exc}", True)
    word = "revoked" if purpose == REVOCATION else "suspended"
    certified = verdict.status == word
    showing = f"entry {index} as {'' if shown else 'not '}{word}"
    if shown != certified:
        return ListCheck(
            False,
            f"{where} DISAGREES with the certified state: it shows {showing}, but the state proof at height "
            f"{verdict.height} says {verdict.status}",
            True,
        )
    signer = key_sources[-1] if key_sources else certified_key
    return ListCheck(True, f"{where} is signed by {signer} and shows {showing}, as the certified state says")


def node_fetcher(get: Callable[[str], dict[str, Any]]) -> ListFetcher:
    """Fetch a list URL's path from one node (every node serves every member's lists under the same path):
    `get(path)` asks it."""

    def fetch(url: str) -> dict[str, Any] | None:
        parts = urlsplit(url)
        if not parts.path.startswith("/v1/members/") or parts.query:
            return None
        return get(parts.path)

    return fetch
