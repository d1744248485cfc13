"""Being witnessed: a node submits its checkpoints to a real witness node over HTTP and serves the cosignatures.

Two real stores and HTTP servers on 127.0.0.1: `log` is a network's node with `[witnesses]`, `witness` a node whose
`[witness]` config follows that network (its validators' note keys, a quorum of 3).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

from credledger.ledger import tlogproof
from credledger.ledger.bundle import Bundle
from credledger.ledger.cosignature import CosignerKey, verified_cosignatures
from credledger.ledger.errors import ConfigError
from credledger.ledger.note import SignedNote
from credledger.ledger.storage.datadir import COSIGNED_FILE
from credledger.ledger.treehead import TreeHead
from credledger.ledger.witnesspolicy import WitnessPolicy
from credledger.node.api.witness import WITNESSING, witnessing_task
from credledger.node.config import (
    WitnessConfig,
    WitnessedLogConfig,
    WitnessEndpointConfig,
    WitnessesConfig,
)
from credledger.node.witnessing import load_witnesses
from credledger.verifier.monitor import Monitor
from tests.apinode import ApiNode, api_node
from tests.factories import T0, Network, digest, issue, key_for, make_network

WITNESS = key_for("witness.test/w1", "witness")
WITNESS_VKEY = CosignerKey.of(WITNESS).vkey()
TIME = T0 + 1000


@asynccontextmanager
async def witnessed_pair(tmp_path: Path, network: Network) -> AsyncIterator[tuple[ApiNode, ApiNode]]:
    (tmp_path / "witness.key").write_text(WITNESS.skey())
    vkeys = tuple(network[i].node.public.vkey() for i in network.ids)
    follows = WitnessConfig(tmp_path / "witness.key", (WitnessedLogConfig(network.genesis.origin, vkeys, 3),))
    async with api_node(tmp_path / "w", witness=follows) as witness:
        endpoint = WitnessEndpointConfig(CosignerKey.of(WITNESS).vkey(), witness.url)
        config = WitnessesConfig((endpoint,), quorum=1, witness_interval_ms=20)
        async with api_node(tmp_path / "log", network=network, witnesses=config) as log:
            yield log, witness


async def cosigned_checkpoint(node: ApiNode, size: int) -> SignedNote:
    """Wait (a minute at most) until the node serves its checkpoint of `size` with the witness's cosignature."""
    for _ in range(1200):
        note = SignedNote.parse(await (await node.client.get("/v1/checkpoint")).text())
        if TreeHead.parse(note.text).size == size and verified_cosignatures(note, [CosignerKey.of(WITNESS)]):
            return note
        await asyncio.sleep(0.05)
    raise AssertionError(f"no cosigned checkpoint of size {size} within a minute")


async def test_each_new_checkpoint_is_cosigned_and_served_with_the_cosignature(tmp_path: Path) -> None:
    network = make_network(4)
    async with witnessed_pair(tmp_path, network) as (log, _witness):
        m0 = network["m0.test"]
        log.decide([issue(m0, digest(f"a{i}"), time_ms=TIME) for i in range(5)])
        first = await cosigned_checkpoint(log, 5)
        log.decide([issue(m0, digest(f"b{i}"), time_ms=TIME) for i in range(7)])
        second = await cosigned_checkpoint(log, 12)  # cosigned from 5 with a consistency proof
        assert first.text != second.text
        assert await (await log.client.get("/checkpoint")).text() == second.format()
        bundle = Bundle.from_json(await (await log.client.get("/v1/credentials/" + digest("b3").hex())).json())
        assert verified_cosignatures(SignedNote.parse(bundle.checkpoint), [CosignerKey.of(WITNESS)])


async def test_a_restarted_submitter_resubmits_from_the_size_the_witness_names(tmp_path: Path) -> None:
    network = make_network(4)
    async with witnessed_pair(tmp_path, network) as (log, _witness):
        m0 = network["m0.test"]
        log.decide([issue(m0, digest(f"a{i}"), time_ms=TIME) for i in range(5)])
        await cosigned_checkpoint(log, 5)
        witnessing = log.client.app[WITNESSING]
        witnessing._known = dict.fromkeys(witnessing._known, 0)  # as after a restart: the witness holds 5
        log.decide([issue(m0, digest(f"b{i}"), time_ms=TIME) for i in range(3)])
        await cosigned_checkpoint(log, 8)


