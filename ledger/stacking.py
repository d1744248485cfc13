"""Stacking rules: which components make up an award, as bounded data evaluated by pure code (DESIGN §14).

Theory of operation
-------------------
A stacking rule is a tree of four kinds of node, written in JSON inside an achievement definition::

    {"achievement": {"member": "uni-a.example", "id": "stats-101"}}      a component awarding that achievement
    {"credits": {"min": 60, "system": "ECTS", "level": {"framework": "EQF", "min": 6},
                 "field": "Computer science", "issuers": ["uni-a.example"], "recognised_issuers": true,
                 "within_days": 1825}}
    {"all": [rule, ...]}      every child is met
    {"any": [rule, ...]}      at least one child is met
    {"n_of": {"n": 2, "of": [rule, ...]}}                                  at least n children are met

`achievement.member` defaults to the member publishing the rule; every key of `credits` but `min` and `system`
is optional. `issuers` and `recognised_issuers` say whose components a `credits` node counts: those issued by the
named members, or -- with `recognised_issuers` -- by any member whose achievement the rule's owner recognises
(a recognition the owner holds in force at the award's height covers the component's achievement), or both;
with neither, every issuer's. The tree is bounded (`MAX_RULE_DEPTH`, `MAX_RULE_NODES`, `MAX_RULE_CHILDREN`) and
validated when it is published, so evaluating it costs at most (nodes x components) steps.

Credits are integers in the smallest unit of every system, a hundredth of a credit (`CREDIT_UNIT`): a definition
writes 7.5, the ledger holds 750, and no float is ever involved. A recognition converts at a rational rate,
rounding down.

Evaluation sees each component as one or more *facets*: what the component itself awards (its achievement, credits,
level and field), and what each recognition by the award's issuer makes of it (equivalent to one of the issuer's
achievements, worth a number of the issuer's credits, or its credits converted at a rate). An `achievement` leaf is
met by any component with a facet of that achievement; a `credits` node sums, over the components that pass its
filters, the largest matching amount among each component's facets. A component may count towards several nodes.
The outcome lists, in tree order, exactly what is missing, in words a person can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from credledger.ledger.errors import DecodeError
from credledger.ledger.validators import check_member_id

MAX_RULE_DEPTH = 6
MAX_RULE_NODES = 64
MAX_RULE_CHILDREN = 32
MAX_LABEL = 200
#: Credits are held in hundredths of a credit.
CREDIT_UNIT = 100
#: Largest credit amount (in credits) a definition, rule or recognition may name.
MAX_CREDITS = 1_000_000
MAX_WITHIN_DAYS = 36_500
DAY_MS = 86_400_000


class RuleError(DecodeError, ValueError):
    """A stacking rule, a definition or a recognition that is not well formed; the message says where and why.

    A DecodeError for callers that parse outside input, and a ValueError for records that check their fields in
    `__post_init__` (the codec turns that into a refusal naming the field)."""


@dataclass(frozen=True, slots=True)
class AchievementRef:
    """One member's achievement, by id."""

    member: str
    id: str

    def __str__(self) -> str:
        return f"{self.member}/{self.id}"


@dataclass(frozen=True, slots=True)
class Level:
    """A level in a named framework (EQF 6, AQF 7, or an institution's own)."""

    framework: str
    value: int


@dataclass(frozen=True, slots=True)
class CreditValue:
    """An amount of credit, in hundredths, in a named credit system."""

    system: str
    amount: int

    def __str__(self) -> str:
        return f"{format_credits(self.amount)} {self.system}"


# --- the rule tree ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Needs:
    achievement: AchievementRef


@dataclass(frozen=True, slots=True)
class Credits:
    minimum: int
    system: str
    min_level: Level | None
    field: str | None
    issuers: tuple[str, ...] | None
    within_days: int | None
    #: Also count components whose achievement the rule's owner recognises, whoever issued them.
    recognised_issuers: bool = False

    def admits(self, component: Component) -> bool:
        """Whether the issuer filter lets `component` count: no filter, a named issuer, or a recognised one."""
        if self.issuers is None and not self.recognised_issuers:
            return True
        named = self.issuers is not None and component.issuer in self.issuers
        return named or (self.recognised_issuers and component.recognised)

    def describe(self, have: int) -> str:
        text = f"credits: {format_credits(have)} of {format_credits(self.minimum)} {self.system}"
        if self.min_level is not None:
            text += f" at level ≥ {self.min_level.value} ({self.min_level.framework})"
        if self.field is not None:
            text += f" in {self.field}"
        named = ", ".join(self.issuers or ())
        if self.recognised_issuers:
            text += f" from {named} or members it recognises" if named else " from members it recognises"
        elif named:
            text += f" from {named}"
        if self.within_days is not None:
            text += f" issued within {self.within_days} days"
        return text


