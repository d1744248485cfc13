"""A member whose DID governance changes to a did:key (`credledger member update --did`) keeps issuing standard
credentials with Bitstring Status Lists on a running 4-validator network: its badges and lists are signed by the
key its DID names, the lists are served under its member id's domain by every node, and the reference JavaScript
verifier (@digitalbazaar/vc with vc-bitstring-status-list, resolving the did:key itself) checks proof and status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from credledger.cli.main import main as run_cli
from credledger.ledger.vc.loader import shipped_loader
from credledger.ledger.vc.multikey import did_key, did_key_verification_method
from tests.integration.cluster import Cluster, poll, running
from tests.integration.conftest import CLUSTERS
from tests.integration.test_vc_live import CONFIG, M0, badge, fetch, post, statuses
from tests.unit.test_vc_js import _run
from tests.unit.test_vc_js import node as node  # noqa: PLC0414 - the fixture that finds Node.js


@pytest.fixture
def net(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path / "net", extra_config=CONFIG)
    request.node.stash.setdefault(CLUSTERS, []).append(cluster)
    with running(cluster):
        yield cluster


def test_a_did_key_member_issues_badges_whose_lists_the_reference_verifier_checks(
    net: Cluster, node: str, tmp_path: Path
) -> None:
    m0, m1, m2, m3 = net.validators
    did = did_key(net.members[M0].issuer.public.raw)
    governance = [f"--governance={n.directory / 'node.key'}" for n in (m1, m2, m3)]
    assert run_cli(["member", "update", M0, "--did", did, *governance, "--node", m1.url, "--wait"]) == 0
    poll(
        "m0's did:key in every node's DID document",
        lambda: all(net.get(n, f"/v1/members/{M0}/did.json")["id"] == did for n in net.nodes),
    )

    signed = post(m0, "/credentials/issue", {"credential": badge()})["verifiableCredential"]
    assert signed["issuer"]["id"] == did
    assert signed["proof"]["verificationMethod"] == did_key_verification_method(net.members[M0].issuer.public.raw)
    urls = [entry["statusListCredential"] for entry in signed["credentialStatus"]]
    assert all(url.startswith(f"https://{M0}/v1/members/{M0}/status/") for url in urls)

    def published() -> list[Any] | None:
        try:
            lists = [fetch(n, url) for n in net.validators for url in urls]
        except OSError:  # not published yet (404), or a read that timed out on a loaded machine
            return None
        return lists if len({json.dumps(d, sort_keys=True) for d in lists}) == 2 else None

    poll("both lists published and the same on every node", lambda: published() is not None)

    def js(credential: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        documents = {
            **shipped_loader().documents,
            did: net.get(m2, f"/v1/members/{M0}/did.json"),
            **{url: fetch(m3, url) for url in urls},
        }
        (tmp_path / "documents.json").write_text(json.dumps(documents))
        (tmp_path / "credential.json").write_text(json.dumps(credential))
        done = _run(node, Path("verify"), tmp_path / "documents.json", tmp_path / "credential.json")
        assert done.returncode in (0, 1), done.stderr
        return done.returncode, json.loads(done.stdout)

    code, result = js(signed)
    assert (code, result["verified"], result["errors"]) == (0, True, []), result
    assert statuses(result) == [("revocation", False), ("suspension", False)]
    lists = published()
    assert lists is not None and all(document["issuer"] == did for document in lists)

    body = {"credentialId": signed["id"], "credentialStatus": [{"statusPurpose": "revocation", "status": "1"}]}
    post(m0, "/credentials/status", body)
    poll("the revocation in the list", lambda: statuses(js(signed)[1]) == [("revocation", True), ("suspension", False)])
    assert all(n.running for n in net.nodes)