async def test_a_witness_that_refuses_leaves_the_checkpoint_uncosigned(tmp_path: Path) -> None:
    network = make_network(4)
    other = make_network(4, origin="credledger.test/not-witnessed")
    async with witnessed_pair(tmp_path, network) as (_log, witness):
        endpoint = WitnessEndpointConfig(CosignerKey.of(WITNESS).vkey(), witness.url)
        config = WitnessesConfig((endpoint,), quorum=1, witness_interval_ms=20)
        async with api_node(tmp_path / "other", network=other, witnesses=config) as stranger:
            stranger.decide([])  # an empty block: a checkpoint of a log the witness does not follow
            witnessing = stranger.client.app[WITNESSING]
            for _ in range(1200):
                if witnessing._submitted:
                    break
                await asyncio.sleep(0.05)
            assert witnessing._submitted == 1 and witnessing.cosigned is None
            note = SignedNote.parse(await (await stranger.client.get("/v1/checkpoint")).text())
            assert verified_cosignatures(note, [CosignerKey.of(WITNESS)]) == {}


@pytest.mark.parametrize(
    ("entry", "quorum", "why"),
    [
        (WitnessEndpointConfig("nonsense", "http://127.0.0.1:1"), 1, "witnesses.witnesses[0].vkey: "),
        (WitnessEndpointConfig(CosignerKey.of(WITNESS).vkey(), "ftp://x"), 1, "witnesses.witnesses[0].url: expected"),
        (WitnessEndpointConfig(CosignerKey.of(WITNESS).vkey(), "http://x"), 2, "witnesses.quorum: expected 1 to 1"),
    ],
)
def test_a_wrong_witness_entry_is_a_config_error_naming_it(entry: WitnessEndpointConfig, quorum: int, why: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(why)):
        load_witnesses(WitnessesConfig((entry,), quorum=quorum))


async def test_the_monitor_reports_checkpoints_without_the_required_cosignatures(tmp_path: Path) -> None:
    network = make_network(4)
    absent = CosignerKey.of(key_for("witness.test/absent", "witness")).vkey()
    async with witnessed_pair(tmp_path, network) as (log, _witness):
        log.decide([issue(network["m0.test"], digest("m"), time_ms=TIME)])
        await cosigned_checkpoint(log, 1)
        satisfied = Monitor([log.url], network.genesis, witnesses=WitnessPolicy.flat((), [WITNESS_VKEY], 1))
        demanding = Monitor([log.url], network.genesis, witnesses=WitnessPolicy.flat((), [WITNESS_VKEY, absent], 2))
        await asyncio.to_thread(satisfied.run, rounds=1)
        await asyncio.to_thread(demanding.run, rounds=1)
    assert satisfied.result.faults == [] and satisfied.result.latest
    (fault,) = demanding.result.faults
    assert fault.kind == "unwitnessed"
    assert "cosigned by: witness.test/w1; missing: witness.test/absent" in fault.detail
    # Either way the checkpoint names the policy's witnesses that cosigned it, for the evidence of a split view.
    for monitor in (satisfied, demanding):
        (seen,) = monitor.result.latest.values()
        assert seen.cosigned_by == ("witness.test/w1",)
        assert seen.to_json()["cosigned_by"] == ["witness.test/w1"]


async def test_a_restarted_node_serves_the_cosignatures_it_kept_with_no_witness_reachable(tmp_path: Path) -> None:
    network = make_network(4)
    async with witnessed_pair(tmp_path, network) as (log, _witness):
        log.decide([issue(network["m0.test"], digest(f"k{i}"), time_ms=TIME) for i in range(4)])
        before = await cosigned_checkpoint(log, 4)
    # The witness is gone: whatever the restarted node serves it kept on disk.
    unreachable = WitnessesConfig((WitnessEndpointConfig(WITNESS_VKEY, "http://127.0.0.1:9"),), quorum=1)
    async with api_node(tmp_path / "log", network=network, witnesses=unreachable) as restarted:
        served = await (await restarted.client.get("/v1/checkpoint")).text()
        assert SignedNote.parse(served).text == before.text
        assert verified_cosignatures(SignedNote.parse(served), [CosignerKey.of(WITNESS)])
        assert await (await restarted.client.get("/checkpoint")).text() == served
        bundle = Bundle.from_json(await (await restarted.client.get("/v1/credentials/" + digest("k2").hex())).json())
        assert bundle.checkpoint == served
        receipt = tlogproof.from_bundle(bundle).format()
        assert CosignerKey.of(WITNESS).name in receipt and before.signatures[-1].line() in receipt
        tlogproof.verify(tlogproof.TlogProof.parse(receipt), network.genesis.validator_set())  # still a certificate
        witnessing = restarted.client.app[WITNESSING]
        assert witnessing._known == {WITNESS.name: 4}
        for _ in range(1200):  # the restarted node submits the checkpoint again; the witness cannot be reached
            if witnessing._submitted:
                break
            await asyncio.sleep(0.05)
        assert witnessing._submitted == restarted.application.height
        assert await (await restarted.client.get("/v1/checkpoint")).text() == served  # what it kept stays