@dataclass(frozen=True, slots=True)
class All:
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class NOf:
    n: int
    rules: tuple[Rule, ...]


Rule = Needs | Credits | All | AnyOf | NOf


def format_credits(amount: int) -> str:
    """Hundredths of a credit as people write them: 750 -> "7.5", 6000 -> "60"."""
    whole, cents = divmod(amount, CREDIT_UNIT)
    return str(whole) if cents == 0 else f"{whole}.{cents:02d}".rstrip("0")


def parse_credits(value: Any, where: str) -> int:
    """A JSON credit amount (an integer or a decimal with at most two places) in hundredths."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise RuleError(f"{where}: expected a number of credits")
    scaled = Decimal(value) * CREDIT_UNIT
    if scaled != scaled.to_integral_value() or not 0 <= scaled <= MAX_CREDITS * CREDIT_UNIT:
        raise RuleError(f"{where}: credits must be between 0 and {MAX_CREDITS} with at most two decimals")
    return int(scaled)


def label(value: Any, where: str) -> str:
    """A short printable label (an id, a credit system, a framework, a field)."""
    if not isinstance(value, str) or not 1 <= len(value.encode()) <= MAX_LABEL or not value.isprintable():
        raise RuleError(f"{where}: expected a printable string of 1..{MAX_LABEL} bytes")
    return value


def integer(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RuleError(f"{where}: expected an integer in [{low}, {high}]")
    return value


def fields(value: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """`value` as an object with exactly the `required` keys and any of the `optional` ones."""
    if not isinstance(value, dict):
        raise RuleError(f"{where}: expected an object")
    missing = [k for k in required if k not in value]
    unknown = sorted(set(value) - set(required) - set(optional))
    if missing:
        raise RuleError(f"{where}: missing {', '.join(missing)}")
    if unknown:
        raise RuleError(f"{where}: unknown field {', '.join(unknown)}")
    return value


def member_id(value: Any, where: str) -> str:
    try:
        check_member_id(value if isinstance(value, str) else "")
    except ValueError:
        raise RuleError(f"{where}: expected a member id") from None
    return str(value)


def parse_rule(data: Any, owner: str) -> Rule:
    """Validate the JSON form of a stacking rule published by `owner`; RuleError names the path of what is wrong."""
    count = [0]
    return _parse(data, owner, "stackingRule", 1, count)


def _parse(data: Any, owner: str, where: str, depth: int, count: list[int]) -> Rule:
    count[0] += 1
    if count[0] > MAX_RULE_NODES:
        raise RuleError(f"{where}: a rule may have at most {MAX_RULE_NODES} nodes")
    if depth > MAX_RULE_DEPTH:
        raise RuleError(f"{where}: a rule may nest at most {MAX_RULE_DEPTH} deep")
    if not isinstance(data, dict) or len(data) != 1:
        raise RuleError(f"{where}: expected an object with one of all, any, n_of, credits, achievement")
    ((kind, body),) = data.items()
    here = f"{where}.{kind}"
    if kind in ("all", "any"):
        children = _children(body, owner, here, depth, count)
        return All(children) if kind == "all" else AnyOf(children)
    if kind == "n_of":
        obj = fields(body, here, ("n", "of"))
        children = _children(obj["of"], owner, f"{here}.of", depth, count)
        n = integer(obj["n"], f"{here}.n", 1, len(children))
        return NOf(n, children)
    if kind == "achievement":
        obj = fields(body, here, ("id",), ("member",))
        member = member_id(obj["member"], f"{here}.member") if "member" in obj else owner
        return Needs(AchievementRef(member, label(obj["id"], f"{here}.id")))
    if kind == "credits":
        obj = fields(body, here, ("min", "system"), ("level", "field", "issuers", "recognised_issuers", "within_days"))
        level = None
        if "level" in obj:
            lv = fields(obj["level"], f"{here}.level", ("framework", "min"))
            level = Level(
                label(lv["framework"], f"{here}.level.framework"), integer(lv["min"], f"{here}.level.min", 0, 99)
            )
        issuers = None
        if "issuers" in obj:
            raw = obj["issuers"]
            if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_RULE_CHILDREN:
                raise RuleError(f"{here}.issuers: expected a list of 1..{MAX_RULE_CHILDREN} member ids")
            issuers = tuple(sorted({member_id(m, f"{here}.issuers[{i}]") for i, m in enumerate(raw)}))
        within = (
            integer(obj["within_days"], f"{here}.within_days", 1, MAX_WITHIN_DAYS) if "within_days" in obj else None
        )
        minimum = parse_credits(obj["min"], f"{here}.min")
        if minimum == 0:
            raise RuleError(f"{here}.min: a credit minimum must be more than 0")
        field = label(obj["field"], f"{here}.field") if "field" in obj else None
        recognised = "recognised_issuers" in obj
        if recognised and obj["recognised_issuers"] is not True:
            raise RuleError(f"{here}.recognised_issuers: expected true (leave it out to count only named issuers)")
        return Credits(minimum, label(obj["system"], f"{here}.system"), level, field, issuers, within, recognised)
    raise RuleError(f"{where}: unknown rule kind {kind!r} (expected all, any, n_of, credits, achievement)")


def _children(body: Any, owner: str, where: str, depth: int, count: list[int]) -> tuple[Rule, ...]:
    if not isinstance(body, list) or not 1 <= len(body) <= MAX_RULE_CHILDREN:
        raise RuleError(f"{where}: expected a list of 1..{MAX_RULE_CHILDREN} rules")
    return tuple(_parse(child, owner, f"{where}[{i}]", depth + 1, count) for i, child in enumerate(body))


# --- evaluation ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Facet:
    """One way a component counts: as an achievement with its credits, level and field."""

    achievement: AchievementRef
    credits: CreditValue | None
    level: Level | None
    field: str | None


@dataclass(frozen=True, slots=True)
class Component:
    """A usable component of an award: who issued it, when, the facets it counts as, and whether the award's
    issuer recognises its achievement (holds a recognition in force that covers it)."""

    position: int
    issuer: str
    issued_ms: int
    facets: tuple[Facet, ...]
    recognised: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """Whether a rule is met, what is missing (empty when met), and the positions of the components it counts."""

    met: bool
    missing: tuple[str, ...]
    counted: frozenset[int]


def evaluate(rule: Rule, components: Sequence[Component], award_ms: int) -> Outcome:
    """Evaluate `rule` over `components` for an award made at `award_ms`. Pure and deterministic."""
    return _evaluate(rule, components, award_ms)


def _evaluate(rule: Rule, components: Sequence[Component], award_ms: int) -> Outcome:  # noqa: PLR0911 - one per kind
    match rule:
        case Needs(achievement=ref):
            hits = frozenset(c.position for c in components if any(f.achievement == ref for f in c.facets))
            if hits:
                return Outcome(True, (), hits)
            return Outcome(False, (f"achievement {ref}: no component awards it",), frozenset())
        case Credits():
            have = 0
            used: set[int] = set()
            for component in components:
                amount = credit_amount(rule, component, award_ms)
                if amount:
                    have += amount
                    used.add(component.position)
            if have >= rule.minimum:
                return Outcome(True, (), frozenset(used))
            return Outcome(False, (rule.describe(have),), frozenset(used))
        case All(rules=children):
            outcomes = [_evaluate(child, components, award_ms) for child in children]
            missing = tuple(m for o in outcomes for m in o.missing)
            return Outcome(not missing, missing, _union(outcomes))
        case AnyOf(rules=children):
            outcomes = [_evaluate(child, components, award_ms) for child in children]
            if any(o.met for o in outcomes):
                return Outcome(True, (), _union([o for o in outcomes if o.met]))
            inner = " | ".join("; ".join(o.missing) for o in outcomes)
            return Outcome(False, (f"any of: {inner}",), frozenset())
        case NOf(n=n, rules=children):
            outcomes = [_evaluate(child, components, award_ms) for child in children]
            met = [o for o in outcomes if o.met]
            if len(met) >= n:
                return Outcome(True, (), _union(met))
            inner = " | ".join("; ".join(o.missing) for o in outcomes if not o.met)
            return Outcome(False, (f"{n} of {len(children)} needed, {len(met)} met; missing: {inner}",), _union(met))
    raise AssertionError(f"not a rule: {rule!r}")


def credit_amount(rule: Credits, component: Component, award_ms: int) -> int:
    """What `component` contributes to the credits node `rule`: its largest matching facet, or 0."""
    if not rule.admits(component):
        return 0
    if rule.within_days is not None and component.issued_ms < award_ms - rule.within_days * DAY_MS:
        return 0
    best = 0
    for facet in component.facets:
        if facet.credits is None or facet.credits.system != rule.system:
            continue
        if rule.min_level is not None and (
            facet.level is None
            or facet.level.framework != rule.min_level.framework
            or facet.level.value < rule.min_level.value
        ):
            continue
        if rule.field is not None and facet.field != rule.field:
            continue
        best = max(best, facet.credits.amount)
    return best


def _union(outcomes: Sequence[Outcome]) -> frozenset[int]:
    return frozenset().union(*(o.counted for o in outcomes))


def walk(rule: Rule) -> list[Rule]:
    """Every node of the tree, in pre-order."""
    out: list[Rule] = [rule]
    if isinstance(rule, All | AnyOf | NOf):
        for child in rule.rules:
            out.extend(walk(child))
    return out
