"""Pathways: how far a learner's credentials go toward an award, by the same rule evaluation the ledger runs.

The ledger checks an award's components when it is issued (`ledger.achievement_rules`); a learner or an adviser
asks the question beforehand: given the credentials I hold (each with the achievement version it awards, as a
verified record shows), which awards do they complete, and what is missing for the others? `progress` answers it
for one award with `ledger.stacking.evaluate`, seeing each credential as the award's issuer would: its own facts
and what the issuer's recognitions make of them. Pure.

`pathways_in_state` asks the same question of a node's own state (for `POST /v1/pathway`): each credential's
status and awarded achievement come from the state map rather than from a verified record, and every published,
unretired award rule is evaluated through its issuer's recognitions in force.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from credledger.ledger.achievement import Definition
from credledger.ledger.achievement_rules import definition_of, recognitions_in_force
from credledger.ledger.catalogue import achievement_ids, get_achievement, get_award
from credledger.ledger.recognition import Recognition, recognised_facets, recognises
from credledger.ledger.stacking import AchievementRef, Component, Facet, Outcome, Rule, evaluate
from credledger.ledger.state import StateView, Status, get_credential, get_directory


@dataclass(frozen=True, slots=True)
class Held:
    """A valid credential the learner holds, and the achievement version it awards."""

    digest: bytes
    issuer: str
    issued_ms: int
    achievement: AchievementRef
    definition: Definition


def facet_of(ref: AchievementRef, definition: Definition) -> Facet:
    """What an achievement counts as by itself."""
    return Facet(ref, definition.credits, definition.level, definition.field)


def progress(
    rule: Rule,
    held: Sequence[Held],
    recognitions: Sequence[Recognition],
    own: Callable[[str], Facet | None],
    at_ms: int,
) -> Outcome:
    """Evaluate an award's `rule` over the credentials `held`, through its issuer's `recognitions` (`own` finds the
    facts of one of the issuer's achievements by id), as if the award were issued at `at_ms`."""
    components = []
    for position, item in enumerate(held):
        own_facet = facet_of(item.achievement, item.definition)
        facets = (own_facet, *recognised_facets(own_facet, recognitions, own))
        recognised = recognises(recognitions, own_facet)
        components.append(Component(position, item.issuer, item.issued_ms, facets, recognised))
    return evaluate(rule, components, at_ms)


@dataclass(frozen=True, slots=True)
class Pathway:
    """How far a learner's credentials go toward one award."""

    target: AchievementRef
    name: str
    outcome: Outcome

    def to_json(self) -> dict[str, Any]:
        return {
            "achievement": str(self.target),
            "name": self.name,
            "complete": self.outcome.met,
            "missing": list(self.outcome.missing),
        }


def ranked(found: Iterable[Pathway]) -> list[Pathway]:
    """Complete awards first, then by how little is missing, then by member and id."""
    return sorted(found, key=lambda p: (not p.outcome.met, len(p.outcome.missing), p.target.member, p.target.id))


@dataclass(frozen=True, slots=True)
class Standing:
    """One credential as the state sees it: its status (valid, revoked, suspended, expired or unknown) and the
    achievement version its issue awards, if it names one."""

    digest: bytes
    status: str
    issuer: str | None
    issued_ms: int | None
    achievement: AchievementRef | None
    version: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest.hex(),
            "status": self.status,
            "issuer": self.issuer,
            "issued_ms": self.issued_ms,
            "achievement": None
            if self.achievement is None
            else {"member": self.achievement.member, "id": self.achievement.id, "version": self.version},
        }


def standing_in_state(view: StateView, digest: bytes, at_ms: int) -> tuple[Standing, Held | None]:
    """A credential's standing at `at_ms`, and what it counts as in award rules when it is valid and names an
    achievement."""
    record = get_credential(view, digest)
    if record is None:
        return Standing(digest, "unknown", None, None, None, None), None
    if record.status == Status.REVOKED:
        status = "revoked"
    elif record.status == Status.SUSPENDED:
        status = "suspended"
    elif record.expires_ms is not None and record.expires_ms <= at_ms:
        status = "expired"
    else:
        status = "valid"
    award = get_award(view, digest)
    ref = None if award is None else AchievementRef(award.member, award.achievement)
    standing = Standing(digest, status, record.issuer, record.issued_ms, ref, None if award is None else award.version)
    if status != "valid" or award is None or ref is None:
        return standing, None
    version = get_achievement(view, award.member, award.achievement, award.version)
    if version is None:
        return standing, None
    definition = definition_of(version.definition, version.member)
    return standing, Held(digest, record.issuer, record.issued_ms, ref, definition)


def pathways_in_state(
    view: StateView, digests: Sequence[bytes], at_ms: int, *, toward: AchievementRef | None = None
) -> tuple[list[Standing], list[Pathway]]:
    """Each credential's standing, and every published, unretired award rule (or only `toward`'s) evaluated over
    the valid ones as if awarded at `at_ms`: complete awards first. KeyError if `toward` is not an award rule in
    the catalogue."""
    standings, held = [], []
    for digest in digests:
        standing, counted = standing_in_state(view, digest, at_ms)
        standings.append(standing)
        if counted is not None:
            held.append(counted)
    members = get_directory(view).members if toward is None else (toward.member,)
    found = []
    for member in members:
        recognitions: tuple[Recognition, ...] | None = None
        ids = achievement_ids(view, member) if toward is None else (toward.id,)
        for achievement in ids:
            current = get_achievement(view, member, achievement)
            if current is None or current.retired_height is not None:
                continue
            definition = definition_of(current.definition, current.member)
            if definition.rule is None:
                continue
            if recognitions is None:
                recognitions = recognitions_in_force(view, member)
            outcome = progress(definition.rule, held, recognitions, _own_facts(view, member), at_ms)
            found.append(Pathway(AchievementRef(member, achievement), definition.name, outcome))
    if toward is not None and not found:
        raise KeyError(f"the catalogue has no award rule {toward} in force (never published, retired, or no rule)")
    return standings, ranked(found)


def _own_facts(view: StateView, member: str) -> Callable[[str], Facet | None]:
    def own(achievement: str) -> Facet | None:
        record = get_achievement(view, member, achievement)
        if record is None:
            return None
        return facet_of(AchievementRef(member, achievement), definition_of(record.definition, record.member))

    return own