async def test_a_kept_file_that_is_not_this_nodes_cosigned_certificate_is_not_served(tmp_path: Path) -> None:
    network = make_network(4)
    async with witnessed_pair(tmp_path, network) as (log, _witness):
        log.decide([issue(network["m0.test"], digest("x"), time_ms=TIME)])
        await cosigned_checkpoint(log, 1)
    kept = tmp_path / "log" / "ledger" / COSIGNED_FILE
    forged = SignedNote.parse(kept.read_text())
    line = forged.signatures[-1]
    kept.write_text(replace(forged, signatures=(*forged.signatures[:-1], replace(line, signature=bytes(72)))).format())
    unreachable = WitnessesConfig((WitnessEndpointConfig(WITNESS_VKEY, "http://127.0.0.1:9"),), quorum=1)
    async with api_node(tmp_path / "log", network=network, witnesses=unreachable) as restarted:
        served = SignedNote.parse(await (await restarted.client.get("/v1/checkpoint")).text())
        assert verified_cosignatures(served, [CosignerKey.of(WITNESS)]) == {}
        assert restarted.client.app[WITNESSING].cosigned is None


async def test_a_monitor_reaching_only_a_forked_node_and_the_witness_sees_the_split_view(tmp_path: Path) -> None:
    network = make_network(4)
    async with witnessed_pair(tmp_path, network) as (log, witness):
        log.decide([issue(network["m0.test"], digest(f"h{i}"), time_ms=TIME) for i in range(5)])
        await cosigned_checkpoint(log, 5)
        async with api_node(tmp_path / "forked", network=network) as forked:
            forked.decide([issue(network["m0.test"], digest(f"f{i}"), time_ms=TIME) for i in range(5)])
            policy = WitnessPolicy.flat((), [WITNESS_VKEY], 1)
            watcher = Monitor([forked.url], network.genesis, witnesses=policy, witness_sources=[witness.url])
            await asyncio.to_thread(watcher.run, rounds=1)
            (split,) = watcher.result.split_views
            views = {seen.source: seen for seen in (split.first, split.second)}
            assert views["node"].node == forked.url and views["witness"].node == witness.url
            assert "two certified checkpoints for height 1" in split.detail
            assert views["witness"].cosigned_by == ("witness.test/w1",) and views["node"].cosigned_by == ()
            assert views["witness"].to_json()["source"] == "witness"
            (unwitnessed,) = watcher.result.faults
            assert (unwitnessed.node, unwitnessed.kind) == (forked.url, "unwitnessed")

            stranger = Monitor([forked.url], network.genesis, witness_sources=[log.url])  # witnesses no log
            await asyncio.to_thread(stranger.run, rounds=1)
            (fault,) = stranger.result.faults
            assert (fault.node, fault.kind) == (f"witness {log.url}", "refused")
            assert "404 not-a-witness" in fault.detail


class _SlowToStop:
    """A checkpoint submitter whose last submission is still finishing when it is cancelled."""

    async def run(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)
            raise


async def test_a_node_told_to_stop_while_the_submitter_winds_down_stops() -> None:
    """Regression: the clean-up waited for the submitter with CancelledError suppressed, which also swallowed a
    cancellation aimed at the clean-up itself, so the node's stop could be lost while the submitter wound down."""
    app = web.Application()
    app[WITNESSING] = _SlowToStop()  # type: ignore[assignment]
    running = witnessing_task(app)
    await anext(running)
    stopping = asyncio.create_task(anext(running, None))
    await asyncio.sleep(0.05)  # the submitter is winding down ...
    stopping.cancel()  # ... and the node is told to stop meanwhile
    await asyncio.wait([stopping], timeout=3)
    assert stopping.cancelled()
