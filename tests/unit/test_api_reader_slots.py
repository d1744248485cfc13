"""A refused request costs the node a bounded amount of LMDB reader slots, and never its health."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path

from credledger.ledger.events import Issue, Revoke
from credledger.ledger.keys import SigningKey
from credledger.node.api.app import RESERVED_READ_SLOTS
from tests.apinode import TEST_API, api_node, problem_of
from tests.factories import T0, digest, issue, signed

TIME = T0 + 1000
#: Far fewer reader slots than events in one batch: a leak of one slot per refusal exhausts them at once.
FEW_READERS = RESERVED_READ_SLOTS + 8
BIG_BATCH = replace(TEST_API, max_batch=1000, max_body_bytes=4 * 1024 * 1024)


async def test_a_batch_of_a_thousand_refused_events_leaves_every_reader_slot_free(tmp_path: Path) -> None:
    async with api_node(tmp_path, api=BIG_BATCH, max_readers=FEW_READERS) as node:
        outsider = SigningKey.generate("outsider.test")
        m0 = node.network["m0.test"]
        events = [
            *(issue(m0, digest(f"x{i}"), key=outsider, time_ms=TIME) for i in range(400)),
            *(signed(Revoke(digest(f"never{i}"), 0), m0.issuer, time_ms=TIME) for i in range(300)),
            *(
                signed(Issue(digest(f"o{i}"), m0.id, None, ()), m0.issuer, time_ms=TIME, origin="other.test/chain")
                for i in range(300)
            ),
        ]
        response = await node.submit(*events)
        body = await problem_of(response, 422, "batch-refused", "1000 of 1000 events were refused")
        assert {r["status"] for r in body["results"]} == {"refused"}
        assert node.application.store.read_slots_free == FEW_READERS
        status = await node.client.get("/v1/status")
        assert status.status == 200


async def test_parallel_batches_of_refused_events_keep_the_node_answering(tmp_path: Path) -> None:
    async with api_node(tmp_path, api=BIG_BATCH, max_readers=FEW_READERS) as node:
        outsider = SigningKey.generate("outsider.test")
        m0 = node.network["m0.test"]
        batches = [[issue(m0, digest(f"{b}-{i}"), key=outsider, time_ms=TIME) for i in range(250)] for b in range(6)]
        answers = await asyncio.gather(*(node.submit(*batch) for batch in batches))
        assert [a.status for a in answers] == [422] * len(batches)
        assert node.application.store.read_slots_free == FEW_READERS
        good = issue(m0, digest("good"), time_ms=TIME)
        assert (await node.submit(good)).status == 202
        node.decide()
        assert node.log_size() == 1


async def test_requests_are_refused_before_they_take_the_reader_slots_consensus_needs(tmp_path: Path) -> None:
    async with api_node(tmp_path, max_readers=FEW_READERS) as node:
        store = node.application.store
        with contextlib.ExitStack() as held:
            for _ in range(FEW_READERS - RESERVED_READ_SLOTS):
                held.enter_context(store.snapshot())
            await problem_of(await node.client.get("/v1/status"), 503, "store-busy", "reader slots free")
            assert (await node.client.get("/healthz")).status == 200
            with store.snapshot() as snap:  # consensus still reads
                assert snap.height == 0
        assert (await node.client.get("/v1/status")).status == 200
