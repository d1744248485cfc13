"""Recognition between members: equivalences, fixed credit worth and rational conversion rates counted by stacking
rules, and withdrawal that spares the awards already made."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credledger.ledger.catalogue import get_award, get_recognition, recognition_ids
from credledger.ledger.errors import InvalidEvent
from credledger.ledger.events import RecognitionPublish, RecognitionWithdraw, Revoke
from credledger.ledger.recognition import Rate, Recognition, parse_recognition, recognised_facets
from credledger.ledger.stacking import AchievementRef, CreditValue, Facet, Level, RuleError
from tests.catalogue import award, canonical, definition, publish, recognise
from tests.factories import T0, Ledger, Network, digest, make_network, signed

A, B = "m0.test", "m1.test"


@pytest.fixture
def net() -> Network:
    return make_network(4)


@pytest.fixture
def ledger(net: Network) -> Ledger:
    led = Ledger(net)
    led.block(
        publish(net[A], definition("stats", credits=5, level=6, field="Maths")),
        publish(net[A], definition("intro", credits=10, level=5, field="Maths")),
        publish(net[B], definition("b-intro", credits=12, system="UCP", level=5)),
    )
    led.block(award(net[A], digest("s"), "stats"), award(net[A], digest("i"), "intro"))
    return led


def refuse(ledger: Ledger, event: Any, rule: str) -> str:
    before = dict(ledger.state)
    with pytest.raises(InvalidEvent) as info:
        ledger.block(event)
    assert info.value.rule == rule, info.value
    assert ledger.state == before
    return info.value.detail


def _b_rule(ledger: Ledger, net: Network, rule: dict[str, Any], name: str = "b-cert") -> None:
    ledger.block(publish(net[B], definition(name, kind="Certificate", rule=rule)))


def test_an_equivalent_achievement_of_another_member_meets_a_rule(ledger: Ledger, net: Network) -> None:
    _b_rule(ledger, net, {"achievement": {"id": "b-intro"}})
    event = award(net[B], digest("b1"), "b-cert", components=(digest("i"),))
    assert "b-intro: no component awards it" in refuse(ledger, event, "award-rule-unmet")
    ledger.block(
        recognise(net[B], {"id": "r1", "from": {"member": A, "achievement": "intro"}, "as": {"achievement": "b-intro"}})
    )
    ledger.block(event)
    assert get_award(ledger.state, digest("b1")) is not None


def test_a_conversion_rate_turns_credits_of_one_system_into_anothers(ledger: Ledger, net: Network) -> None:
    _b_rule(ledger, net, {"credits": {"min": 12, "system": "UCP"}})
    rate = {"fromSystem": "ECTS", "system": "UCP", "numerator": 12, "denominator": 5}
    ledger.block(
        recognise(
            net[B], {"id": "r", "from": {"member": A, "level": {"framework": "EQF", "min": 6}}, "as": {"rate": rate}}
        )
    )
    # stats: 5 ECTS at level 6 -> 12 UCP; intro is level 5, so the recognition does not cover it.
    ledger.block(award(net[B], digest("b1"), "b-cert", components=(digest("s"),)))
    detail = refuse(ledger, award(net[B], digest("b2"), "b-cert", components=(digest("i"),)), "award-rule-unmet")
    assert "credits: 0 of 12 UCP" in detail


def test_a_fixed_worth_counts_in_the_recognising_members_system(ledger: Ledger, net: Network) -> None:
    _b_rule(ledger, net, {"credits": {"min": 20, "system": "UCP", "field": "Maths"}})
    ledger.block(
        recognise(
            net[B],
            {"id": "r-s", "from": {"member": A, "achievement": "stats"}, "as": {"credits": 12.5, "system": "UCP"}},
        ),
        recognise(
            net[B],
            {"id": "r-i", "from": {"member": A, "achievement": "intro"}, "as": {"credits": 7.5, "system": "UCP"}},
        ),
    )
    ledger.block(award(net[B], digest("b1"), "b-cert", components=(digest("s"), digest("i"))))


def test_recognised_issuers_count_only_components_the_owner_recognises(ledger: Ledger, net: Network) -> None:
    _b_rule(ledger, net, {"credits": {"min": 10, "system": "ECTS", "recognised_issuers": True}})
    intro_award = award(net[B], digest("b1"), "b-cert", components=(digest("i"),))
    assert "credits: 0 of 10 ECTS from members it recognises" in refuse(ledger, intro_award, "award-rule-unmet")
    # Recognising A's stats does not make A's intro count: the recognition must cover the component itself.
    rate = {"fromSystem": "ECTS", "system": "UCP", "numerator": 1, "denominator": 1}
    ledger.block(recognise(net[B], {"id": "r-s", "from": {"member": A, "achievement": "stats"}, "as": {"rate": rate}}))
    refuse(ledger, intro_award, "award-rule-unmet")
    ledger.block(recognise(net[B], {"id": "r-i", "from": {"member": A, "achievement": "intro"}, "as": {"rate": rate}}))
    ledger.block(intro_award)  # intro's own 10 ECTS count, since B recognises it
    assert get_award(ledger.state, digest("b1")) is not None
    ledger.block(signed(RecognitionWithdraw(B, "r-i"), net[B].issuer))
    again = award(net[B], digest("b2"), "b-cert", components=(digest("i"),))
    assert "credits: 0 of 10 ECTS" in refuse(ledger, again, "award-rule-unmet")


def test_named_and_recognised_issuers_together_count_both(ledger: Ledger, net: Network) -> None:
    ledger.block(publish(net[B], definition("b-own", credits=6, level=6)))
    ledger.block(award(net[B], digest("o"), "b-own"))
    rule = {"credits": {"min": 11, "system": "ECTS", "issuers": [B], "recognised_issuers": True}}
    _b_rule(ledger, net, rule)
    both = award(net[B], digest("b1"), "b-cert", components=(digest("o"), digest("s")))
    detail = refuse(ledger, both, "award-rule-unmet")
    assert f"credits: 6 of 11 ECTS from {B} or members it recognises" in detail
    ledger.block(
        recognise(
            net[B],
            {
                "id": "r",
                "from": {"member": A, "level": {"framework": "EQF", "min": 6}},
                "as": {"credits": 1, "system": "UCP"},
            },
        )
    )
    ledger.block(both)  # 6 of B's own + A's stats (5 ECTS, covered by the level-6 recognition)


def test_withdrawing_a_recognition_spares_earlier_awards_and_stops_later_ones(ledger: Ledger, net: Network) -> None:
    _b_rule(ledger, net, {"achievement": {"id": "b-intro"}})
    ledger.block(
        recognise(net[B], {"id": "r1", "from": {"member": A, "achievement": "intro"}, "as": {"achievement": "b-intro"}})
    )
    ledger.block(award(net[B], digest("b1"), "b-cert", components=(digest("i"),)))
    ledger.block(signed(RecognitionWithdraw(B, "r1"), net[B].issuer))
    assert recognition_ids(ledger.state, B) == ()
    record = get_recognition(ledger.state, B, "r1")
    assert record is not None and record.withdrawn_height == ledger.height
    refuse(ledger, award(net[B], digest("b2"), "b-cert", components=(digest("i"),)), "award-rule-unmet")
    assert get_award(ledger.state, digest("b1")) is not None
    refuse(ledger, signed(RecognitionWithdraw(B, "r1"), net[B].issuer, time_ms=T0 + 1), "recognition-withdrawn")


def test_an_award_is_refused_once_a_recognised_component_is_revoked(ledger: Ledger, net: Network) -> None:
    _b_rule(ledger, net, {"achievement": {"id": "b-intro"}})
    ledger.block(
        recognise(net[B], {"id": "r1", "from": {"member": A, "achievement": "intro"}, "as": {"achievement": "b-intro"}})
    )
    ledger.block(award(net[B], digest("b1"), "b-cert", components=(digest("i"),)))
    ledger.block(signed(Revoke(digest("i"), 4), net[A].issuer))
    assert "component 1 (" in refuse(
        ledger, award(net[B], digest("b2"), "b-cert", components=(digest("i"),)), "component-revoked"
    )


def test_a_recognition_must_name_published_achievements_and_a_fresh_id(ledger: Ledger, net: Network) -> None:
    refuse(
        ledger,
        recognise(net[B], {"id": "r", "from": {"member": A, "achievement": "nope"}, "as": {"achievement": "b-intro"}}),
        "unknown-achievement",
    )
    refuse(
        ledger,
        recognise(net[B], {"id": "r", "from": {"member": A, "achievement": "stats"}, "as": {"achievement": "nope"}}),
        "unknown-achievement",
    )
    good = {"id": "r", "from": {"member": A, "achievement": "stats"}, "as": {"achievement": "b-intro"}}
    ledger.block(recognise(net[B], good))
    refuse(ledger, recognise(net[B], {**good, "as": {"credits": 1, "system": "UCP"}}), "recognition-exists")
    refuse(ledger, signed(RecognitionPublish(B, canonical({**good, "id": "q"})), net[A].issuer), "not-the-member")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"id": "r", "from": {"member": B}, "as": {"achievement": "x"}}, "not its own"),
        ({"id": "r", "from": {"member": A}, "as": {}}, r"recognition.as: expected one of"),
        ({"id": "r", "from": {"member": A}, "as": {"credits": 1}}, r"recognition.as: missing system"),
        (
            {
                "id": "r",
                "from": {"member": A},
                "as": {"rate": {"fromSystem": "E", "system": "U", "numerator": 0, "denominator": 1}},
            },
            r"numerator",
        ),
        ({"id": "r", "from": {"member": A, "student": "x"}, "as": {"achievement": "x"}}, "personal data"),
    ],
)
def test_a_malformed_recognition_is_refused_with_the_field(value: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_recognition(canonical(value), B)


# --- conversions against a plain model ------------------------------------------------------------------------------

_levels = st.none() | st.builds(Level, st.just("EQF"), st.integers(3, 8))
_facts = st.builds(
    Facet,
    st.builds(AchievementRef, st.sampled_from((A, "m2.test")), st.sampled_from(("x", "y"))),
    st.none() | st.builds(CreditValue, st.sampled_from(("ECTS", "CATS")), st.integers(0, 100_000)),
    _levels,
    st.none() | st.sampled_from(("Maths", "Law")),
)
_recognitions = st.builds(
    Recognition,
    st.just("r"),
    st.sampled_from((A, "m2.test")),
    st.none() | st.sampled_from(("x", "y")),
    _levels,
    st.none() | st.sampled_from(("Maths", "Law")),
    st.none(),
    st.none(),
    st.builds(Rate, st.sampled_from(("ECTS", "CATS")), st.just("UCP"), st.integers(1, 1000), st.integers(1, 1000)),
)


@settings(max_examples=300, deadline=None)
@given(_facts, _recognitions)
def test_a_rate_converts_exactly_the_covered_credits_rounding_down(facts: Facet, recognition: Recognition) -> None:
    out = recognised_facets(facts, [recognition], lambda _: None)
    rate = recognition.rate
    assert rate is not None
    covered = (
        recognition.source_member == facts.achievement.member
        and recognition.source_achievement in (None, facts.achievement.id)
        and (
            recognition.source_level is None
            or (facts.level is not None and facts.level.value >= recognition.source_level.value)
        )
        and recognition.source_field in (None, facts.field)
        and facts.credits is not None
        and facts.credits.system == rate.from_system
    )
    if not covered:
        assert out == ()
        return
    assert facts.credits is not None
    (facet,) = out
    assert facet.credits is not None and facet.credits.system == "UCP"
    # the largest amount whose value does not exceed the exact conversion
    assert facet.credits.amount * rate.denominator <= facts.credits.amount * rate.numerator
    assert (facet.credits.amount + 1) * rate.denominator > facts.credits.amount * rate.numerator
    assert (facet.achievement, facet.level, facet.field) == (facts.achievement, facts.level, facts.field)
