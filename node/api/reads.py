"""The API's read endpoints: proof bundles, the checkpoint, log proofs, blocks, log entries and members.

Each handler reads from one store snapshot, so everything in one answer is as of the same committed height.
Hashes follow DESIGN §9: digests and ids in lowercase hex, Merkle hashes and encoded records in standard base64.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgpack
from aiohttp import web

from credledger.ledger import codec, merkle
from credledger.ledger.eventjson import header_to_json, member_to_json
from credledger.ledger.events import KeyAdd, MemberAdd, decode_event
from credledger.ledger.genesis import Genesis
from credledger.ledger.keys import key_id
from credledger.ledger.state import IssuerKeyRecord, get_issuer_key, get_member
from credledger.ledger.storage.bundles import build_bundle, bundle_json
from credledger.ledger.storage.store import Snapshot
from credledger.node.api.common import APPLICATION, JSON_TYPE, b64, json_response, parse_count, parse_hex32, query_int
from credledger.node.api.problems import Problem
from credledger.node.api.witness import with_cosignatures

#: Most log entries one `GET /v1/entries` returns.
MAX_ENTRIES = 1000
MSGPACK_TYPE = "application/msgpack"
#: The headers of a JSON answer made of bytes (what `content_type=JSON_TYPE, charset="utf-8"` sets, without
#: parsing them again for every answer).
_JSON_UTF8 = {"Content-Type": f"{JSON_TYPE}; charset=utf-8"}


def _no_block() -> Problem:
    return Problem(503, "no-checkpoint", "no block has been committed yet, so there is no checkpoint")


async def get_credential(request: web.Request) -> web.Response:
    """The `credledger-proof/v1` bundle for a credential digest (it proves absence too), as of the latest block or
    of `?height=`; 410 for a height before the node's state history."""
    app = request.app
    chain = app[APPLICATION]
    digest = parse_hex32(request.match_info["digest"], "credential digest")
    with chain.store.snapshot() as snap:
        latest = snap.height
        if latest == 0:
            raise _no_block()
        height = query_int(request, "height", latest) if request.query_string else latest
        if not 1 <= height <= latest:
            raise Problem(
                404, "unknown-block", f"no block at height {height}: the chain runs from height 1 to {latest}"
            )
        if height == latest:
            # The latest block, as nearly every request asks: served from the text kept per height.
            body = bundle_json(
                snap,
                digest,
                chain.genesis_hash,
                chain.genesis.origin,
                chain.bundle_parts,
                cosigned=lambda height, note: with_cosignatures(app, height, note),
            )
            return web.Response(body=body, headers=_JSON_UTF8)
        bundle = build_bundle(snap, digest, chain.genesis_hash, chain.genesis.origin, chain.bundle_parts, height=height)
        bundle = replace(bundle, checkpoint=with_cosignatures(app, height, bundle.checkpoint))
    return json_response(bundle.to_json())


async def get_checkpoint(request: web.Request) -> web.Response:
    """The latest commit certificate: a C2SP checkpoint note, as text, with any outside witnesses' cosignatures."""
    chain = request.app[APPLICATION]
    with chain.store.snapshot() as snap:
        if snap.height == 0:
            raise _no_block()
        note = with_cosignatures(request.app, snap.height, snap.certificate(snap.height))
    return web.Response(text=note, content_type="text/plain", charset="utf-8", headers={"Cache-Control": "no-cache"})


async def get_inclusion_proof(request: web.Request) -> web.Response:
    """The RFC 9162 inclusion proof of the entry at `index` in the tree of `size` (default: the whole log)."""
    chain = request.app[APPLICATION]
    with chain.store.snapshot() as snap:
        size = query_int(request, "size", snap.log_size)
        index = query_int(request, "index")
        proof = snap.inclusion_proof(index, size)
        leaf = merkle.leaf_hash(snap.entry(index))
        root = snap.log_root(size)
    return json_response(
        {"index": index, "size": size, "leaf_hash": b64(leaf), "root": b64(root), "proof": [b64(h) for h in proof]}
    )


async def get_consistency_proof(request: web.Request) -> web.Response:
    """The RFC 9162 consistency proof between the trees of sizes `from` and `to` (default: the whole log)."""
    chain = request.app[APPLICATION]
    with chain.store.snapshot() as snap:
        size2 = query_int(request, "to", snap.log_size)
        size1 = query_int(request, "from")
        proof = snap.consistency_proof(size1, size2)
        roots = snap.log_root(size1), snap.log_root(size2)
    return json_response(
        {
            "from": size1,
            "to": size2,
            "from_root": b64(roots[0]),
            "to_root": b64(roots[1]),
            "proof": [b64(h) for h in proof],
        }
    )


