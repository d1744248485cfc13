"""The API's read endpoints, health, metrics and error handling, against a real store and HTTP server."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from credledger.ledger import codec, merkle
from credledger.ledger.block import CertifiedBlock
from credledger.ledger.bundle import Bundle, verify_bundle
from credledger.ledger.events import KeyAdd, KeyRetire, MemberRemove, Revoke
from credledger.ledger.keys import SigningKey
from credledger.ledger.note import Checkpoint, SignedNote
from credledger.node.api.common import LiveStatus
from tests.apinode import ApiNode, api_node, problem_of
from tests.factories import T0, by_governance, digest, issue, key_for, signed

TIME = T0 + 1000


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path) as n:
        yield n


async def commit(node: ApiNode, *events: object) -> None:
    response = await node.submit(*events)  # type: ignore[arg-type]
    assert response.status == 202, await response.text()
    node.decide()


# --- credentials and checkpoints --------------------------------------------------------------------------------


async def test_no_block_yet_is_503_for_bundles_and_checkpoints(node: ApiNode) -> None:
    await problem_of(await node.client.get("/v1/credentials/" + "ab" * 32), 503, "no-checkpoint", "no block")
    await problem_of(await node.client.get("/v1/checkpoint"), 503, "no-checkpoint", "no block")


async def test_served_bundles_verify_as_valid_revoked_and_unknown(node: ApiNode) -> None:
    m0 = node.network["m0.test"]
    await commit(node, issue(m0, digest("a"), time_ms=TIME), issue(m0, digest("b"), time_ms=TIME))
    await commit(node, signed(Revoke(digest("b"), 1), m0.issuer, time_ms=TIME))
    genesis = node.network.genesis
    for label, expected in (("a", "valid"), ("b", "revoked"), ("never", "unknown")):
        response = await node.client.get(f"/v1/credentials/{digest(label).hex()}")
        assert response.status == 200
        verdict = verify_bundle(Bundle.from_json(await response.text()), genesis)
        assert verdict.status == expected
        assert verdict.height == 2


async def test_a_bundle_is_compact_utf8_json_the_same_whether_the_latest_height_is_named_or_not(node: ApiNode) -> None:
    await commit(node, issue(node.network["m0.test"], digest("a"), time_ms=TIME))
    path = f"/v1/credentials/{digest('a').hex()}"
    answers = [await node.client.get(url) for url in (path, path, f"{path}?height=1")]
    bodies = [await response.read() for response in answers]
    assert [response.headers["Content-Type"] for response in answers] == ["application/json; charset=utf-8"] * 3
    assert bodies[0] == bodies[1] == bodies[2]
    assert Bundle.from_json(bodies[0]).digest == digest("a")


async def test_bad_digest_is_400(node: ApiNode) -> None:
    await problem_of(await node.client.get("/v1/credentials/zz"), 400, "malformed", "credential digest")


async def test_checkpoint_is_the_latest_certificate_as_text(node: ApiNode) -> None:
    await commit(node, issue(node.network["m0.test"], digest("a"), time_ms=TIME))
    response = await node.client.get("/v1/checkpoint")
    assert response.status == 200 and response.content_type == "text/plain"
    note = SignedNote.parse(await response.text())
    checkpoint = Checkpoint.parse(note.text)
    assert (checkpoint.height, checkpoint.size) == (1, 1)
    assert sorted(s.name for s in note.signatures) == node.network.ids


# --- log proofs and entries -------------------------------------------------------------------------------------


async def test_inclusion_proofs_verify_against_the_checkpoint_root(node: ApiNode) -> None:
    m0 = node.network["m0.test"]
    events = [issue(m0, digest(str(i)), time_ms=TIME) for i in range(5)]
    await commit(node, *events)
    checkpoint = Checkpoint.parse(SignedNote.parse(await (await node.client.get("/v1/checkpoint")).text()).text)
    for index in (0, 3, 4):
        body = await (await node.client.get(f"/v1/proof/inclusion?index={index}")).json()
        assert body["size"] == 5 and base64.b64decode(body["root"]) == checkpoint.root
        leaf = merkle.leaf_hash(events[index].encode())
        assert base64.b64decode(body["leaf_hash"]) == leaf
        proof = [base64.b64decode(h) for h in body["proof"]]
        merkle.verify_inclusion(leaf, index, 5, proof, checkpoint.root)
    body = await (await node.client.get("/v1/proof/inclusion?index=1&size=3")).json()
    root3 = merkle.root_from_leaf_hashes([merkle.leaf_hash(e.encode()) for e in events[:3]])
    merkle.verify_inclusion(
        merkle.leaf_hash(events[1].encode()), 1, 3, [base64.b64decode(h) for h in body["proof"]], root3
    )


@pytest.mark.parametrize(
    ("query", "code", "detail"),
    [
        ("index=5", "out-of-range", ""),
        ("index=0&size=9", "out-of-range", ""),
        ("size=3", "malformed", "query parameter 'index' is required"),
        ("index=-1", "malformed", "'index' must be a non-negative integer"),
        ("index=1e3", "malformed", "got '1e3'"),
    ],
)
async def test_inclusion_proof_errors_are_400(node: ApiNode, query: str, code: str, detail: str) -> None:
    await commit(node, *(issue(node.network["m0.test"], digest(str(i)), time_ms=TIME) for i in range(5)))
    await problem_of(await node.client.get(f"/v1/proof/inclusion?{query}"), 400, code, detail)


async def test_consistency_proofs_verify_between_checkpoints(node: ApiNode) -> None:
    m0 = node.network["m0.test"]
    await commit(node, *(issue(m0, digest(str(i)), time_ms=TIME) for i in range(3)))
    await commit(node, *(issue(m0, digest(str(i)), time_ms=TIME) for i in range(3, 7)))
    body = await (await node.client.get("/v1/proof/consistency?from=3")).json()
    assert (body["from"], body["to"]) == (3, 7)
    roots = base64.b64decode(body["from_root"]), base64.b64decode(body["to_root"])
    merkle.verify_consistency(3, 7, [base64.b64decode(h) for h in body["proof"]], *roots)
    await problem_of(await node.client.get("/v1/proof/consistency?from=0&to=7"), 400, "out-of-range", "")
    await problem_of(await node.client.get("/v1/proof/consistency?from=3&to=8"), 400, "out-of-range", "")


async def test_entries_are_bounded_ranges_of_the_log(node: ApiNode) -> None:
    m0 = node.network["m0.test"]
    events = [issue(m0, digest(str(i)), time_ms=TIME) for i in range(4)]
    await commit(node, *events)
    body = await (await node.client.get("/v1/entries?start=1&end=3")).json()
    assert (body["start"], body["end"], body["size"]) == (1, 3, 4)
    assert [e["id"] for e in body["entries"]] == [events[1].id.hex(), events[2].id.hex()]
    assert base64.b64decode(body["entries"][0]["encoded"]) == events[1].encode()
    everything = await (await node.client.get("/v1/entries")).json()
    assert [e["index"] for e in everything["entries"]] == [0, 1, 2, 3]
    await problem_of(await node.client.get("/v1/entries?start=2&end=9"), 400, "out-of-range", "[2, 9)")
    await problem_of(await node.client.get("/v1/entries?start=7"), 400, "out-of-range", "start 7 is beyond")
    await problem_of(await node.client.get("/v1/entries?start=3&end=1"), 400, "out-of-range", "[3, 1)")


# --- blocks -----------------------------------------------------------------------------------------------------


async def test_block_as_json_and_as_canonical_msgpack(node: ApiNode) -> None:
    event = issue(node.network["m0.test"], digest("a"), time_ms=TIME)
    await commit(node, event)
    with node.application.store.snapshot() as snap:
        stored = snap.block(1)
    body = await (await node.client.get("/v1/blocks/1")).json()
    assert body["height"] == 1 and body["certificate"] == stored.certificate
    assert base64.b64decode(body["header_encoded"]) == stored.header.encode()
    assert base64.b64decode(body["hash"]) == stored.header.hash()
    assert body["header"]["log_size"] == 1 and body["header"]["proposer"] == "m0.test"
    assert [base64.b64decode(e) for e in body["events"]] == [event.encode()]
    response = await node.client.get("/v1/blocks/1", headers={"Accept": "application/msgpack"})
    assert response.content_type == "application/msgpack"
    assert codec.decode(CertifiedBlock, await response.read()) == stored
    preferring_json = await node.client.get("/v1/blocks/1", headers={"Accept": "application/json, */*;q=0.1"})
    assert preferring_json.content_type == "application/json"


async def test_unknown_or_malformed_heights(node: ApiNode) -> None:
    await commit(node, issue(node.network["m0.test"], digest("a"), time_ms=TIME))
    await problem_of(await node.client.get("/v1/blocks/0"), 404, "unknown-block", "from height 1 to 1")
    await problem_of(await node.client.get("/v1/blocks/2"), 404, "unknown-block", "no block at height 2")
    await problem_of(await node.client.get("/v1/blocks/one"), 400, "malformed", "block height")


# --- members ----------------------------------------------------------------------------------------------------


async def test_members_lists_removed_members_and_retired_keys(node: ApiNode) -> None:
    network = node.network
    m0 = network["m0.test"]
    new_key = SigningKey("m0.test", key_for("m0.test", "rotated").seed())
    await commit(node, signed(KeyAdd("m0.test", new_key.public.raw), m0.issuer, time_ms=TIME))
    await commit(node, signed(KeyRetire("m0.test", m0.issuer.key_id, None), new_key, time_ms=TIME))
    await commit(node, by_governance(network, MemberRemove("m3.test"), time_ms=TIME))
    body = await (await node.client.get("/v1/members")).json()
    assert body["height"] == 3
    members = {m["id"]: m for m in body["members"]}
    assert sorted(members) == network.ids
    assert members["m3.test"]["active"] is False
    assert members["m1.test"]["node_key"] == network["m1.test"].node.public.vkey()
    keys = {k["key_id"]: k for k in members["m0.test"]["issuer_keys"]}
    old, new = keys[m0.issuer.key_id.hex()], keys[new_key.key_id.hex()]
    assert old["retired_at"] == 3 and old["valid_from"] == 0 and old["vkey"] == m0.issuer.public.vkey()
    assert new["retired_at"] is None and new["valid_from"] == 1 and new["compromised_since"] is None
    assert [k["retired_at"] for k in members["m3.test"]["issuer_keys"]] == [4]


# --- status, health, metrics ------------------------------------------------------------------------------------


async def test_status_reports_chain_checkpoint_and_live_figures(tmp_path: Path) -> None:
    async with api_node(tmp_path, status=lambda: LiveStatus(round=2, peers=3, syncing=True)) as node:
        first = await (await node.client.get("/v1/status")).json()
        assert first["checkpoint"] is None and first["height"] == 0
        await node.submit(issue(node.network["m0.test"], digest("a"), time_ms=TIME))
        pending = await (await node.client.get("/v1/status")).json()
        assert pending["mempool"]["events"] == 1
        node.decide()
        body = await (await node.client.get("/v1/status")).json()
    genesis = node.network.genesis
    assert (body["origin"], body["genesis"], body["member"], body["role"]) == (
        genesis.origin,
        genesis.hash().hex(),
        "m0.test",
        "validator",
    )
    assert body["height"] == 1 and body["log"]["size"] == 1
    assert body["checkpoint"]["height"] == 1 and body["checkpoint"]["signers"] == node.network.ids
    assert body["checkpoint"]["root"] == body["log"]["root"]
    assert (body["round"], body["peers"], body["syncing"]) == (2, 3, True)
    assert body["mempool"] == {"events": 0, "bytes": 0}


async def test_status_and_readiness_say_when_the_network_cannot_commit_and_catch_up_fails(tmp_path: Path) -> None:
    live = LiveStatus(
        stalled="catch-up failing: at height 0 (from 0), peers at 9: http://peer: block 1: truncated",
        catch_up_failure="at height 0 (from 0), peers at 9: http://peer: block 1: truncated",
        peer_height=9,
    )
    async with api_node(tmp_path, status=lambda: live) as node:
        body = await (await node.client.get("/v1/status")).json()
        assert body["commit"] == {"ok": False, "reason": live.stalled}
        assert body["sync"] == {"peer_height": 9, "failure": live.catch_up_failure}
        await problem_of(await node.client.get("/readyz"), 503, "not-ready", "catch-up failing")


async def test_health_and_readiness(node: ApiNode) -> None:
    assert await (await node.client.get("/healthz")).json() == {"status": "ok"}
    assert await (await node.client.get("/readyz")).json() == {"status": "ready", "height": 0}
    node.application.store.close()
    await problem_of(await node.client.get("/readyz"), 503, "not-ready", "the store cannot be read")


async def test_metrics_count_requests_by_route_template_and_status(node: ApiNode) -> None:
    await node.client.get("/v1/events/" + "00" * 32)
    await node.client.get("/nowhere")
    text = await (await node.client.get("/metrics")).text()
    assert 'credledger_request_seconds_count{route="/v1/events/{id}",status="404"} 1.0' in text
    assert 'credledger_request_seconds_count{route="unmatched",status="404"} 1.0' in text
    assert "credledger_height 0.0" in text


# --- errors -----------------------------------------------------------------------------------------------------


async def test_unknown_routes_and_wrong_methods_are_problems(node: ApiNode) -> None:
    await problem_of(await node.client.get("/v2/nothing"), 404, "not-found", "GET /v2/nothing")
    response = await node.client.delete("/v1/events")
    await problem_of(response, 405, "method-not-allowed", "DELETE is not allowed on /v1/events")
    assert response.headers["Allow"] == "POST"


async def test_unexpected_errors_are_a_generic_500_without_the_traceback(tmp_path: Path) -> None:
    def broken() -> LiveStatus:
        raise RuntimeError("secret internals")

    async with api_node(tmp_path, status=broken) as node:
        response = await node.client.get("/v1/status")
        body = await problem_of(response, 500, "internal", "the cause is in its log")
        assert "secret" not in str(body) and "Traceback" not in str(body)
        assert (await node.client.get("/healthz")).status == 200
