"""The catalogue on the ledger: publishing, versioning and retiring achievements, and awards checked against
their stacking rules at the issue's height."""

from __future__ import annotations

import msgpack
import pytest

from credledger.ledger import codec
from credledger.ledger.achievement import parse_definition
from credledger.ledger.catalogue import achievement_ids, get_achievement, get_award
from credledger.ledger.errors import DecodeError, InvalidEvent
from credledger.ledger.eventjson import event_from_json, event_to_json
from credledger.ledger.events import AchievementPublish, AchievementRetire, Event, Issue, Revoke, Suspend
from credledger.ledger.rules import RULES
from credledger.ledger.stacking import Credits, RuleError
from tests.catalogue import award, canonical, definition, publish
from tests.factories import Ledger, Network, digest, issue, make_network, signed

A, B = "m0.test", "m1.test"


@pytest.fixture
def net() -> Network:
    return make_network(4)


@pytest.fixture
def ledger(net: Network) -> Ledger:
    return Ledger(net)


def refuse(ledger: Ledger, event: Event, rule: str) -> str:
    before = dict(ledger.state)
    with pytest.raises(InvalidEvent) as info:
        ledger.block(event)
    assert info.value.rule == rule, info.value
    assert rule in RULES
    assert ledger.state == before
    return info.value.detail


def test_publishing_again_makes_a_new_version_and_keeps_the_old_one(ledger: Ledger, net: Network) -> None:
    first = definition("stats", credits=5, level=6)
    second = definition("stats", credits=6, level=6)
    ledger.block(publish(net[A], first))
    ledger.block(publish(net[A], second))
    current = get_achievement(ledger.state, A, "stats")
    old = get_achievement(ledger.state, A, "stats", 1)
    assert current is not None and old is not None
    assert current.version == 2
    assert current.definition == canonical(second)
    assert old.definition == canonical(first)
    assert old.published_height == 1
    assert achievement_ids(ledger.state, A) == ("stats",)


def test_only_the_member_publishes_into_its_own_catalogue(ledger: Ledger, net: Network) -> None:
    event = signed(AchievementPublish(A, canonical(definition("x"))), net[B].issuer)
    refuse(ledger, event, "not-the-member")


def test_a_definition_naming_a_person_cannot_even_be_decoded() -> None:
    bad = canonical(definition("x", recipient={"email": "ada@example.org"}))
    with pytest.raises(ValueError, match=r"definition.recipient: personal data"):
        AchievementPublish(A, bad)


def test_a_definition_must_be_canonical_json() -> None:
    with pytest.raises(RuleError, match="canonical"):
        parse_definition(b'{ "id": "x" }', A)


def test_a_definition_is_refused_with_the_field_that_is_wrong() -> None:
    with pytest.raises(RuleError, match=r"definition.creditsAvailable: credits must be .* at most two decimals"):
        parse_definition(canonical(definition("x", credits=1.125)), A)
    with pytest.raises(RuleError, match=r"definition.achievementType"):
        parse_definition(canonical(definition("x", kind="Nonsense")), A)
    with pytest.raises(RuleError, match=r"definition: missing criteria"):
        parse_definition(canonical({"id": "x", "name": "X", "achievementType": "Badge"}), A)


def test_a_decoded_publish_with_a_bad_definition_names_the_field() -> None:
    good = signed(AchievementPublish(A, canonical(definition("x"))), make_network(1)["m0.test"].issuer)
    bad_bytes = good.encode().replace(b"MicroCredential", b"MicroCredentiaL")
    with pytest.raises(DecodeError, match=r"achievementType"):
        codec.decode(Event, bad_bytes)


def test_a_publish_whose_rule_misuses_recognised_issuers_cannot_be_decoded() -> None:
    rule = {"credits": {"min": 30, "system": "ECTS", "recognised_issuers": "yes"}}
    with pytest.raises(ValueError, match=r"stackingRule.credits.recognised_issuers: expected true"):
        AchievementPublish(A, canonical(definition("x", rule=rule)))
    fine = {"credits": {"min": 30, "system": "ECTS", "issuers": [A], "recognised_issuers": True}}
    parsed = parse_definition(canonical(definition("x", rule=fine)), A)
    assert parsed.rule is not None and parsed.rule == Credits(3000, "ECTS", None, None, (A,), None, True)


