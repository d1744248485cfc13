"""A node's API on a real store and a real HTTP server on 127.0.0.1, for API and CLI tests.

Consensus is not wired in: `ApiNode.decide` builds the next block from the mempool, validates it, certifies it
with every validator's node key and commits it through `LedgerApplication.commit`, as the consensus driver will.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from credledger.ledger.block import CertifiedBlock
from credledger.ledger.eventjson import event_to_json
from credledger.ledger.events import Event
from credledger.ledger.storage.schema import DEFAULT_MAX_READERS
from credledger.ledger.storage.store import Store
from credledger.node.api.app import make_app
from credledger.node.api.common import StatusSource
from credledger.node.api.events import MAX_WAITERS
from credledger.node.api.problems import CONTENT_TYPE as PROBLEM_TYPE
from credledger.node.application import LedgerApplication
from credledger.node.config import ApiConfig, CredentialsConfig, NodeConfig, WitnessConfig, WitnessesConfig
from credledger.node.mempool import Mempool
from tests.blocks import certify
from tests.factories import T0, Network, make_network

#: Limits small enough to hit in tests.
TEST_API = ApiConfig(max_body_bytes=64 * 1024, max_batch=8, commit_wait_ms=2_000)


@dataclass
class ApiNode:
    network: Network
    application: LedgerApplication
    client: TestClient[Any, Any]
    clock: list[float]

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    def decide(self, events: list[Event] | None = None) -> CertifiedBlock:
        """Commit the next block: the given events, or what the mempool holds."""
        chain = self.application
        if events is None:
            block = chain.build_block(chain.height + 1, 0, chain.now_ms(), self.network.ids[0])
        else:
            block, _ = chain.store.build_block(events, proposer=self.network.ids[0], round=0, time_ms=chain.now_ms())
        chain.validate_block(block)
        certified = CertifiedBlock(block, certify(self.network, block))
        chain.commit(certified)
        return certified

    async def submit(self, *events: Event, wait: bool = False, encoded: bool = True) -> ClientResponse:
        """POST events as JSON: one as {"event": ...}, several as {"events": [...]}."""
        items = [{"encoded": base64.b64encode(e.encode()).decode()} if encoded else event_to_json(e) for e in events]
        body = {"event": items[0]} if len(items) == 1 else {"events": items}
        return await self.client.post("/v1/events" + ("?wait=commit" if wait else ""), json=body)

    def log_size(self) -> int:
        with self.application.store.snapshot() as snap:
            return snap.log_size


@asynccontextmanager
async def api_node(
    tmp_path: Path,
    *,
    network: Network | None = None,
    api: ApiConfig = TEST_API,
    clock: Callable[[], float] | None = None,
    status: StatusSource | None = None,
    max_waiters: int = MAX_WAITERS,
    max_readers: int = DEFAULT_MAX_READERS,
    credentials: CredentialsConfig | None = None,
    witness: WitnessConfig | None = None,
    witnesses: WitnessesConfig | None = None,
    state_history: int | None = None,
) -> AsyncIterator[ApiNode]:
    """A node with a fresh store under `tmp_path`, its API served on 127.0.0.1 at a free port."""
    network = network or make_network(4)
    now = [T0 / 1000 + 5]
    store = Store(tmp_path / "ledger", max_readers=max_readers, state_history=state_history)
    chain = LedgerApplication(
        store,
        network.genesis,
        mempool=Mempool(max_events=100, max_bytes=1 << 20),
        clock=clock or (lambda: now[0]),
    )
    config = NodeConfig(
        member_id=network.ids[0],
        data_dir=tmp_path / "ledger",
        genesis=tmp_path / "genesis.json",
        node_key=tmp_path / "node.key",
        witness=witness or WitnessConfig(),
        witnesses=witnesses or WitnessesConfig(),
    )
    config = replace(config, api=api, credentials=credentials or CredentialsConfig())
    app = make_app(chain, config, status=status, max_waiters=max_waiters)
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield ApiNode(network, chain, client, now)
    finally:
        await client.close()
        store.close()


async def problem_of(response: ClientResponse, status: int, code: str, detail: str) -> dict[str, Any]:
    """Assert `response` is the problem `code` with `status`, whose detail mentions `detail`; return its body."""
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM_TYPE
    body: dict[str, Any] = await response.json(content_type=PROBLEM_TYPE)
    assert body["type"] == f"urn:credledger:problem:{code}"
    assert body["status"] == status
    assert detail in body["detail"], body["detail"]
    return body