async def get_block(request: web.Request) -> web.Response:
    """A certified block: JSON by default, the canonical `CertifiedBlock` encoding for `Accept: application/msgpack`."""
    chain = request.app[APPLICATION]
    height = parse_count(request.match_info["height"], "block height")
    with chain.store.snapshot() as snap:
        if not 1 <= height <= snap.height:
            raise Problem(
                404, "unknown-block", f"no block at height {height}: the chain runs from height 1 to {snap.height}"
            )
        certified = snap.block(height)
    if wants_msgpack(request.headers.get("Accept", "")):
        return web.Response(body=codec.encode(certified), content_type=MSGPACK_TYPE)
    header = certified.header
    return json_response(
        {
            "height": header.height,
            "hash": b64(header.hash()),
            "header": header_to_json(header),
            "header_encoded": b64(header.encode()),
            "certificate": certified.certificate,
            "events": [b64(raw) for raw in certified.block.events],
        }
    )


def wants_msgpack(accept: str) -> bool:
    """Whether an Accept header prefers application/msgpack to JSON (a bare */* means JSON)."""
    quality: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media.lower()] = q
    wanted = quality.get(MSGPACK_TYPE, 0.0)
    return wanted > 0 and wanted >= quality.get("application/json", 0.0)


async def get_entries(request: web.Request) -> web.Response:
    """Log entries [start, end): at most `MAX_ENTRIES`, `end` defaulting to as many as allowed."""
    chain = request.app[APPLICATION]
    with chain.store.snapshot() as snap:
        size = snap.log_size
        start = query_int(request, "start", 0)
        if start > size:
            raise Problem(400, "out-of-range", f"start {start} is beyond the log, which holds {size} entries")
        end = query_int(request, "end", min(size, start + MAX_ENTRIES))
        if not start <= end <= size:
            raise Problem(400, "out-of-range", f"entries [{start}, {end}) are not within the log's [0, {size})")
        if end - start > MAX_ENTRIES:
            raise Problem(400, "out-of-range", f"{end - start} entries requested, at most {MAX_ENTRIES} per request")
        raw = [snap.entry(i) for i in range(start, end)]
    entries = [
        {"index": start + i, "id": decode_event(data).id.hex(), "encoded": b64(data)} for i, data in enumerate(raw)
    ]
    return json_response({"start": start, "end": end, "size": size, "entries": entries})


class Roster:
    """Every member and issuer key the chain has known, in the order they came, so removed members and retired keys
    can be listed (the state map lists only active members and unretired keys).

    Starts from genesis and reads the log's membership events incrementally: each call reads only the entries
    appended since the previous one.
    """

    def __init__(self, genesis: Genesis) -> None:
        self._keys: dict[str, list[bytes]] = {}
        for member in genesis.members:
            self._add(member.member, [key_id(member.member, k) for k in member.issuer_keys])
        self._scanned = 0

    def _add(self, member_id: str, key_ids: list[bytes]) -> None:
        known = self._keys.setdefault(member_id, [])
        known.extend(k for k in key_ids if k not in known)

    def refresh(self, snap: Snapshot) -> None:
        """Read the membership events appended to the log since the last call."""
        for index in range(self._scanned, snap.log_size):
            raw = snap.entry(index)
            # The payload tag is the first item of the third field: peek at it before decoding the whole event.
            if msgpack.unpackb(raw)[2][0] not in (MemberAdd.TAG, KeyAdd.TAG):
                continue
            payload = decode_event(raw).payload
            if isinstance(payload, MemberAdd):
                self._add(payload.member, [key_id(payload.member, k) for k in payload.issuer_keys])
            elif isinstance(payload, KeyAdd):
                self._add(payload.member, [key_id(payload.member, payload.public_key)])
        self._scanned = max(self._scanned, snap.log_size)

    def members(self, snap: Snapshot) -> list[dict[str, Any]]:
        """Each member's record with all its issuer keys, as of the snapshot, sorted by id."""
        self.refresh(snap)
        view = snap.state_view()
        out = []
        for member_id in sorted(self._keys):
            record = get_member(view, member_id)
            if record is None:
                continue
            out.append(member_to_json(record, self.issuer_keys(snap, member_id)))
        return out

    def issuer_keys(self, snap: Snapshot, member_id: str) -> list[IssuerKeyRecord]:
        """Every issuer key `member_id` ever registered (retired and compromised too), oldest first, as of `snap`."""
        self.refresh(snap)
        view = snap.state_view()
        keys = (get_issuer_key(view, member_id, kid) for kid in self._keys.get(member_id, ()))
        return [key for key in keys if key is not None]


ROSTER = web.AppKey("roster", Roster)


async def get_members(request: web.Request) -> web.Response:
    """Every member (active or removed) with its node key and every issuer key's validity."""
    chain = request.app[APPLICATION]
    with chain.store.snapshot() as snap:
        return json_response({"height": snap.height, "members": request.app[ROSTER].members(snap)})
