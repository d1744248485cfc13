"""Pathways: how far a learner's credentials go toward an award, by the same rule evaluation the ledger runs.

The ledger checks an award's components when it is issued (`ledger.achievement_rules`); a learner or an adviser
asks the question beforehand: given the credentials I hold (each with the achievement version it awards, as a
verified record shows), which awards do they complete, and what is missing for the others? `progress` answers it
for one award with `ledger.stacking.evaluate`, seeing each credential as the award's issuer would: its own facts
and what the issuer's recognitions make of them. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from credledger.ledger.achievement import Definition
from credledger.ledger.recognition import Recognition, recognised_facets, recognises
from credledger.ledger.stacking import AchievementRef, Component, Facet, Outcome, Rule, evaluate


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
