"""Our verifiers check a signed credential's Bitstring Status Lists against the certified state (DESIGN §13, the
split-view defence), on a running 4-validator network: the lists every node serves agree with the state proof; a
list doctored to show a revoked credential as valid -- even one the member signs with its own key -- or one signed
by a key that is not the issuer's, is refused naming its URL, by the Python API and by `credledger verify`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from credledger.cli.main import main as run_cli
from credledger.ledger.keys import SigningKey
from credledger.ledger.vc.did import verification_method_id
from credledger.ledger.vc.proof import sign_credential
from credledger.ledger.vc.statuslist import Bitstring, encode_list, entry_index, read_status_list_credential
from credledger.verifier.credential import Report, verify_credential
from credledger.verifier.statuslists import INVALID_STATUS_LIST, STATUS_LIST_STEP
from tests.factories import key_for
from tests.integration.cluster import Cluster, poll, running
from tests.integration.conftest import CLUSTERS
from tests.integration.test_vc_live import CONFIG, M0, badge, fetch, post


@pytest.fixture
def net(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path / "net", extra_config=CONFIG)
    request.node.stash.setdefault(CLUSTERS, []).append(cluster)
    with running(cluster):
        yield cluster


def list_checks(report: Report) -> list[str]:
    return [c.detail for c in report.checks if c.step == STATUS_LIST_STEP]


def doctored(listed: dict[str, Any], index: int, value: bool, key: SigningKey, did: str) -> dict[str, Any]:
    """`listed` with entry `index` set to `value`, signed again by `key` as a key of `did`."""
    bits = set(read_status_list_credential(listed).bits.set_indices())
    bits = bits | {index} if value else bits - {index}
    unsigned = {k: v for k, v in listed.items() if k != "proof"}
    unsigned["credentialSubject"] = {**unsigned["credentialSubject"], "encodedList": encode_list(Bitstring.of(bits))}
    return sign_credential(unsigned, key, verification_method_id(did, key.key_id), 1_767_225_600_000)


def test_served_lists_must_agree_with_the_certified_state_and_a_doctored_one_is_refused(
    net: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m0, m1, m2 = net.validators[:3]
    genesis = net.root / "genesis.json"
    signed = post(m0, "/credentials/issue", {"credential": badge()})["verifiableCredential"]
    credential = tmp_path / "signed.json"
    credential.write_text(json.dumps(signed))
    urls = {entry["statusPurpose"]: entry["statusListCredential"] for entry in signed["credentialStatus"]}
    index = entry_index(signed["credentialStatus"][0])

    def published() -> bool:
        try:
            return all(fetch(n, url) for n in net.validators for url in urls.values())
        except OSError:  # not published yet (404), or a read that timed out on a loaded machine
            return False

    poll("both lists published", published)
    report = verify_credential(credential, genesis=genesis, nodes=[m2.url])
    assert report.status == "valid", report.to_json()
    checks = list_checks(report)
    assert len(checks) == 2 and all("as the certified state says" in c for c in checks), checks
    assert all(c.ok for c in report.checks), report.to_json()

    # The member itself signs a list that hides a revocation: a split view a W3C verifier would believe.
    post(
        m0,
        "/credentials/status",
        {"credentialId": signed["id"], "credentialStatus": [{"statusPurpose": "revocation", "status": "1"}]},
    )
    poll(
        "revoked, and the served list says so",
        lambda: verify_credential(credential, genesis=genesis, nodes=[m1.url]).status == "revoked",
    )
    revoked = verify_credential(credential, genesis=genesis, nodes=[m1.url])
    assert any(f"shows entry {index} as revoked" in c for c in list_checks(revoked)), revoked.to_json()

    did = f"did:web:{M0}"
    served = fetch(m1, urls["revocation"])
    hiding = tmp_path / "hiding.json"
    hiding.write_text(json.dumps(doctored(served, index, False, net.members[M0].issuer, did)))
    report = verify_credential(credential, genesis=genesis, nodes=[m1.url], status_lists=[hiding])
    assert report.status == INVALID_STATUS_LIST and not report.ok
    failed = [c for c in report.checks if not c.ok]
    assert len(failed) == 1 and failed[0].step == STATUS_LIST_STEP
    assert f"the list given for {urls['revocation']} DISAGREES with the certified state" in failed[0].detail
    assert f"shows entry {index} as not revoked" in failed[0].detail and "says revoked" in failed[0].detail

    # Right bits, wrong signer: a key the member never registered.
    stranger = tmp_path / "stranger.json"
    stranger.write_text(json.dumps(doctored(served, index, True, key_for(M0, "not registered"), did)))
    report = verify_credential(credential, genesis=genesis, nodes=[m1.url], status_lists=[stranger])
    assert report.status == INVALID_STATUS_LIST
    assert any("its proof fails: verification-method" in c for c in list_checks(report)), report.to_json()

    # The same from the command line: exit 1, the list named.
    command = ["verify", str(credential), "--genesis", str(genesis), "--node", m2.url]
    code = run_cli([*command, "--status-list", str(hiding)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert out.startswith("INVALID STATUS LIST") and f"{urls['revocation']} DISAGREES" in out
    assert run_cli(command) == 1
    out = capsys.readouterr().out
    assert out.startswith("REVOKED") and "credential-proof" in out and f"shows entry {index} as revoked" in out
