"""For learners and the people they show their achievements to: fetching and verifying a record, and pathways.

`fetch_record` asks each node in turn for a `credledger-record/v1` of the given credentials and verifies it
against the genesis file (trusting no node). `pathways` reads the catalogue and the issuers' recognitions from a
node and evaluates every published award rule over the record's valid credentials (`ledger.pathway`): advice, not
proof -- the ledger checks the rule again, at the award's height, when the award is issued.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from credledger.ledger import jcs
from credledger.ledger.achievement import Definition, parse_definition
from credledger.ledger.bundle import ProofError
from credledger.ledger.errors import CredledgerError, DecodeError, VerificationError
from credledger.ledger.genesis import Genesis
from credledger.ledger.pathway import Held, Pathway, facet_of, progress, ranked
from credledger.ledger.recognition import parse_recognition
from credledger.ledger.record import Record, RecordVerdict, verify_record
from credledger.ledger.stacking import AchievementRef, Facet, RuleError
from credledger.verifier.client import NodeClient, NodeUnreachable

#: Catalogue pages a pathway reads at most (500 achievements each).
MAX_CATALOGUE_PAGES = 200


class LearnerClient(NodeClient):
    """The node API calls a learner's tools make."""

    def achievements(self) -> list[dict[str, Any]]:
        """Every achievement's current version, page by page."""
        out: list[dict[str, Any]] = []
        path = "/v1/achievements?limit=500"
        for _ in range(MAX_CATALOGUE_PAGES):
            page = self._json("GET", path)
            out.extend(page.get("achievements") or [])
            after = page.get("next_after")
            if not isinstance(after, str):
                return out
            path = f"/v1/achievements?limit=500&after={after}"
        return out

    def recognitions(self, member: str) -> list[dict[str, Any]]:
        """The recognitions `member` holds in force."""
        return list(self._json("GET", f"/v1/recognitions?member={member}").get("recognitions") or [])


def fetch_record(
    nodes: Sequence[str], digests: Sequence[bytes], genesis: Genesis, *, timeout: float
) -> tuple[Record, RecordVerdict]:
    """The first record a node serves that verifies; VerificationError naming every node and why, if none does."""
    failures = []
    for url in nodes:
        try:
            record = Record.from_json(LearnerClient(url, timeout=timeout).record(digests))
            return record, verify_record(record, genesis)
        except (NodeUnreachable, DecodeError, ProofError) as exc:
            failures.append(f"{url}: {exc}")
    raise VerificationError("no node served a record that verifies: " + "; ".join(failures))


def held_credentials(verdict: RecordVerdict) -> list[Held]:
    """The record's valid credentials that award an achievement."""
    return [
        Held(
            r.verdict.digest,
            r.achievement.member,
            r.verdict.issued_ms or 0,
            AchievementRef(r.achievement.member, r.achievement.id),
            r.definition,
        )
        for r in verdict.valid
        if r.achievement is not None and r.definition is not None
    ]


def pathways(client: LearnerClient, verdict: RecordVerdict, *, toward: AchievementRef | None = None) -> list[Pathway]:
    """Every award rule in the catalogue (or the one `toward`) evaluated over the record: complete ones first,
    then by how little is missing."""
    held = held_credentials(verdict)
    catalogue: dict[AchievementRef, Definition] = {}
    for item in client.achievements():
        if item.get("retired_height") is not None:
            continue
        ref = AchievementRef(str(item.get("member")), str(item.get("id")))
        catalogue[ref] = _definition(item.get("definition"), ref.member, str(ref))
    if toward is not None and toward not in catalogue:
        raise CredledgerError(f"the catalogue has no achievement {toward}")
    out = []
    recognitions: dict[str, list[Any]] = {}
    for ref, definition in sorted(catalogue.items(), key=lambda kv: (kv[0].member, kv[0].id)):
        if definition.rule is None or (toward is not None and ref != toward):
            continue
        if ref.member not in recognitions:
            recognitions[ref.member] = [
                parse_recognition(_canonical(r.get("definition")), ref.member) for r in client.recognitions(ref.member)
            ]

        def own(achievement: str, member: str = ref.member) -> Facet | None:
            found = catalogue.get(AchievementRef(member, achievement))
            return None if found is None else facet_of(AchievementRef(member, achievement), found)

        outcome = progress(definition.rule, held, recognitions[ref.member], own, verdict.as_of_ms)
        out.append(Pathway(ref, definition.name, outcome))
    return ranked(out)


def _canonical(value: Any) -> bytes:
    return jcs.canonical_json(json.dumps(value))


def _definition(value: Any, member: str, where: str) -> Definition:
    try:
        return parse_definition(_canonical(value), member)
    except (RuleError, DecodeError, TypeError) as exc:
        raise VerificationError(f"the catalogue entry {where} is not a valid definition: {exc}") from None
