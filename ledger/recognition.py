"""Recognition agreements: how one member counts another's achievements in its own stacking rules (DESIGN §14).

Member B publishes, as RFC 8785 canonical JSON in a `recognition.publish` event, that it recognises member A's
achievement X -- or every achievement of A at or above a level, in a field -- in one of three ways::

    {"id": "a-stats", "from": {"member": "uni-a.example", "achievement": "stats"}, "as": {"achievement": "stats-1"}}
    {"id": "a-maths", "from": {"member": "uni-a.example", "level": {"framework": "EQF", "min": 6},
                               "fieldOfStudy": "Mathematics"},
     "as": {"rate": {"fromSystem": "ECTS", "system": "UCP", "numerator": 1, "denominator": 6}}}
    {"id": "a-intro", "from": {"member": "uni-a.example", "achievement": "intro"},
     "as": {"credits": 12.5, "system": "UCP"}}

`as.achievement` makes X count as B's own achievement Y (with Y's credits, level and field); `as.credits` makes it
worth a fixed number of B's credits; `as.rate` converts X's own credits from one system into B's at a rational
rate, rounding down to the hundredth. B may withdraw a recognition; awards already issued stay valid, since a rule
is checked only at the issue's height.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from credledger.ledger.achievement import parse_json
from credledger.ledger.stacking import (
    AchievementRef,
    CreditValue,
    Facet,
    Level,
    RuleError,
    fields,
    integer,
    label,
    member_id,
    parse_credits,
)

MAX_RECOGNITION_BYTES = 2 * 1024
MAX_RATE_TERM = 1_000_000


@dataclass(frozen=True, slots=True)
class Rate:
    """Credits in `from_system` times numerator / denominator, in `system`."""

    from_system: str
    system: str
    numerator: int
    denominator: int


@dataclass(frozen=True, slots=True)
class Recognition:
    """What the ledger reads from a recognition: what it matches, and what a match counts as."""

    id: str
    source_member: str
    source_achievement: str | None
    source_level: Level | None
    source_field: str | None
    equivalent: str | None
    worth: CreditValue | None
    rate: Rate | None


def parse_recognition(data: bytes, owner: str) -> Recognition:
    """Validate a recognition published by `owner`; RuleError names the field that is wrong."""
    obj = fields(parse_json(data, "recognition", MAX_RECOGNITION_BYTES), "recognition", ("id", "from", "as"))
    source = fields(obj["from"], "recognition.from", ("member",), ("achievement", "level", "fieldOfStudy"))
    member = member_id(source["member"], "recognition.from.member")
    if member == owner:
        raise RuleError("recognition.from.member: a member recognises other members' achievements, not its own")
    level = None
    if "level" in source:
        lv = fields(source["level"], "recognition.from.level", ("framework", "min"))
        level = Level(
            label(lv["framework"], "recognition.from.level.framework"),
            integer(lv["min"], "recognition.from.level.min", 0, 99),
        )
    achievement = label(source["achievement"], "recognition.from.achievement") if "achievement" in source else None
    field = label(source["fieldOfStudy"], "recognition.from.fieldOfStudy") if "fieldOfStudy" in source else None
    target = obj["as"]
    if not isinstance(target, dict) or not ({"achievement"} == set(target) or "credits" in target or "rate" in target):
        raise RuleError("recognition.as: expected one of {achievement}, {credits, system} or {rate}")
    equivalent = worth = rate = None
    if "achievement" in target:
        equivalent = label(target["achievement"], "recognition.as.achievement")
    elif "credits" in target:
        body = fields(target, "recognition.as", ("credits", "system"))
        worth = CreditValue(
            label(body["system"], "recognition.as.system"), parse_credits(body["credits"], "recognition.as.credits")
        )
    else:
        raw = fields(
            fields(target, "recognition.as", ("rate",))["rate"],
            "recognition.as.rate",
            ("fromSystem", "system", "numerator", "denominator"),
        )
        rate = Rate(
            label(raw["fromSystem"], "recognition.as.rate.fromSystem"),
            label(raw["system"], "recognition.as.rate.system"),
            integer(raw["numerator"], "recognition.as.rate.numerator", 1, MAX_RATE_TERM),
            integer(raw["denominator"], "recognition.as.rate.denominator", 1, MAX_RATE_TERM),
        )
    return Recognition(label(obj["id"], "recognition.id"), member, achievement, level, field, equivalent, worth, rate)


def matches(recognition: Recognition, source: AchievementRef, facts: Facet) -> bool:
    """Whether `recognition` covers the achievement `source`, whose own facts are `facts`."""
    if recognition.source_member != source.member:
        return False
    if recognition.source_achievement is not None and recognition.source_achievement != source.id:
        return False
    wanted = recognition.source_level
    if wanted is not None and (
        facts.level is None or facts.level.framework != wanted.framework or facts.level.value < wanted.value
    ):
        return False
    return recognition.source_field is None or facts.field == recognition.source_field


def recognises(recognitions: Sequence[Recognition], facts: Facet) -> bool:
    """Whether any of `recognitions` covers the achievement whose own facts are `facts` (what a stacking rule's
    `recognised_issuers` asks of a component)."""
    return any(matches(recognition, facts.achievement, facts) for recognition in recognitions)


def recognised_facets(
    facts: Facet, recognitions: Sequence[Recognition], own: Callable[[str], Facet | None]
) -> tuple[Facet, ...]:
    """What an achievement with `facts` counts as for the member holding `recognitions` (`own` finds the facts of
    one of that member's achievements by id)."""
    out: list[Facet] = []
    for recognition in recognitions:
        if not matches(recognition, facts.achievement, facts):
            continue
        if recognition.equivalent is not None:
            target = own(recognition.equivalent)
            if target is not None:
                out.append(target)
        elif recognition.worth is not None:
            out.append(Facet(facts.achievement, recognition.worth, facts.level, facts.field))
        elif recognition.rate is not None:
            rate = recognition.rate
            if facts.credits is not None and facts.credits.system == rate.from_system:
                amount = facts.credits.amount * rate.numerator // rate.denominator
                out.append(Facet(facts.achievement, CreditValue(rate.system, amount), facts.level, facts.field))
    return tuple(out)
