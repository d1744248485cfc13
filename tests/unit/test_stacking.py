"""The stacking-rule language: validation at publish, and evaluation against a plain model of what a rule means."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credledger.ledger.stacking import (
    DAY_MS,
    MAX_RULE_DEPTH,
    MAX_RULE_NODES,
    AchievementRef,
    All,
    AnyOf,
    Component,
    Credits,
    CreditValue,
    Facet,
    Level,
    Needs,
    NOf,
    Rule,
    RuleError,
    evaluate,
    format_credits,
    parse_rule,
)

OWNER = "uni-b.example"
MEMBERS = ("uni-a.example", "uni-b.example")
IDS = ("x", "y", "z")
SYSTEMS = ("ECTS", "CATS")


def test_a_rule_in_json_becomes_a_tree_with_the_owner_as_default_member() -> None:
    rule = parse_rule(
        {
            "n_of": {
                "n": 1,
                "of": [
                    {"achievement": {"id": "x"}},
                    {"credits": {"min": Decimal("7.5"), "system": "ECTS", "level": {"framework": "EQF", "min": 6}}},
                ],
            }
        },
        OWNER,
    )
    assert rule == NOf(1, (Needs(AchievementRef(OWNER, "x")), Credits(750, "ECTS", Level("EQF", 6), None, None, None)))


def test_a_credits_node_may_count_recognised_issuers_besides_named_ones() -> None:
    rule = parse_rule({"credits": {"min": 30, "system": "ECTS", "issuers": [OWNER], "recognised_issuers": True}}, OWNER)
    assert rule == Credits(3000, "ECTS", None, None, (OWNER,), None, recognised_issuers=True)
    only_recognised = parse_rule({"credits": {"min": 30, "system": "ECTS", "recognised_issuers": True}}, OWNER)
    assert only_recognised == Credits(3000, "ECTS", None, None, None, None, recognised_issuers=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"credits": {"min": 5, "system": "ECTS", "recognised_issuers": False}},
            r"stackingRule.credits.recognised_issuers: expected true",
        ),
        (
            {"credits": {"min": 5, "system": "ECTS", "recognised_issuers": "yes"}},
            r"stackingRule.credits.recognised_issuers: expected true",
        ),
        ({"every": []}, r"stackingRule: unknown rule kind 'every'"),
        ({"all": []}, r"stackingRule.all: expected a list of 1..32 rules"),
        (
            {"n_of": {"n": 3, "of": [{"achievement": {"id": "x"}}]}},
            r"stackingRule.n_of.n: expected an integer in \[1, 1\]",
        ),
        ({"credits": {"min": 0, "system": "ECTS"}}, r"stackingRule.credits.min: a credit minimum must be more than 0"),
        ({"credits": {"min": 5}}, r"stackingRule.credits: missing system"),
        ({"credits": {"min": 5, "system": "ECTS", "grade": 1}}, r"stackingRule.credits: unknown field grade"),
        (
            {"achievement": {"id": "x", "member": "Not A Member"}},
            r"stackingRule.achievement.member: expected a member id",
        ),
        ({"all": [{"any": [{"achievement": {"id": 5}}]}]}, r"stackingRule.all\[0\].any\[0\].achievement.id"),
    ],
)
def test_a_malformed_rule_is_refused_with_its_path(data: Any, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rule(data, OWNER)


def test_a_rule_nested_too_deep_is_refused() -> None:
    data: Any = {"achievement": {"id": "x"}}
    for _ in range(MAX_RULE_DEPTH):
        data = {"all": [data]}
    with pytest.raises(RuleError, match=f"nest at most {MAX_RULE_DEPTH} deep"):
        parse_rule(data, OWNER)


def test_a_rule_with_too_many_nodes_is_refused() -> None:
    leaf = {"achievement": {"id": "x"}}
    data = {"all": [{"all": [leaf] * 32}, {"all": [leaf] * 32}]}
    with pytest.raises(RuleError, match=f"at most {MAX_RULE_NODES} nodes"):
        parse_rule(data, OWNER)


def test_credits_are_written_as_people_write_them() -> None:
    assert [format_credits(n) for n in (6000, 750, 1225, 1)] == ["60", "7.5", "12.25", "0.01"]


def _component(position: int, ref: str, credits: int, *, level: int = 6, issued_ms: int = 0) -> Component:
    facet = Facet(AchievementRef(OWNER, ref), CreditValue("ECTS", credits), Level("EQF", level), "Maths")
    return Component(position, OWNER, issued_ms, (facet,))


def test_credits_count_only_components_that_pass_every_filter() -> None:
    rule = Credits(3000, "ECTS", Level("EQF", 6), "Maths", (OWNER,), 365)
    award_ms = 1000 * DAY_MS
    components = [
        _component(0, "a", 1500, issued_ms=award_ms - 10 * DAY_MS),
        _component(1, "b", 1500, level=5, issued_ms=award_ms),  # below the level
        _component(2, "c", 1000, issued_ms=award_ms - 400 * DAY_MS),  # too old
    ]
    outcome = evaluate(rule, components, award_ms)
    assert not outcome.met
    assert outcome.missing == (
        f"credits: 15 of 30 ECTS at level ≥ 6 (EQF) in Maths from {OWNER} issued within 365 days",
    )
    assert outcome.counted == {0}


def test_recognised_issuers_admit_components_the_owner_recognises_and_named_issuers_only() -> None:
    facet = Facet(AchievementRef(MEMBERS[0], "a"), CreditValue("ECTS", 1000), None, None)
    recognised = Component(0, MEMBERS[0], 0, (facet,), recognised=True)
    stranger = Component(1, "uni-c.example", 0, (facet,))
    own = Component(2, OWNER, 0, (facet,))
    rule = Credits(3000, "ECTS", None, None, (OWNER,), None, recognised_issuers=True)
    outcome = evaluate(rule, [recognised, stranger, own], 0)
    assert outcome.counted == {0, 2}
    assert outcome.missing == (f"credits: 20 of 30 ECTS from {OWNER} or members it recognises",)
    only = Credits(1000, "ECTS", None, None, None, None, recognised_issuers=True)
    assert evaluate(only, [stranger, own], 0).missing == ("credits: 0 of 10 ECTS from members it recognises",)
    assert evaluate(only, [stranger, recognised], 0).counted == {0}  # the recognised component, wherever listed
    two = Credits(1000, "ECTS", None, None, ("a.example", "c.example"), None, recognised_issuers=True)
    assert evaluate(two, [], 0).missing == ("credits: 0 of 10 ECTS from a.example, c.example or members it recognises",)


def test_n_of_says_how_many_were_met_and_what_the_others_lack() -> None:
    rule = NOf(
        2, (Needs(AchievementRef(OWNER, "a")), Needs(AchievementRef(OWNER, "b")), Needs(AchievementRef(OWNER, "c")))
    )
    outcome = evaluate(rule, [_component(0, "a", 100)], 0)
    assert outcome.missing == (
        f"2 of 3 needed, 1 met; missing: achievement {OWNER}/b: no component awards it | "
        f"achievement {OWNER}/c: no component awards it",
    )


# --- against a plain model ----------------------------------------------------------------------------------------

refs = st.builds(AchievementRef, st.sampled_from(MEMBERS), st.sampled_from(IDS))
levels = st.builds(Level, st.just("EQF"), st.integers(4, 8))
credit_values = st.builds(CreditValue, st.sampled_from(SYSTEMS), st.integers(0, 3000))
facets = st.builds(
    Facet, refs, st.none() | credit_values, st.none() | levels, st.none() | st.sampled_from(("Maths", "Law"))
)
leaves: st.SearchStrategy[Rule] = st.builds(Needs, refs) | st.builds(
    Credits,
    st.integers(1, 6000),
    st.sampled_from(SYSTEMS),
    st.none() | levels,
    st.none() | st.sampled_from(("Maths", "Law")),
    st.none() | st.just((MEMBERS[0],)),
    st.none() | st.integers(1, 30),
    st.booleans(),
)


def _branches(children: st.SearchStrategy[Rule]) -> st.SearchStrategy[Rule]:
    lists = st.lists(children, min_size=1, max_size=4).map(tuple)
    return (
        st.builds(All, lists)
        | st.builds(AnyOf, lists)
        | lists.flatmap(lambda kids: st.builds(NOf, st.integers(1, len(kids)), st.just(kids)))
    )


rules = st.recursive(leaves, _branches, max_leaves=12)


@st.composite
def component_lists(draw: st.DrawFn) -> list[Component]:
    count = draw(st.integers(0, 6))
    return [
        Component(
            i,
            draw(st.sampled_from(MEMBERS)),
            draw(st.integers(0, 40)) * DAY_MS,
            tuple(draw(st.lists(facets, max_size=3))),
            draw(st.booleans()),
        )
        for i in range(count)
    ]


AWARD_MS = 40 * DAY_MS


def model(rule: Rule, components: list[Component]) -> bool:
    """What a rule means, written as plainly as possible."""
    if isinstance(rule, Needs):
        return any(f.achievement == rule.achievement for c in components for f in c.facets)
    if isinstance(rule, Credits):
        total = 0
        for c in components:
            filtered = rule.issuers is not None or rule.recognised_issuers
            named = rule.issuers is not None and c.issuer in rule.issuers
            if filtered and not named and not (rule.recognised_issuers and c.recognised):
                continue
            if rule.within_days is not None and AWARD_MS - c.issued_ms > rule.within_days * DAY_MS:
                continue
            amounts = [0]
            for f in c.facets:
                ok = f.credits is not None and f.credits.system == rule.system
                ok = ok and (rule.field is None or f.field == rule.field)
                if rule.min_level is not None:
                    ok = ok and f.level is not None and f.level.value >= rule.min_level.value
                if ok and f.credits is not None:
                    amounts.append(f.credits.amount)
            total += max(amounts)
        return total >= rule.minimum
    met = [model(child, components) for child in rule.rules]
    if isinstance(rule, All):
        return all(met)
    if isinstance(rule, AnyOf):
        return any(met)
    return sum(met) >= rule.n


@settings(max_examples=300, deadline=None)
@given(rules, component_lists())
def test_evaluation_agrees_with_the_plain_model(rule: Rule, components: list[Component]) -> None:
    outcome = evaluate(rule, components, AWARD_MS)
    assert outcome.met == model(rule, components)
    assert outcome.met == (outcome.missing == ())
    assert outcome.counted <= {c.position for c in components}


@settings(max_examples=200, deadline=None)
@given(rules, component_lists(), st.randoms(use_true_random=False))
def test_evaluation_ignores_component_order_and_never_loses_by_adding_one(
    rule: Rule, components: list[Component], rng: Any
) -> None:
    outcome = evaluate(rule, components, AWARD_MS)
    shuffled = list(components)
    rng.shuffle(shuffled)
    assert evaluate(rule, shuffled, AWARD_MS) == outcome
    if outcome.met and components:
        extra = Component(len(components), MEMBERS[0], AWARD_MS, components[0].facets)
        assert evaluate(rule, [*components, extra], AWARD_MS).met
