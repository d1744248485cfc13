"""`credledger issue --batch` against a real 4-validator network: killed with SIGKILL mid-run, then run again,
every credential ends committed exactly once with a receipt that verifies."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from credledger.cli.signing import member_record
from credledger.ledger import tlogproof
from credledger.ledger.bundle import Bundle, verify_bundle
from credledger.ledger.digest import credential_digest
from credledger.ledger.events import Issue, UnsignedEvent, decode_event, sign_event
from credledger.ledger.vc.loader import CREDENTIALS_V2, OB_V3P0
from credledger.ledger.vc.proof import verify_proof
from credledger.verifier.batch import BadInput, BatchIssuer, Credential
from credledger.verifier.batchjournal import FILE_NAME
from credledger.verifier.batchsign import standard_signer
from tests.conftest import PROJECT_ROOT, VECTORS
from tests.integration.cluster import Cluster, now_ms, poll

COUNT = 2_000


def _credential(n: int) -> dict[str, object]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "id": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        "credentialSubject": {"name": f"Graduate {n}"},
    }


def _write_inputs(directory: Path, count: int) -> tuple[Path, list[bytes]]:
    lines = [json.dumps(_credential(n)) for n in range(count)]
    path = directory / "graduates.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, [credential_digest(line.encode()) for line in lines]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "credledger.cli.main", "issue", *args]


def _journal_counts(path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    if path.exists():
        for line in path.read_bytes().split(b"\n"):
            if line.endswith(b"}"):
                counts[json.loads(line)["t"]] += 1
    return counts


def _issues_in_log(url: str) -> Counter[bytes]:
    """How many times each digest was issued, from every entry of the node's log."""
    issued: Counter[bytes] = Counter()
    start = 0
    while True:
        with urllib.request.urlopen(f"{url}/v1/entries?start={start}", timeout=10) as response:
            page = json.loads(response.read())
        for entry in page["entries"]:
            payload = decode_event(base64.b64decode(entry["encoded"])).payload
            if isinstance(payload, Issue):
                issued[payload.digest] += 1
        start = page["end"]
        if start >= page["size"]:
            return issued


