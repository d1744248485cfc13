"""Stacking across two institutions on a running network: micro-credentials from both, a recognition agreement,
an award the ledger accepts, then the same award refused once a component is revoked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from credledger.ledger import jcs
from credledger.ledger.events import AchievementPublish, Issue, RecognitionPublish, Revoke
from credledger.verifier.client import NodeProblem
from tests.catalogue import definition
from tests.factories import digest
from tests.integration.cluster import Cluster

UNI_A, UNI_B = "m0.test", "m1.test"


def _canonical(value: dict[str, Any]) -> bytes:
    return jcs.canonical_json(json.dumps(value))


def test_an_award_stacking_two_institutions_credentials_is_accepted_then_refused_after_a_revocation(
    cluster: Cluster,
) -> None:
    a, b = cluster.members[UNI_A], cluster.members[UNI_B]
    node_a, node_b = cluster[UNI_A], cluster[UNI_B]
    rule = {
        "all": [
            {"achievement": {"id": "b-python"}},
            {"credits": {"min": 10, "system": "ECTS", "level": {"framework": "EQF", "min": 6}}},
        ]
    }
    cluster.submit(
        node_a,
        cluster.sign(AchievementPublish(UNI_A, _canonical(definition("a-stats", credits=5, level=6))), a.issuer),
        cluster.sign(AchievementPublish(UNI_A, _canonical(definition("a-python", credits=4, level=6))), a.issuer),
    )
    cluster.submit(
        node_b,
        cluster.sign(AchievementPublish(UNI_B, _canonical(definition("b-python", credits=5, level=6))), b.issuer),
        cluster.sign(AchievementPublish(UNI_B, _canonical(definition("b-ml", credits=5, level=6))), b.issuer),
    )
    cluster.submit(
        node_b,
        cluster.sign(
            AchievementPublish(UNI_B, _canonical(definition("b-cert", kind="Certificate", rule=rule))), b.issuer
        ),
        cluster.sign(
            RecognitionPublish(
                UNI_B,
                _canonical(
                    {
                        "id": "a-python",
                        "from": {"member": UNI_A, "achievement": "a-python"},
                        "as": {"achievement": "b-python"},
                    }
                ),
            ),
            b.issuer,
        ),
    )
    # The learner's micro-credentials: two from A (one recognised by B as its own b-python), one from B.
    micro = {name: digest(f"learner's {name}") for name in ("a-stats", "a-python", "b-ml")}
    cluster.submit(
        node_a,
        cluster.sign(Issue(micro["a-stats"], UNI_A, None, (), achievement="a-stats", achievement_version=1), a.issuer),
        cluster.sign(
            Issue(micro["a-python"], UNI_A, None, (), achievement="a-python", achievement_version=1), a.issuer
        ),
    )
    cluster.submit(
        node_b, cluster.sign(Issue(micro["b-ml"], UNI_B, None, (), achievement="b-ml", achievement_version=1), b.issuer)
    )

    components = (micro["a-python"], micro["a-stats"], micro["b-ml"])
    award = cluster.sign(
        Issue(digest("learner's certificate"), UNI_B, None, components, achievement="b-cert", achievement_version=1),
        b.issuer,
    )
    result = cluster.submit(node_b, award)["results"][0]
    assert result["status"] == "committed"
    assert cluster.verdict(cluster[UNI_A], digest("learner's certificate")).status == "valid"

    # A revokes one component; a second award over the same components is refused, naming it.
    cluster.submit(node_a, cluster.sign(Revoke(micro["a-stats"], 4), a.issuer))
    again = cluster.sign(
        Issue(
            digest("learner's second certificate"), UNI_B, None, components, achievement="b-cert", achievement_version=1
        ),
        b.issuer,
    )
    with pytest.raises(NodeProblem) as refused:
        cluster.submit(node_b, again)
    assert refused.value.rule == "component-revoked"
    assert "component 2 (" in refused.value.detail
    # The award already made stays valid.
    assert cluster.verdict(cluster[UNI_B], digest("learner's certificate")).status == "valid"
    listed = cluster.get(node_a, f"/v1/achievements?member={UNI_B}")
    assert [x["id"] for x in listed["achievements"]] == ["b-cert", "b-ml", "b-python"]
