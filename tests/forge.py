"""Test helpers that lie: HTTP servers serving what a test tells them, and chains certified by keys the test holds
that break the rules (a signature never checked, a state map written by hand).

Each lie is something a Byzantine node, or every validator colluding, could produce; the verifiers must catch
it all the same.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from credledger.ledger import codec, merkle
from credledger.ledger.block import Block, Header, decode_header, sign_checkpoint
from credledger.ledger.bundle import Bundle, StateEntry
from credledger.ledger.events import Event, Signature
from credledger.ledger.note import SignedNote
from credledger.ledger.state import IssuerKeyRecord, cred_key, issuer_key_key, member_key
from credledger.ledger.storage import schema
from credledger.ledger.storage.bundles import build_bundle
from credledger.ledger.storage.statemap import StateMap
from credledger.ledger.storage.store import Store
from tests.blocks import certify
from tests.factories import BLOCK_INTERVAL_MS, T0, Network


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 at a free port; yields its base URL."""
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        yield str(server.make_url("")).rstrip("/")


def bundle_app(bundles: Mapping[str, dict[str, Any]]) -> web.Application:
    """A fake node answering `GET /v1/credentials/{digest}` with the given JSON documents (by hex digest)."""

    async def credential(request: web.Request) -> web.Response:
        document = bundles.get(request.match_info["digest"])
        if document is None:
            body = {"type": "urn:credledger:problem:not-found", "title": "Not Found", "status": 404, "detail": "none"}
            return web.json_response(body, status=404, content_type="application/problem+json")
        return web.json_response(document)

    app = web.Application()
    app.router.add_get("/v1/credentials/{digest}", credential)
    return app


def bundle_of(store: Store, network: Network, credential: bytes) -> Bundle:
    """The bundle a node on `store` serves for `credential`, as a verifier parses it."""
    with store.snapshot() as snap:
        built = build_bundle(snap, credential, network.genesis.hash(), network.genesis.origin)
    return Bundle.from_json(built.dumps())


def flip_byte(document: dict[str, Any], field: str, position: int = -5) -> dict[str, Any]:
    """A copy of a bundle's JSON with one byte of a base64 field (dotted path, list indexes allowed) flipped."""
    copy = json.loads(json.dumps(document))
    *parents, last = field.split(".")
    node: Any = copy
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    raw = bytearray(base64.b64decode(node[key]))
    raw[position] ^= 0x01
    node[key] = base64.b64encode(bytes(raw)).decode()
    return copy


def commit_unchecked(store: Store, network: Network, *events: Event) -> Block:
    """Commit a block whose event signatures are never checked, certified by every validator: a colluding set."""
    verified = frozenset(merkle.leaf_hash(e.encode()) for e in events)
    height = store.height() + 1
    block, selection = store.build_block(
        list(events), proposer=network.ids[0], round=0, time_ms=T0 + height * BLOCK_INTERVAL_MS, verified=verified
    )
    if selection.refused:
        raise selection.refused[0][1]
    store.commit_block(block, certify(network, block), verified=verified)
    return block


def with_bad_signature(event: Event) -> Event:
    """The same event with its first signature's bytes changed (so it no longer verifies)."""
    first = event.signatures[0]
    broken = Signature(first.member, first.key_id, bytes(b ^ 0x55 for b in first.sig))
    return Event(event.origin, event.time_ms, event.payload, (broken, *event.signatures[1:]))


def forge_key_record(tmp_path: Path, store: Store, network: Network, bundle: Bundle, record: IssuerKeyRecord) -> Bundle:
    """`bundle` with the issuer-key record replaced by `record`, under a state root and header certified by every
    validator: the whole set certifying a state the rules could never have produced."""
    env = schema.open_env(tmp_path / "forged-state")
    state = StateMap(env)
    header = decode_header(bundle.header)
    with store.env.begin() as txn:
        items: dict[bytes, bytes | None] = dict(store.state.items(txn, header.height))
    items[issuer_key_key(record.member, record.key_id)] = codec.encode(record)
    with env.begin(write=True) as txn:
        root = state.update(txn, header.height, items)
    with env.begin() as txn:
        entries = {
            name: StateEntry(state.get(txn, key), state.prove(txn, key))
            for name, key in (
                ("credential", cred_key(bundle.digest)),
                ("member", member_key(record.member)),
                ("key", issuer_key_key(record.member, record.key_id)),
            )
        }
    env.close()
    forged = dataclasses.replace(header, state_root=root)
    certificate = certify_header(network, forged)
    return dataclasses.replace(
        bundle,
        header=forged.encode(),
        checkpoint=certificate,
        credential=entries["credential"],
        member=entries["member"],
        key=entries["key"],
    )


def certify_header(network: Network, header: Header, signers: list[str] | None = None) -> str:
    """A commit certificate for `header` by `signers` (every validator by default)."""
    ids = signers if signers is not None else [m.id for m in network.members.values() if m.power > 0]
    signatures = tuple(sign_checkpoint(header, 0, network[i].node) for i in ids)
    return SignedNote(header.checkpoint(0).body(), signatures).format()
