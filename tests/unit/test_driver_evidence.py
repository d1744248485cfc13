"""A validator that sees an equivocation puts the evidence on the chain."""

from __future__ import annotations

from pathlib import Path

from credledger.consensus.actions import RecordEvidence
from credledger.ledger import codec
from credledger.ledger.block import CertifiedBlock
from credledger.ledger.events import ReportEvidence
from credledger.ledger.state import EquivocationRecord, evidence_key
from credledger.ledger.storage.store import Store
from credledger.ledger.votes import make_evidence, sign_prevote
from credledger.node.application import LedgerApplication
from credledger.node.driver import Driver
from credledger.node.mempool import Mempool
from tests.blocks import certify
from tests.factories import ORIGIN, T0, make_network


async def test_recorded_evidence_is_submitted_and_committed(tmp_path: Path) -> None:
    network = make_network(4)
    store = Store(tmp_path / "ledger")
    chain = LedgerApplication(
        store, network.genesis, mempool=Mempool(max_events=10, max_bytes=1 << 20), clock=lambda: T0 / 1000 + 5
    )
    driver = Driver(chain, signer=network["m0.test"].node, clock=chain.clock)
    driver.start()
    offender = network["m2.test"].node
    evidence = make_evidence(
        sign_prevote(offender, ORIGIN, 1, 0, b"\x01" * 32), sign_prevote(offender, ORIGIN, 1, 0, None)
    )
    driver._run([RecordEvidence(evidence)])
    pending = [p for p in chain.mempool.take(10, 1 << 20) if isinstance(p.event.payload, ReportEvidence)]
    assert len(pending) == 1
    assert store.get_consensus(b"evidence/" + evidence.id()) == codec.encode(evidence)
    block = chain.build_block(1, 0, chain.now_ms(), network.ids[0])
    chain.commit(CertifiedBlock(block, certify(network, block)))
    with store.snapshot() as snap:
        raw = snap.state_view().get(evidence_key("m2.test", 1, 0, int(evidence.step)))
    assert raw is not None
    record = codec.decode(EquivocationRecord, raw)
    assert (record.offender, record.reported_by) == ("m2.test", "m0.test")
    # Reporting the same equivocation again is refused quietly: it is on record.
    driver._run([RecordEvidence(evidence)])
    assert len(chain.mempool) == 0
    driver.stop()
    store.close()
