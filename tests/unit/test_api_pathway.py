"""`POST /v1/pathway` against a real store and HTTP server: the three ways to name credentials, what the awards
miss, and a precise problem for every bad body."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from credledger.ledger.digest import document_digest
from credledger.ledger.events import Revoke
from tests.apinode import ApiNode, api_node, problem_of
from tests.catalogue import award, definition, publish, recognise
from tests.factories import T0, digest, signed

TIME = T0 + 1000
A, B = "m0.test", "m1.test"
SUBJECT = "did:example:learner-1"


def document(name: str, subject: str = SUBJECT) -> dict[str, Any]:
    return {"type": ["VerifiableCredential"], "name": name, "credentialSubject": {"id": subject}}


def digest_of(value: dict[str, Any]) -> bytes:
    return document_digest(json.dumps(value).encode()).digest


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path) as n:
        m0, m1 = n.network[A], n.network[B]
        await commit(
            n,
            publish(m0, definition("stats", credits=5, level=6, field="Maths"), time_ms=TIME),
            publish(m0, definition("intro", credits=5, level=5, field="Maths"), time_ms=TIME),
            publish(m1, definition("b-intro", credits=6, system="UCP", level=5), time_ms=TIME),
        )
        cert = {"credits": {"min": 10, "system": "ECTS"}}
        diploma = {"all": [{"achievement": {"id": "b-intro"}}, {"achievement": {"member": A, "id": "stats"}}]}
        await commit(
            n,
            publish(m1, definition("b-cert", kind="Certificate", rule=cert), time_ms=TIME),
            publish(m1, definition("b-diploma", kind="Diploma", rule=diploma), time_ms=TIME),
            recognise(
                m1,
                {"id": "r", "from": {"member": A, "achievement": "intro"}, "as": {"achievement": "b-intro"}},
                time_ms=TIME,
            ),
        )
        await commit(
            n,
            award(m0, digest_of(document("stats")), "stats", time_ms=TIME),
            award(m0, digest_of(document("intro")), "intro", time_ms=TIME),
            award(m0, digest("other"), "stats", time_ms=TIME),
        )
        yield n


async def commit(node: ApiNode, *events: Any) -> None:
    response = await node.submit(*events)
    assert response.status == 202, await response.text()
    node.decide()


async def pathway(node: ApiNode, body: Any) -> dict[str, Any]:
    response = await node.client.post("/v1/pathway", json=body)
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


def by_award(body: dict[str, Any]) -> dict[str, tuple[bool, list[str]]]:
    return {p["achievement"]: (p["complete"], p["missing"]) for p in body["pathways"]}


async def test_digests_show_each_standing_and_the_awards_complete_first(node: ApiNode) -> None:
    digests = [digest_of(document("stats")).hex(), digest_of(document("intro")).hex(), digest("never").hex()]
    body = await pathway(node, {"digests": digests})
    assert [(c["status"], c["achievement"]) for c in body["credentials"]] == [
        ("valid", {"member": A, "id": "stats", "version": 1}),
        ("valid", {"member": A, "id": "intro", "version": 1}),
        ("unknown", None),
    ]
    # intro counts as B's b-intro through B's recognition; stats and intro make 10 ECTS.
    assert by_award(body) == {f"{B}/b-cert": (True, []), f"{B}/b-diploma": (True, [])}
    assert body["height"] == node.application.height


async def test_what_is_missing_is_named_and_toward_keeps_one_award(node: ApiNode) -> None:
    body = await pathway(node, {"digests": [digest_of(document("stats")).hex()], "toward": f"{B}/b-diploma"})
    assert by_award(body) == {f"{B}/b-diploma": (False, [f"achievement {B}/b-intro: no component awards it"])}


async def test_a_rule_counting_recognised_issuers_sees_the_recognitions_in_force(node: ApiNode) -> None:
    rule = {"credits": {"min": 5, "system": "ECTS", "recognised_issuers": True}}
    await commit(node, publish(node.network[B], definition("b-partner", kind="Certificate", rule=rule), time_ms=TIME))
    toward = f"{B}/b-partner"
    stats = await pathway(node, {"digests": [digest_of(document("stats")).hex()], "toward": toward})
    assert by_award(stats) == {toward: (False, ["credits: 0 of 5 ECTS from members it recognises"])}
    intro = await pathway(node, {"digests": [digest_of(document("intro")).hex()], "toward": toward})
    assert by_award(intro) == {toward: (True, [])}  # B recognises A's intro (recognition r)


async def test_a_revoked_credential_does_not_count(node: ApiNode) -> None:
    await commit(node, signed(Revoke(digest_of(document("intro")), 1), node.network[A].issuer, time_ms=TIME))
    body = await pathway(node, {"digests": [digest_of(document("stats")).hex(), digest_of(document("intro")).hex()]})
    assert body["credentials"][1]["status"] == "revoked"
    assert by_award(body)[f"{B}/b-cert"] == (False, ["credits: 5 of 10 ECTS"])


async def test_credentials_may_be_documents_bundles_or_a_record(node: ApiNode) -> None:
    stats, intro = digest_of(document("stats")), digest_of(document("intro"))
    as_documents = await pathway(node, {"credentials": [document("stats"), document("intro")]})
    assert [c["digest"] for c in as_documents["credentials"]] == [stats.hex(), intro.hex()]
    bundle = await (await node.client.get(f"/v1/credentials/{intro.hex()}")).json()
    mixed = await pathway(node, {"credentials": [document("stats"), bundle]})
    assert mixed["pathways"] == as_documents["pathways"]
    record = await (await node.client.post("/v1/record", json={"digests": [stats.hex(), intro.hex()]})).json()
    from_record = await pathway(node, {"record": record, "toward": f"{B}/b-cert"})
    assert by_award(from_record) == {f"{B}/b-cert": (True, [])}


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        ("not json", 400, "malformed", "not JSON"),
        ([], 400, "malformed", "expected an object"),
        ({}, 400, "malformed", "exactly one of digests, record or credentials, got 0"),
        ({"digests": ["00" * 32], "record": {}}, 400, "malformed", "got 2"),
        ({"digests": ["00" * 32], "colour": 1}, 400, "malformed", "unknown field colour"),
        ({"digests": []}, 400, "malformed", "digests: expected a list of 1..1000"),
        ({"digests": ["zz"]}, 400, "malformed", "digests[0]"),
        ({"digests": ["00" * 32, "00" * 32]}, 400, "malformed", "digests[1]: credential 00"),
        ({"digests": ["00" * 32], "toward": "nocursor"}, 400, "malformed", "toward: expected MEMBER/ID"),
        ({"digests": ["00" * 32], "toward": f"{B}/nope"}, 404, "not-found", f"no award rule {B}/nope"),
        ({"digests": ["00" * 32], "toward": f"{A}/stats"}, 404, "not-found", "no rule"),
        ({"record": {"format": "x"}}, 400, "malformed", "record: expected an object with format"),
        ({"record": {"format": "credledger-record/v1", "credentials": [{}]}}, 400, "malformed", "credentials[0]"),
        ({"credentials": [5]}, 400, "malformed", "credentials[0]: expected a credential document"),
        (
            {"credentials": [{"format": "credledger-proof/v1", "digest": 7}]},
            400,
            "malformed",
            "credentials[0].digest",
        ),
        (
            {"credentials": [document("stats"), document("intro", subject="did:example:someone-else")]},
            400,
            "different-subjects",
            "did:example:someone-else",
        ),
    ],
)
async def test_a_bad_body_gets_a_precise_problem(node: ApiNode, body: Any, status: int, code: str, detail: str) -> None:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response = await node.client.post("/v1/pathway", data=data, headers={"Content-Type": "application/json"})
    await problem_of(response, status, code, detail)


async def test_a_body_over_the_limit_is_413(node: ApiNode) -> None:
    response = await node.client.post(
        "/v1/pathway", data=b" " * (9 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    await problem_of(response, 413, "body-too-large", "limit")
