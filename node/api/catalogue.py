"""The catalogue reads -- `GET /v1/achievements` (filtered, paged), `GET /v1/achievements/{member}/{id}` -- and
`POST /v1/record`, a learner's whole record of credentials proved under one checkpoint.

Both read one store snapshot. A record's JSON is written with what its credentials share encoded once -- the
anchor, and each issuer's member and key records with their proofs, half of a credential's bytes and the same for
every credential of that issuer key -- rather than once per credential (a bulk issuer fetches a thousand receipts
of one issuer key in one record). The single-achievement answer carries every version of the definition and a
`credledger-achievement-proof/v1` proof: the latest certificate and header, the validator-set chain from genesis,
and the state proof of the current record and of each version record against the header's state root, so a
verifier holding the genesis file can check it offline exactly as it checks a credential bundle.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from credledger.ledger import catalogue
from credledger.ledger.bundle import StateEntry, entry_to_json
from credledger.ledger.catalogue import (
    CatalogueFilter,
    achievement_key,
    achievement_to_json,
    achievement_version_key,
    list_achievements,
)
from credledger.ledger.limits import MAX_NAME
from credledger.ledger.record import MAX_RECORD_CREDENTIALS
from credledger.ledger.state import get_directory
from credledger.ledger.storage.bundles import record_json, validator_links
from credledger.ledger.storage.store import Store
from credledger.node.api.common import APPLICATION, CONFIG, b64, json_response, parse_count, parse_hex32
from credledger.node.api.events import read_body
from credledger.node.api.problems import Problem

PROOF_FORMAT = "credledger-achievement-proof/v1"
#: Most achievements one page lists (and the default).
MAX_PAGE = 500
DEFAULT_PAGE = 100
#: Largest `POST /v1/record` body: MAX_RECORD_CREDENTIALS digests in hex, quoted, with room for spacing.
MAX_RECORD_REQUEST_BYTES = 80 * MAX_RECORD_CREDENTIALS + 1024
_FILTERS = ("member", "type", "skill", "level", "framework", "text")


async def get_achievements(request: web.Request) -> web.Response:
    """The current version of every achievement matching the query, ordered by member and id, a page at a time."""
    chain = request.app[APPLICATION]
    query = request.query
    unknown = sorted(set(query) - {*_FILTERS, "after", "limit"})
    if unknown:
        raise Problem(400, "malformed", f"unknown query parameter {', '.join(unknown)}")
    for name in query:
        if len(query.getall(name)) > 1 or len(query[name]) > MAX_NAME:
            raise Problem(400, "malformed", f"query parameter {name!r}: give it once, at most {MAX_NAME} bytes")
    wanted = CatalogueFilter(
        member=query.get("member"),
        kind=query.get("type"),
        skill=query.get("skill"),
        level=parse_count(query["level"], "level") if "level" in query else None,
        framework=query.get("framework"),
        text=query.get("text"),
    )
    limit = parse_count(query.get("limit", str(DEFAULT_PAGE)), "limit")
    if not 1 <= limit <= MAX_PAGE:
        raise Problem(400, "malformed", f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    after = None
    if "after" in query:
        member, sep, achievement = query["after"].partition("/")
        if not sep or not member or not achievement:
            raise Problem(400, "malformed", "after must be MEMBER/ID, as the previous page's next_after")
        after = (member, achievement)
    with chain.store.snapshot() as snap:
        view = snap.state_view()
        records, cursor = list_achievements(view, get_directory(view).members, wanted, after=after, limit=limit)
        return json_response(
            {
                "height": snap.height,
                "achievements": [achievement_to_json(r) for r in records],
                "next_after": None if cursor is None else f"{cursor[0]}/{cursor[1]}",
            }
        )


async def get_achievement(request: web.Request) -> web.Response:
    """One achievement: its current record, every version, and a proof of them all against the latest checkpoint."""
    chain = request.app[APPLICATION]
    member, achievement = request.match_info["member"], request.match_info["id"]
    with chain.store.snapshot() as snap:
        if snap.height == 0:
            raise Problem(503, "no-checkpoint", "no block has been committed yet, so there is no checkpoint")
        view = snap.state_view()
        current = catalogue.get_achievement(view, member, achievement)
        if current is None:
            raise Problem(404, "not-found", f"{member} has published no achievement {achievement!r}")
        versions = [catalogue.get_achievement(view, member, achievement, v) for v in range(1, current.version + 1)]
        height = snap.height
        proof: dict[str, Any] = {
            "format": PROOF_FORMAT,
            "origin": chain.genesis.origin,
            "genesis": chain.genesis.hash().hex(),
            "checkpoint": snap.certificate(height),
            "header": b64(snap.header(height).encode()),
            "validators": [
                {"header": b64(v.header), "certificate": v.certificate, "next": b64(v.next_set)}
                for v in validator_links(snap, height)
            ],
            "current": entry_to_json(StateEntry(*snap.prove_state(achievement_key(member, achievement)))),
            "versions": [
                entry_to_json(StateEntry(*snap.prove_state(achievement_version_key(member, achievement, v))))
                for v in range(1, current.version + 1)
            ],
        }
    return json_response(
        {
            "height": height,
            "achievement": achievement_to_json(current),
            "versions": [achievement_to_json(v) for v in versions if v is not None],
            "proof": proof,
        }
    )


async def post_record(request: web.Request) -> web.Response:
    """A `credledger-record/v1` for the digests in the body ({"digests": [hex, ...]}), under the latest checkpoint."""
    chain = request.app[APPLICATION]
    body = await read_body(request, MAX_RECORD_REQUEST_BYTES, request.app[CONFIG].api.body_timeout_ms / 1000)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Problem(400, "malformed", "the body is not JSON") from None
    raw = data.get("digests") if isinstance(data, dict) and set(data) == {"digests"} else None
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_RECORD_CREDENTIALS:
        raise Problem(400, "malformed", f'expected {{"digests": [1..{MAX_RECORD_CREDENTIALS} hex digests]}}')
    digests = [parse_hex32(d if isinstance(d, str) else "", f"digests[{i}]") for i, d in enumerate(raw)]
    if len(set(digests)) != len(digests):
        raise Problem(400, "malformed", "digests: a digest is listed twice")
    # Up to a thousand credentials' proofs take a fraction of a second to read and encode: done on a worker thread,
    # the event loop (and the consensus messages it carries) is not held up meanwhile.
    text = await asyncio.to_thread(_record_text, chain.store, digests, chain.genesis.hash(), chain.genesis.origin)
    return web.Response(text=text, content_type="application/json")


def _record_text(store: Store, digests: list[bytes], genesis_hash: bytes, origin: str) -> str:
    with store.snapshot() as snap:
        if snap.height == 0:
            raise Problem(503, "no-checkpoint", "no block has been committed yet, so there is no checkpoint")
        return record_json(snap, digests, genesis_hash, origin)


async def get_recognitions(request: web.Request) -> web.Response:
    """The recognitions one member holds in force (`?member=`), in id order."""
    chain = request.app[APPLICATION]
    member = request.query.get("member")
    if member is None or set(request.query) != {"member"} or len(member) > MAX_NAME:
        raise Problem(400, "malformed", "give exactly one query parameter: member")
    with chain.store.snapshot() as snap:
        view = snap.state_view()
        records = [catalogue.get_recognition(view, member, i) for i in catalogue.recognition_ids(view, member)]
        return json_response(
            {
                "height": snap.height,
                "recognitions": [catalogue.recognition_to_json(r) for r in records if r is not None],
            }
        )
