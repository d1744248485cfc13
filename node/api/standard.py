"""What standard VC 2.0 / Open Badges 3.0 verifiers fetch from a node (DESIGN §13): DID documents, the registry
and Bitstring Status Lists.

Every answer is derived from one store snapshot's certified records, so every node at the same height serves the
same bytes. Answers carry a strong `ETag` (a hash of the body) and `Cache-Control`; a conditional request whose
`If-None-Match` names the current body gets 304 with no body.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from credledger.ledger.errors import StorageError
from credledger.ledger.events import StatusPublish, decode_event
from credledger.ledger.limits import MAX_STATUS_LISTS, STATUS_LIST_ENTRIES
from credledger.ledger.state import StateView, get_directory, get_member, get_status_list, get_status_published
from credledger.ledger.storage.store import Snapshot
from credledger.ledger.validators import check_member_id
from credledger.ledger.vc.members import issuer_registry, member_did_document
from credledger.ledger.vc.statuslist import PURPOSES
from credledger.node.api.common import APPLICATION, CONFIG, JSON_TYPE, json_response, parse_count
from credledger.node.api.problems import Problem
from credledger.node.api.reads import ROSTER

#: How long a verifier may reuse a DID document or the registry without asking again (seconds). Short: a key
#: marked compromised must drop out of every verifier's view quickly.
DID_MAX_AGE_S = 60


def cacheable(request: web.Request, body: bytes, content_type: str, max_age_s: int) -> web.Response:
    """`body` with a strong ETag and Cache-Control; 304 without a body if the client holds these bytes already."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age_s}"}
    wanted = request.headers.get("If-None-Match", "")
    if etag in (tag.strip() for tag in wanted.split(",")) or wanted.strip() == "*":
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers={**headers, "Content-Type": content_type})


def canonical_json(document: Any) -> bytes:
    """One byte form per document (sorted keys, no spaces), so every node's answer hashes alike."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _did_document(request: web.Request, snap: Snapshot, member_id: str) -> dict[str, Any]:
    member = get_member(snap.state_view(), member_id)
    if member is None:
        raise Problem(404, "unknown-member", f"{member_id!r} is not and never was a member")
    return member_did_document(member, request.app[ROSTER].issuer_keys(snap, member_id))


async def get_member_did(request: web.Request) -> web.Response:
    """A member's DID document, derived from its certified member and issuer-key records."""
    member_id = request.match_info["member"]
    try:
        check_member_id(member_id)
    except ValueError as exc:
        raise Problem(400, "malformed", str(exc)) from None
    with request.app[APPLICATION].store.snapshot() as snap:
        document = _did_document(request, snap, member_id)
    return cacheable(request, canonical_json(document), JSON_TYPE, DID_MAX_AGE_S)


async def get_own_did(request: web.Request) -> web.Response:
    """This node's institution's DID document, where did:web resolves ``did:web:<the host serving it>``."""
    with request.app[APPLICATION].store.snapshot() as snap:
        document = _did_document(request, snap, request.app[CONFIG].member_id)
    return cacheable(request, canonical_json(document), JSON_TYPE, DID_MAX_AGE_S)


#: How long a verifier may reuse a status list without asking again (seconds): short, so that a revocation
#: reaches verifiers soon after the list that shows it is committed (within two blocks of the revocation).
STATUS_MAX_AGE_S = 10
#: Signed status lists kept in memory, by the log index of the event that carries them.
STATUS_CACHE_SIZE = 4096


class StatusListCache:
    """The bytes of published status list credentials by log index: an unchanged list is served from memory."""

    def __init__(self, limit: int = STATUS_CACHE_SIZE) -> None:
        self._limit = limit
        self._bytes: dict[int, bytes] = {}

    def get(self, snap: Snapshot, index: int) -> bytes:
        body = self._bytes.get(index)
        if body is None:
            payload = decode_event(snap.entry(index)).payload
            if not isinstance(payload, StatusPublish):
                raise StorageError(f"the state points at log entry {index}, which is no status.publish")
            body = payload.credential.encode()
            if len(self._bytes) >= self._limit:
                self._bytes.clear()
            self._bytes[index] = body
        return body


STATUS_LISTS = web.AppKey("status_lists", StatusListCache)


async def get_published_list(request: web.Request) -> web.Response:
    """A member's latest committed, signed Bitstring Status List credential for a list and purpose, byte for byte
    as its `status.publish` event carries it; `Credledger-Height` names the block that certified it."""
    member_id, number, purpose = (request.match_info[k] for k in ("member", "list", "purpose"))
    try:
        check_member_id(member_id)
    except ValueError as exc:
        raise Problem(400, "malformed", str(exc)) from None
    list_number = parse_count(number, "status list number")
    if list_number >= MAX_STATUS_LISTS:
        raise Problem(400, "malformed", f"status list number must be below {MAX_STATUS_LISTS}, got {list_number}")
    if purpose not in PURPOSES:
        raise Problem(400, "malformed", f"status purpose must be one of {', '.join(PURPOSES)}, got {purpose[:40]!r}")
    with request.app[APPLICATION].store.snapshot() as snap:
        record = get_status_published(snap.state_view(), member_id, list_number, purpose)
        if record is None:
            raise Problem(
                404, "unknown-status-list", f"{member_id!r} has published no {purpose} status list {list_number}"
            )
        body = request.app[STATUS_LISTS].get(snap, record.index)
    response = cacheable(request, body, JSON_TYPE, STATUS_MAX_AGE_S)
    response.headers["Credledger-Height"] = str(record.height)
    return response


def get_status_usage_counts(view: StateView, member_id: str) -> list[int]:
    """Entries taken in each of the member's status lists, from list 0 to the last that exists."""
    counts = []
    for list_number in range(MAX_STATUS_LISTS):
        record = get_status_list(view, member_id, list_number)
        if record is None:
            break
        counts.append(record.used)
    return counts


async def get_status_usage(request: web.Request) -> web.Response:
    """How many entries of each of a member's status lists are taken (signers pick a list less than half full)."""
    member_id = request.match_info["member"]
    try:
        check_member_id(member_id)
    except ValueError as exc:
        raise Problem(400, "malformed", str(exc)) from None
    with request.app[APPLICATION].store.snapshot() as snap:
        view = snap.state_view()
        if get_member(view, member_id) is None:
            raise Problem(404, "unknown-member", f"{member_id!r} is not and never was a member")
        lists = [{"list": n, "used": used} for n, used in enumerate(get_status_usage_counts(view, member_id))]
        height = snap.height
    return json_response({"member": member_id, "height": height, "entries": STATUS_LIST_ENTRIES, "lists": lists})


async def get_registry(request: web.Request) -> web.Response:
    """The active members as a known-issuer registry, in the form the DCC verifier library reads."""
    chain = request.app[APPLICATION]
    with chain.store.snapshot() as snap:
        view = snap.state_view()
        members = [m for m in (get_member(view, i) for i in get_directory(view).members) if m is not None]
        document = issuer_registry(members, chain.genesis.origin)
    return cacheable(request, canonical_json(document), JSON_TYPE, DID_MAX_AGE_S)