def test_batch_killed_mid_run_then_rerun_issues_each_credential_exactly_once(cluster: Cluster, tmp_path: Path) -> None:
    member = cluster.members["m0.test"]
    key_file = tmp_path / "issuer.key"
    key_file.write_text(member.issuer.skey(), encoding="utf-8")
    genesis_file = cluster.root / "genesis.json"
    inputs, digests = _write_inputs(tmp_path, COUNT)
    out = tmp_path / "receipts"
    node = cluster.nodes[0].url
    command = _cli(
        "--batch", str(inputs), "--key", str(key_file), "--node", node, "--out", str(out),
        "--batch-size", "100", "--concurrency", "3", "--no-progress",
    )  # fmt: skip

    first = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Kill it once some chunks have their receipts and others are signed and in flight.
        poll(
            "the batch to keep its first receipts",
            lambda: _journal_counts(out / FILE_NAME)["receipt"] >= 200 or first.poll() is not None,
            timeout=120,
            interval=0.02,
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    before = _journal_counts(out / FILE_NAME)
    assert first.returncode == -signal.SIGKILL, "the first run ended before it could be killed"
    assert 0 < before["committed"] < COUNT, before
    assert before["signed"] > before["committed"], f"nothing was in flight when killed: {before}"

    second = subprocess.run(
        [*command, "--genesis", str(genesis_file), "--json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert second.returncode == 0, second.stderr.decode()
    summary = json.loads(second.stdout)
    assert summary["issued"] == COUNT and summary["refused"] == summary["failed"] == 0
    assert 0 < summary["resumed"] < COUNT

    issued = _issues_in_log(node)
    assert all(issued[d] == 1 for d in digests), "a credential was issued twice or not at all"
    assert sum(issued.values()) == COUNT

    genesis = cluster.genesis
    for digest in digests:
        bundle = Bundle.from_json((out / f"{digest.hex()}.receipt.json").read_text(encoding="utf-8"))
        assert bundle.digest == digest
        assert verify_bundle(bundle, genesis).status == "valid"
    proof = tlogproof.TlogProof.parse((out / f"{digests[-1].hex()}.receipt{tlogproof.EXTENSION}").read_text())
    tlogproof.verify(proof, genesis.validator_set())

    # A third run finds everything done and sends nothing.
    started = time.monotonic()
    third = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, timeout=120, check=False)
    assert third.returncode == 0, third.stderr.decode()
    assert f"issued {COUNT} of {COUNT} credentials ({COUNT} by an earlier run)" in third.stdout.decode()
    assert _issues_in_log(node) == issued
    assert time.monotonic() - started < 60


def test_batch_names_bad_lines_and_refusals_and_issues_the_rest(cluster: Cluster, tmp_path: Path) -> None:
    key = cluster.members["m1.test"].issuer
    client = cluster.nodes[1].client(timeout=60)
    origin = cluster.genesis.origin
    lines = [json.dumps(_credential(n)).encode() for n in range(5)]
    sources = [f"in.jsonl:{n}" for n in (1, 2, 4, 5, 6)]
    items: list[Credential | BadInput] = [Credential(s, None, line) for s, line in zip(sources, lines, strict=True)]
    items.insert(2, BadInput("in.jsonl:3", "not a JSON credential"))
    items.append(Credential("in.jsonl:7", None, lines[0]))  # the same credential again
    # One credential is on the ledger already, issued by an event this batch did not sign.
    taken = credential_digest(lines[4])
    client.submit([sign_event(UnsignedEvent(origin, now_ms(), Issue(taken, key.name, None, ())), key)], wait=True)

    report = BatchIssuer(client, key, tmp_path / "out", origin=origin, genesis=cluster.genesis).run(items)

    by_source = {o.source: o for o in report.outcomes}
    assert (by_source["in.jsonl:3"].status, by_source["in.jsonl:3"].detail) == ("failed", "not a JSON credential")
    assert by_source["in.jsonl:7"].rule == "duplicate-in-batch" and "in.jsonl:1" in by_source["in.jsonl:7"].detail
    assert (by_source["in.jsonl:6"].status, by_source["in.jsonl:6"].rule) == ("refused", "already-issued")
    assert [by_source[f"in.jsonl:{n}"].status for n in (1, 2, 4, 5)] == ["issued"] * 4
    assert not report.ok
    receipt = Bundle.from_json((tmp_path / "out" / f"{credential_digest(lines[0]).hex()}.receipt.json").read_text())
    assert verify_bundle(receipt, cluster.genesis).status == "valid"


def _unsigned_badge(n: int) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((VECTORS / "ob-v3p0" / "signed.json").read_text())
    for name in ("proof", "credentialStatus", "validFrom"):
        document.pop(name, None)
    document["@context"] = [CREDENTIALS_V2, OB_V3P0]
    document["issuer"] = {k: v for k, v in document["issuer"].items() if k != "id"}
    document["id"] = f"urn:uuid:7f2b1c5e-0000-4000-8000-{n:012d}"
    return document


def test_a_signed_batch_gives_each_credential_its_own_status_entry_and_a_receipt_of_the_signed_document(
    cluster: Cluster, tmp_path: Path
) -> None:
    key = cluster.members["m2.test"].issuer
    client = cluster.nodes[2].client(timeout=60)
    signer = standard_signer(member_record(client, key.name), key, [], workers=2)
    items = [Credential(f"b{n}.json", f"b{n}", json.dumps(_unsigned_badge(n)).encode()) for n in range(12)]
    out = tmp_path / "signed"

    report = BatchIssuer(client, key, out, origin=cluster.genesis.origin, signer=signer, batch_size=5).run(items)

    assert report.ok, [o.to_json() for o in report.outcomes if o.status != "issued"]
    entries = set()
    for n in range(12):
        signed = json.loads((out / f"b{n}.signed.json").read_text())
        verify_proof(signed, lambda _method: key.public.raw)
        entries.add(signed["credentialStatus"][0]["statusListIndex"])
        bundle = Bundle.from_json((out / f"b{n}.receipt.json").read_text())
        assert bundle.digest == credential_digest((out / f"b{n}.signed.json").read_bytes())
        assert verify_bundle(bundle, cluster.genesis).status == "valid"
    assert len(entries) == 12


def test_a_rerun_writes_again_the_receipts_that_went_missing(cluster: Cluster, tmp_path: Path) -> None:
    key = cluster.members["m3.test"].issuer
    client = cluster.nodes[3].client(timeout=60)
    lines = [json.dumps(_credential(100 + n)).encode() for n in range(4)]
    items: list[Credential | BadInput] = [Credential(f"in:{n}", f"c{n}", line) for n, line in enumerate(lines)]
    out = tmp_path / "out"
    assert BatchIssuer(client, key, out, origin=cluster.genesis.origin).run(items).ok
    (out / "c1.receipt.json").unlink()
    (out / "c2.receipt.tlog-proof").write_text("torn")

    report = BatchIssuer(client, key, out, origin=cluster.genesis.origin).run(items)

    assert report.ok
    assert [o.resumed for o in report.outcomes] == [True, False, False, True]
    for n in (1, 2):
        receipt = Bundle.from_json((out / f"c{n}.receipt.json").read_text())
        assert verify_bundle(receipt, cluster.genesis).status == "valid"
        tlogproof.TlogProof.parse((out / f"c{n}.receipt{tlogproof.EXTENSION}").read_text())
