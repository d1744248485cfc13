"""Standard credentials on a running 4-validator network, checked by the reference JavaScript verifiers
(@digitalbazaar/vc with vc-bitstring-status-list, tests/js): a badge issued through one node's VC-API verifies with
the DID document and status lists other nodes serve; revoked it reads as revoked, suspended as suspended, then
valid again once reinstated. The verifier's document loader maps the https URLs to the loopback nodes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from credledger.ledger.events import KeyAdd, KeyRetire
from credledger.ledger.vc.loader import CREDENTIALS_V2, OB_V3P0, shipped_loader
from tests.conftest import VECTORS
from tests.factories import key_for
from tests.integration.cluster import HTTP_TIMEOUT_S, Cluster, Node, poll, running
from tests.integration.conftest import CLUSTERS
from tests.unit.test_vc_js import _did_key_badge, _run
from tests.unit.test_vc_js import node as node  # noqa: PLC0414 - the fixture that finds Node.js

TOKEN = "integration-token"
CONFIG = f'\n[credentials]\nissuer_key = "issuer.key"\napi_token = "{TOKEN}"\n'
M0 = "m0.test"


@pytest.fixture
def net(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path / "net", extra_config=CONFIG)
    request.node.stash.setdefault(CLUSTERS, []).append(cluster)
    with running(cluster):
        yield cluster


def post(node: Node, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{node.url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def fetch(node: Node, url: str) -> Any:
    """What `node` serves for an https URL of the network (its path, on the loopback node)."""
    path = "/" + url.split("/", 3)[3]
    with urllib.request.urlopen(f"{node.url}{path}", timeout=HTTP_TIMEOUT_S) as response:
        return json.loads(response.read())


def badge() -> dict[str, Any]:
    document = json.loads((VECTORS / "ob-v3p0" / "signed.json").read_text())
    for name in ("proof", "credentialStatus", "validFrom"):
        document.pop(name, None)
    document["@context"] = [CREDENTIALS_V2, OB_V3P0]
    document["issuer"] = {k: v for k, v in document["issuer"].items() if k != "id"}
    document["id"] = "urn:uuid:7f2b1c5e-live-badge-0001"
    return document


def js_status(node_js: str, tmp_path: Path, net: Cluster, credential: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Run the reference verifier with the DID document and status lists served by m1, m2 and m3."""
    m1, m2, m3 = net.validators[1:4]
    lists = [entry["statusListCredential"] for entry in credential["credentialStatus"]]
    documents = {
        **shipped_loader().documents,
        f"did:web:{M0}": net.get(m1, f"/v1/members/{M0}/did.json"),
        lists[0]: fetch(m2, lists[0]),
        lists[1]: fetch(m3, lists[1]),
    }
    (tmp_path / "documents.json").write_text(json.dumps(documents))
    (tmp_path / "credential.json").write_text(json.dumps(credential))
    done = _run(node_js, Path("verify"), tmp_path / "documents.json", tmp_path / "credential.json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def statuses(result: dict[str, Any]) -> list[tuple[str, bool]]:
    return sorted((s["purpose"], s["status"]) for s in result["status"])


def test_a_badge_issued_through_the_vc_api_verifies_and_its_status_changes_read_in_the_reference_verifier(
    net: Cluster, node: str, tmp_path: Path
) -> None:
    m0 = net.validators[0]
    signed = post(m0, "/credentials/issue", {"credential": badge()})["verifiableCredential"]
    urls = [entry["statusListCredential"] for entry in signed["credentialStatus"]]

    def published() -> bool:
        try:
            lists = [fetch(n, url) for n in net.validators for url in urls]
        except urllib.error.HTTPError:
            return False
        return len({json.dumps(d, sort_keys=True) for d in lists}) == 2

    poll("both lists published and the same on every node", published)
    code, result = js_status(node, tmp_path, net, signed)
    assert (code, result["verified"], result["errors"]) == (0, True, [])
    assert statuses(result) == [("revocation", False), ("suspension", False)]

    def change(purpose: str, value: str, expected: list[tuple[str, bool]]) -> None:
        body = {"credentialId": signed["id"], "credentialStatus": [{"statusPurpose": purpose, "status": value}]}
        post(m0, "/credentials/status", body)
        poll(f"{purpose}={value} in the lists", lambda: statuses(js_status(node, tmp_path, net, signed)[1]) == expected)

    change("suspension", "1", [("revocation", False), ("suspension", True)])
    change("suspension", "0", [("revocation", False), ("suspension", False)])
    change("revocation", "1", [("revocation", True), ("suspension", False)])

    tampered = {**signed, "name": "A badge nobody issued"}
    code, result = js_status(node, tmp_path, net, tampered)
    assert code == 1 and result["verified"] is False and result["errors"]


def verifier_core(node_js: str, tmp_path: Path, net: Cluster, credential: dict[str, Any]) -> dict[str, Any]:
    """@digitalcredentials/verifier-core on `credential`, with m1's registry and https://m0.test on m0's node."""
    m0, m1 = net.validators[:2]
    (tmp_path / "origins.json").write_text(json.dumps({f"https://{M0}": m0.url}))
    (tmp_path / "credential.json").write_text(json.dumps(credential))
    registry = f"{m1.url}/v1/registry.json"
    done = _run(
        node_js, Path("verifier-core-live"), tmp_path / "origins.json", Path(registry), tmp_path / "credential.json"
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_dcc_verifier_core_finds_members_in_the_registry_and_not_others(
    net: Cluster, node: str, tmp_path: Path
) -> None:
    m0 = net.validators[0]
    signed = post(m0, "/credentials/issue", {"credential": badge()})["verifiableCredential"]
    poll("the lists published", lambda: _served(m0, signed))
    result = verifier_core(node, tmp_path, net, signed)
    log = {entry["id"]: entry["valid"] for entry in result["log"]}
    assert log.get("registered_issuer") is True, result
    assert log.get("valid_signature") is True, result

    # A badge validly signed by an issuer that is not a member (a did:key, which resolves without the network).
    result = verifier_core(node, tmp_path, net, _did_key_badge())
    log = {entry["id"]: entry["valid"] for entry in result["log"]}
    assert (log.get("valid_signature"), log.get("registered_issuer")) == (True, False), result


def _served(node: Node, credential: dict[str, Any]) -> bool:
    try:
        for entry in credential["credentialStatus"]:
            fetch(node, entry["statusListCredential"])
    except urllib.error.HTTPError:
        return False
    return True


def test_a_badge_signed_before_its_key_was_retired_verifies_and_fails_once_the_key_is_marked_compromised(
    net: Cluster, node: str, tmp_path: Path
) -> None:
    m0, m1 = net.validators[:2]
    signed = post(m0, "/credentials/issue", {"credential": badge()})["verifiableCredential"]
    poll("the lists published", lambda: all(_served(n, signed) for n in net.validators))
    first = net.members[M0].issuer
    second = key_for(M0, "rotated")
    net.submit(m1, net.sign(KeyAdd(M0, second.public.raw), first))
    net.submit(m1, net.sign(KeyRetire(M0, first.key_id, None), second))

    code, result = js_status(node, tmp_path, net, signed)
    assert (code, result["verified"], result["errors"]) == (0, True, []), "retired keys stay in the DID document"

    net.submit(m1, net.governance(KeyRetire(M0, first.key_id, 1), ["m0.test", "m1.test", "m2.test"]))
    poll(
        "the compromised key gone from the DID document",
        lambda: all(first.key_id.hex() not in json.dumps(net.get(n, f"/v1/members/{M0}/did.json")) for n in net.nodes),
    )
    code, result = js_status(node, tmp_path, net, signed)
    assert (code, result["verified"]) == (1, False)
    assert result["errors"], result