def test_definition_facts_are_read_as_integers_in_hundredths() -> None:
    parsed = parse_definition(canonical(definition("x", credits=7.5, level=6, field="Maths")), A)
    assert parsed.credits is not None and parsed.credits.amount == 750
    assert parsed.level is not None and parsed.level.value == 6
    assert parsed.field == "Maths"


def test_a_retired_achievement_takes_no_award_and_no_new_version(ledger: Ledger, net: Network) -> None:
    ledger.block(publish(net[A], definition("x")))
    ledger.block(award(net[A], digest("c1"), "x"))
    ledger.block(signed(AchievementRetire(A, "x"), net[A].issuer))
    assert "retired" in refuse(ledger, award(net[A], digest("c2"), "x"), "achievement-retired")
    refuse(ledger, publish(net[A], definition("x", credits=1)), "achievement-retired")
    assert get_award(ledger.state, digest("c1")) is not None


def test_an_award_of_an_unknown_version_is_refused(ledger: Ledger, net: Network) -> None:
    ledger.block(publish(net[A], definition("x")))
    refuse(ledger, award(net[A], digest("c"), "x", 2), "unknown-achievement")
    refuse(ledger, award(net[A], digest("c"), "y"), "unknown-achievement")


def test_a_rule_may_only_name_published_achievements(ledger: Ledger, net: Network) -> None:
    rule = {"achievement": {"member": B, "id": "nope"}}
    assert "never published" in refuse(
        ledger, publish(net[A], definition("cert", rule=rule)), "rule-unknown-achievement"
    )


# --- awards against stacking rules --------------------------------------------------------------------------------


def _catalogue(ledger: Ledger, net: Network) -> None:
    ledger.block(
        publish(net[A], definition("intro", credits=20, level=5)),
        publish(net[A], definition("stats", credits=20, level=6)),
        publish(net[A], definition("ml", credits=25, level=6)),
    )
    rule = {
        "all": [
            {"achievement": {"id": "intro"}},
            {"credits": {"min": 40, "system": "ECTS", "level": {"framework": "EQF", "min": 6}}},
        ]
    }
    ledger.block(publish(net[A], definition("cert", kind="Certificate", rule=rule)))


def test_an_award_whose_components_meet_the_rule_is_accepted(ledger: Ledger, net: Network) -> None:
    _catalogue(ledger, net)
    ledger.block(
        award(net[A], digest("i"), "intro"), award(net[A], digest("s"), "stats"), award(net[A], digest("m"), "ml")
    )
    ledger.block(award(net[A], digest("cert"), "cert", components=(digest("i"), digest("s"), digest("m"))))
    recorded = get_award(ledger.state, digest("cert"))
    assert recorded is not None and (recorded.achievement, recorded.version) == ("cert", 1)


def test_a_refusal_says_how_many_credits_are_missing(ledger: Ledger, net: Network) -> None:
    _catalogue(ledger, net)
    ledger.block(award(net[A], digest("i"), "intro"), award(net[A], digest("s"), "stats"))
    detail = refuse(
        ledger, award(net[A], digest("cert"), "cert", components=(digest("i"), digest("s"))), "award-rule-unmet"
    )
    assert "credits: 20 of 40 ECTS at level ≥ 6 (EQF)" in detail


def test_a_refusal_names_the_missing_achievement(ledger: Ledger, net: Network) -> None:
    _catalogue(ledger, net)
    ledger.block(award(net[A], digest("s"), "stats"), award(net[A], digest("m"), "ml"))
    detail = refuse(
        ledger, award(net[A], digest("cert"), "cert", components=(digest("s"), digest("m"))), "award-rule-unmet"
    )
    assert "achievement m0.test/intro: no component awards it" in detail


