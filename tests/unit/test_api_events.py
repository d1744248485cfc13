"""POST /v1/events and GET /v1/events/{id} against a real store and HTTP server."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgpack
import pytest

from credledger.ledger.eventjson import event_to_json
from credledger.ledger.events import Revoke, Suspend
from credledger.ledger.merkle import leaf_hash
from credledger.node.api.events import MAX_WAITERS, WAITERS, await_commit
from tests.apinode import TEST_API, ApiNode, api_node, problem_of
from tests.factories import T0, digest, issue, signed

TIME = T0 + 1000


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path) as n:
        yield n


def unchanged(node: ApiNode, pending: int, log_size: int = 0) -> None:
    assert len(node.application.mempool) == pending
    assert node.log_size() == log_size


# --- admission ------------------------------------------------------------------------------------------------


async def test_one_encoded_event_is_admitted_and_then_readable_as_pending(node: ApiNode) -> None:
    event = issue(node.network["m0.test"], digest("a"), time_ms=TIME)
    response = await node.submit(event)
    assert response.status == 202
    assert await response.json() == {"results": [{"id": event.id.hex(), "status": "pending"}]}
    info = await (await node.client.get(f"/v1/events/{event.id.hex()}")).json()
    assert info["status"] == "pending" and info["index"] is None and info["height"] is None
    assert info["event"] == event_to_json(event)
    assert base64.b64decode(info["encoded"]) == event.encode()


async def test_json_field_form_is_admitted_as_the_same_canonical_event(node: ApiNode) -> None:
    event = issue(node.network["m0.test"], digest("a"), time_ms=TIME, expires_ms=TIME + 10**9)
    response = await node.submit(event, encoded=False)
    assert response.status == 202
    pending = node.application.mempool.get(event.id)
    assert pending is not None and pending.encoded == event.encode()


async def test_msgpack_bodies_carry_one_event_or_a_batch(node: ApiNode) -> None:
    m0 = node.network["m0.test"]
    one, two, three = (issue(m0, digest(x), time_ms=TIME) for x in "abc")
    headers = {"Content-Type": "application/msgpack"}
    response = await node.client.post("/v1/events", data=msgpack.packb(one.encode()), headers=headers)
    assert response.status == 202
    batch = msgpack.packb([two.encode(), three.encode()])
    response = await node.client.post("/v1/events", data=batch, headers=headers)
    assert [r["id"] for r in (await response.json())["results"]] == [two.id.hex(), three.id.hex()]
    unchanged(node, pending=3)


async def test_a_batch_admits_in_order_so_a_revoke_may_follow_its_issue(node: ApiNode) -> None:
    m0 = node.network["m0.test"]
    events = [issue(m0, digest("a"), time_ms=TIME), signed(Revoke(digest("a"), 1), m0.issuer, time_ms=TIME)]
    response = await node.submit(*events, encoded=False)
    assert response.status == 202
    assert [r["status"] for r in (await response.json())["results"]] == ["pending", "pending"]


async def test_a_batch_with_a_refusal_names_it_and_keeps_the_admitted_ones(node: ApiNode) -> None:
    m0, m1 = node.network["m0.test"], node.network["m1.test"]
    good = issue(m0, digest("a"), time_ms=TIME)
    foreign = signed(Revoke(digest("a"), 0), m1.issuer, time_ms=TIME)
    body = await problem_of(await node.submit(good, foreign), 422, "batch-refused", "1 of 2 events were refused")
    assert "events[1]: not-the-issuer" in body["detail"]
    assert body["results"][0] == {"id": good.id.hex(), "status": "pending"}
    refused = body["results"][1]
    assert refused["status"] == "refused" and refused["id"] == foreign.id.hex()
    assert refused["problem"]["status"] == 403 and refused["problem"]["rule"] == "not-the-issuer"
    unchanged(node, pending=1)


# --- malformed requests refuse everything ---------------------------------------------------------------------


async def test_malformed_json_is_400_naming_the_parse_error(node: ApiNode) -> None:
    response = await node.client.post("/v1/events", data=b'{"event": ', headers={"Content-Type": "application/json"})
    await problem_of(response, 400, "malformed", "request body is not valid JSON")
    unchanged(node, pending=0)


@pytest.mark.parametrize(
    ("mutate", "detail"),
    [
        (lambda e: e.update(time_ms="soon"), "event.time_ms: expected an integer, got a string"),
        (lambda e: e.update(time_ms=True), "event.time_ms: expected an integer, got a boolean"),
        (lambda e: e["payload"].update(digest="XYZ"), "event.payload.digest: expected lowercase hex"),
        (lambda e: e["payload"].update(kind="mint"), "event.payload.kind: expected one of"),
        (lambda e: e["payload"].pop("expires_ms"), "event.payload: missing field expires_ms"),
        (lambda e: e.update(extra=1), "event: unknown field extra"),
        (lambda e: e["signatures"][0].update(sig="!!"), "event.signatures[0].sig: expected standard base64"),
        (lambda e: e.update(signatures=[]), "an event needs at least one signature"),
    ],
)
async def test_wrong_field_types_are_400_naming_the_field(node: ApiNode, mutate: Any, detail: str) -> None:
    form = event_to_json(issue(node.network["m0.test"], digest("a"), time_ms=TIME))
    mutate(form)
    response = await node.client.post("/v1/events", json={"event": form})
    await problem_of(response, 400, "malformed", detail)
    unchanged(node, pending=0)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ([], "expected an object with 'event' or 'events', got a list"),
        ({"event": {}, "events": []}, "expected exactly one of 'event' or 'events', got event, events"),
        ({"events": []}, "events: expected a non-empty list"),
        ({"event": {"encoded": 5}}, "event.encoded: expected a base64 string, got an integer"),
        ({"event": {"encoded": "not base64!"}}, "event.encoded: expected standard base64"),
        ({"event": {"encoded": "kQE="}}, "event.encoded: Event: expected 4 fields, got 1"),
    ],
)
async def test_malformed_envelopes_are_400(node: ApiNode, body: Any, detail: str) -> None:
    await problem_of(await node.client.post("/v1/events", json=body), 400, "malformed", detail)


async def test_a_bad_event_in_a_batch_refuses_the_whole_batch(node: ApiNode) -> None:
    good = event_to_json(issue(node.network["m0.test"], digest("a"), time_ms=TIME))
    response = await node.client.post("/v1/events", json={"events": [good, {"encoded": "AA=="}]})
    await problem_of(response, 400, "malformed", "events[1].encoded")
    unchanged(node, pending=0)


async def test_non_canonical_msgpack_and_trailing_bytes_are_400(node: ApiNode) -> None:
    headers = {"Content-Type": "application/msgpack"}
    event = issue(node.network["m0.test"], digest("a"), time_ms=TIME).encode()
    response = await node.client.post("/v1/events", data=msgpack.packb(event) + b"\x00", headers=headers)
    await problem_of(response, 400, "malformed", "trailing bytes")
    response = await node.client.post("/v1/events", data=msgpack.packb({"a": 1}), headers=headers)
    await problem_of(response, 400, "malformed", "expected a bin (one encoded event) or a non-empty array of bins")
    unchanged(node, pending=0)


async def test_oversized_bodies_are_413_with_or_without_a_length(node: ApiNode) -> None:
    big = b"x" * (64 * 1024 + 1)
    response = await node.client.post("/v1/events", data=big, headers={"Content-Type": "application/json"})
    await problem_of(response, 413, "body-too-large", f"{len(big)} bytes, the limit is 65536")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b" " * 30_000

    response = await node.client.post("/v1/events", data=chunks(), headers={"Content-Type": "application/json"})
    await problem_of(response, 413, "body-too-large", "exceeds the limit of 65536 bytes")


async def test_a_batch_over_the_limit_is_413(node: ApiNode) -> None:
    m0 = node.network["m0.test"]
    events = [issue(m0, digest(str(i)), time_ms=TIME) for i in range(9)]
    await problem_of(await node.submit(*events), 413, "batch-too-large", "holds 9 events, the limit is 8")
    unchanged(node, pending=0)


async def test_wrong_content_type_is_415(node: ApiNode) -> None:
    response = await node.client.post("/v1/events", data=b"hello", headers={"Content-Type": "text/plain"})
    await problem_of(response, 415, "unsupported-media-type", "'text/plain' is not accepted")


async def test_wait_takes_only_commit(node: ApiNode) -> None:
    event = issue(node.network["m0.test"], digest("a"), time_ms=TIME)
    response = await node.client.post("/v1/events?wait=later", json={"event": event_to_json(event)})
    await problem_of(response, 400, "malformed", "'wait' may only be 'commit'")
    unchanged(node, pending=0)


# --- ledger refusals --------------------------------------------------------------------------------------------


async def test_forged_signature_is_403_bad_signature(node: ApiNode) -> None:
    m0 = node.network["m0.test"]
    form = event_to_json(issue(m0, digest("a"), time_ms=TIME))
    other = event_to_json(issue(m0, digest("b"), time_ms=TIME))
    form["signatures"] = other["signatures"]  # a real signature, but over another event
    body = await problem_of(
        await node.client.post("/v1/events", json={"event": form}), 403, "unauthorized", "does not verify"
    )
    assert body["rule"] == "bad-signature" and len(body["id"]) == 64
    unchanged(node, pending=0)


async def test_replaying_a_committed_event_is_422_replayed(node: ApiNode) -> None:
    event = issue(node.network["m0.test"], digest("a"), time_ms=TIME)
    assert (await node.submit(event)).status == 202
    node.decide()
    body = await problem_of(await node.submit(event), 422, "invalid-event", "in the log already")
    assert body["rule"] == "replayed-event" and body["id"] == event.id.hex()
    unchanged(node, pending=0, log_size=1)


async def test_event_for_another_chain_is_422_wrong_origin(node: ApiNode) -> None:
    event = issue(node.network["m0.test"], digest("a"), time_ms=TIME)
    foreign = signed(event.payload, node.network["m0.test"].issuer, time_ms=TIME, origin="credledger.test/other")
    body = await problem_of(await node.submit(foreign), 422, "invalid-event", "'credledger.test/other'")
    assert body["rule"] == "wrong-origin"
    unchanged(node, pending=0)


async def test_revoking_another_members_credential_is_403(node: ApiNode) -> None:
    m0, m1 = node.network["m0.test"], node.network["m1.test"]
    assert (await node.submit(issue(m0, digest("a"), time_ms=TIME))).status == 202
    node.decide()
    revoke = signed(Revoke(digest("a"), 0), m1.issuer, time_ms=TIME)
    body = await problem_of(await node.submit(revoke), 403, "unauthorized", "only 'm0.test' or governance")
    assert body["rule"] == "not-the-issuer"
    unchanged(node, pending=0, log_size=1)


async def test_a_pending_duplicate_is_409(node: ApiNode) -> None:
    event = issue(node.network["m0.test"], digest("a"), time_ms=TIME)
    assert (await node.submit(event)).status == 202
    await problem_of(await node.submit(event), 409, "duplicate-event", "already pending")
    unchanged(node, pending=1)


# --- waiting for commit -----------------------------------------------------------------------------------------


async def _commit_when_pending(node: ApiNode, count: int) -> None:
    while len(node.application.mempool) < count:
        await asyncio.sleep(0.005)
    node.decide()


async def test_wait_commit_answers_with_index_height_and_checkpoint(node: ApiNode) -> None:
    m0 = node.network["m0.test"]
    events = [issue(m0, digest("a"), time_ms=TIME), issue(m0, digest("b"), time_ms=TIME)]
    committer = asyncio.create_task(_commit_when_pending(node, 2))
    response = await node.submit(*events, wait=True)
    await committer
    assert response.status == 200
    body = await response.json()
    assert body["results"] == [
        {"id": events[0].id.hex(), "status": "committed", "index": 0, "height": 1},
        {"id": events[1].id.hex(), "status": "committed", "index": 1, "height": 1},
    ]
    with node.application.store.snapshot() as snap:
        assert body["checkpoint"] == snap.certificate(1)


async def test_wait_commit_times_out_with_504_listing_the_ids(tmp_path: Path) -> None:
    async with api_node(tmp_path, api=replace(TEST_API, commit_wait_ms=50)) as node:
        event = issue(node.network["m0.test"], digest("a"), time_ms=TIME)
        body = await problem_of(await node.submit(event, wait=True), 504, "commit-timeout", "within 50 ms")
        assert body["ids"] == [event.id.hex()] and body["pending"] == [event.id.hex()]
        assert event.id in node.application.mempool
        assert node.client.app is not None
        assert node.client.app[WAITERS].room == MAX_WAITERS  # the timed-out waiter was cleaned up


async def test_wait_commit_reports_an_event_a_block_made_invalid(node: ApiNode) -> None:
    m0 = node.network["m0.test"]
    assert (await node.submit(issue(m0, digest("a"), time_ms=TIME))).status == 202
    node.decide()
    suspend = signed(Suspend(digest("a"), 6), m0.issuer, time_ms=TIME)
    revoke = signed(Revoke(digest("a"), 1), m0.issuer, time_ms=TIME + 1)

    async def commit_conflicting_revoke() -> None:
        while suspend.id not in node.application.mempool:
            await asyncio.sleep(0.005)
        node.decide([revoke])  # as if another node's proposal won: the suspend can no longer apply

    committer = asyncio.create_task(commit_conflicting_revoke())
    body = await problem_of(await node.submit(suspend, wait=True), 409, "event-dropped", "made it invalid")
    await committer
    assert body["ids"] == [suspend.id.hex()]
    unchanged(node, pending=0, log_size=2)


async def test_wait_commit_on_a_replayed_event_is_refused_not_awaited(node: ApiNode) -> None:
    event = issue(node.network["m0.test"], digest("a"), time_ms=TIME)
    assert (await node.submit(event)).status == 202
    node.decide()
    await problem_of(await node.submit(event, wait=True), 422, "invalid-event", "replayed-event")
    assert node.client.app is not None and node.client.app[WAITERS].room == MAX_WAITERS


async def test_waiters_are_bounded_and_a_full_house_admits_nothing(tmp_path: Path) -> None:
    async with api_node(tmp_path, max_waiters=1) as node:
        m0 = node.network["m0.test"]
        events = [issue(m0, digest("a"), time_ms=TIME), issue(m0, digest("b"), time_ms=TIME)]
        await problem_of(await node.submit(*events, wait=True), 503, "too-many-waiters", "retry later")
        unchanged(node, pending=0)


async def test_a_cancelled_wait_removes_its_waiters(node: ApiNode) -> None:
    event = issue(node.network["m0.test"], digest("a"), time_ms=TIME)
    assert (await node.submit(event)).status == 202
    assert node.client.app is not None
    waiters = node.client.app[WAITERS]
    waiting = asyncio.create_task(await_commit(waiters, [event.id], 10_000, [{"id": event.id.hex()}]))
    await asyncio.sleep(0.01)
    assert waiters.room == MAX_WAITERS - 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert waiters.room == MAX_WAITERS
    node.decide()  # a later commit of the event finds no stale future to resolve


# --- reading events ---------------------------------------------------------------------------------------------


async def test_committed_event_shows_index_height_and_leaf_hash(node: ApiNode) -> None:
    m0 = node.network["m0.test"]
    events = [issue(m0, digest("a"), time_ms=TIME), issue(m0, digest("b"), time_ms=TIME)]
    await node.submit(*events)
    node.decide()
    info = await (await node.client.get(f"/v1/events/{events[1].id.hex()}")).json()
    assert (info["status"], info["index"], info["height"]) == ("committed", 1, 1)
    assert base64.b64decode(info["leaf_hash"]) == leaf_hash(events[1].encode())
    assert info["event"] == event_to_json(events[1])


async def test_event_lookup_errors(node: ApiNode) -> None:
    await problem_of(await node.client.get("/v1/events/abc"), 400, "malformed", "event id: a digest is 64")
    unknown = "00" * 32
    await problem_of(await node.client.get(f"/v1/events/{unknown}"), 404, "unknown-event", unknown)