def test_a_revoked_component_is_named_by_its_position(ledger: Ledger, net: Network) -> None:
    _catalogue(ledger, net)
    ledger.block(
        award(net[A], digest("i"), "intro"), award(net[A], digest("s"), "stats"), award(net[A], digest("m"), "ml")
    )
    ledger.block(signed(Revoke(digest("m"), 4), net[A].issuer))
    detail = refuse(
        ledger,
        award(net[A], digest("cert"), "cert", components=(digest("i"), digest("s"), digest("m"))),
        "component-revoked",
    )
    assert "): component 3 (" in detail
    assert detail.endswith("revoked")


def test_a_suspended_or_expired_component_does_not_count(ledger: Ledger, net: Network) -> None:
    _catalogue(ledger, net)
    soon = ledger.next_block_time + 1500
    ledger.block(
        award(net[A], digest("i"), "intro"),
        award(net[A], digest("s"), "stats"),
        award(net[A], digest("m"), "ml", expires_ms=soon),
    )
    ledger.block(signed(Suspend(digest("s"), 6), net[A].issuer))
    components = (digest("i"), digest("s"), digest("m"))
    refuse(ledger, award(net[A], digest("cert"), "cert", components=components), "component-suspended")
    later = soon + 10
    ledger.height += 2  # the next block lands after the expiry
    event = award(net[A], digest("cert"), "cert", components=(digest("i"), digest("m")), time_ms=later)
    refuse(ledger, event, "component-expired")


def test_a_component_the_rule_does_not_count_is_refused(ledger: Ledger, net: Network) -> None:
    _catalogue(ledger, net)
    ledger.block(
        award(net[A], digest("i"), "intro"),
        award(net[A], digest("s"), "stats"),
        award(net[A], digest("m"), "ml"),
        issue(net[A], digest("plain")),
    )
    components = (digest("i"), digest("s"), digest("m"), digest("plain"))
    detail = refuse(ledger, award(net[A], digest("cert"), "cert", components=components), "component-not-counted")
    assert "): component 4: awards no published achievement" in detail


def test_the_rule_of_the_version_named_is_the_one_checked(ledger: Ledger, net: Network) -> None:
    _catalogue(ledger, net)
    ledger.block(publish(net[A], definition("cert", kind="Certificate", rule={"achievement": {"id": "stats"}})))
    ledger.block(award(net[A], digest("s"), "stats"))
    ledger.block(award(net[A], digest("v2"), "cert", 2, components=(digest("s"),)))
    refuse(ledger, award(net[A], digest("v1"), "cert", 1, components=(digest("s"),)), "award-rule-unmet")


# --- the issue's achievement fields in the canonical and JSON forms -------------------------------------------------


def test_an_issue_naming_no_achievement_keeps_its_four_field_encoding() -> None:
    plain = Issue(digest("x"), A, None, ())
    assert msgpack.unpackb(codec.encode(plain)) == [digest("x"), A, None, []]
    named = Issue(digest("x"), A, None, (), achievement="cert", achievement_version=2)
    assert codec.decode(Issue, codec.encode(named)) == named


def test_a_trailing_null_for_an_absent_achievement_is_not_canonical() -> None:
    # After the four fields come the status-list entry (two fields) and the achievement (two fields).
    data = msgpack.packb([digest("x"), A, None, [], None, None, None, None])
    with pytest.raises(DecodeError, match="achievement_version is null: an absent optional field is left out"):
        codec.decode(Issue, data)
    with pytest.raises(DecodeError, match="achievement and achievement_version go together"):
        codec.decode(Issue, msgpack.packb([digest("x"), A, None, [], None, None, "cert"]))


def test_the_json_form_of_an_award_round_trips(net: Network) -> None:
    event = award(net[A], digest("c"), "cert", 3)
    form = event_to_json(event)
    assert form["payload"]["achievement"] == "cert"
    assert form["payload"]["achievement_version"] == 3
    assert event_from_json(form) == event
    plain = event_to_json(issue(net[A], digest("d")))
    assert "achievement" not in plain["payload"]
