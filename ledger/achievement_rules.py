"""The rules for the catalogue: achievement.publish and achievement.retire, and the award check of an issue.

A member publishes its own achievements with one of its issuer keys; each publish of an id is its next version,
and every version stays in the state map. A retired achievement takes no new version and no new award. An issue
that names an achievement awards a published version of the issuer's own; when that version carries a stacking
rule, the issue must list components that meet it, each issued, not revoked, suspended or expired at the issue
time, and each counted by the rule (DESIGN §14). The rule is evaluated by `ledger.stacking`, over the facts the
state holds at the issue's height.
"""

from __future__ import annotations

import dataclasses
import functools

from credledger.ledger.achievement import Definition, parse_definition
from credledger.ledger.authority import Context, require_issuer
from credledger.ledger.catalogue import (
    MAX_ACHIEVEMENTS_PER_MEMBER,
    AchievementRecord,
    AwardRecord,
    Directory,
    achievement_ids,
    achievement_key,
    achievement_version_key,
    award_key,
    get_achievement,
    get_award,
)
from credledger.ledger.errors import InvalidEvent, Unauthorized
from credledger.ledger.events import AchievementPublish, AchievementRetire, Issue
from credledger.ledger.stacking import AchievementRef, Component, Facet, Needs, evaluate, walk
from credledger.ledger.state import StateView, Status, get_credential


@functools.lru_cache(maxsize=1024)
def definition_of(data: bytes, owner: str) -> Definition:
    """A published definition, parsed once per process (it was validated when its event was decoded)."""
    return parse_definition(data, owner)


def apply_achievement_publish(ctx: Context, payload: AchievementPublish) -> None:
    _require_own(ctx, payload.member, "an achievement.publish")
    definition = definition_of(payload.definition, payload.member)
    current = get_achievement(ctx.view, payload.member, definition.id)
    if current is not None and current.retired_height is not None:
        raise InvalidEvent("achievement-retired", f"achievement {payload.member}/{definition.id} is retired")
    ids = achievement_ids(ctx.view, payload.member)
    if current is None and len(ids) >= MAX_ACHIEVEMENTS_PER_MEMBER:
        raise InvalidEvent("too-many-achievements", f"{payload.member} has {len(ids)} achievements, the limit")
    if definition.rule is not None:
        for node in walk(definition.rule):
            if not isinstance(node, Needs):
                continue
            ref = node.achievement
            if ref == AchievementRef(payload.member, definition.id):
                raise InvalidEvent("rule-names-itself", f"the stacking rule of {ref} names {ref} itself")
            if get_achievement(ctx.view, ref.member, ref.id) is None:
                raise InvalidEvent("rule-unknown-achievement", f"the stacking rule names {ref}, never published")
    record = AchievementRecord(
        member=payload.member,
        id=definition.id,
        version=1 if current is None else current.version + 1,
        definition=payload.definition,
        published_index=ctx.index,
        published_height=ctx.height,
        published_ms=ctx.event.time_ms,
        retired_height=None,
    )
    ctx.view.put(achievement_key(record.member, record.id), record)
    ctx.view.put(achievement_version_key(record.member, record.id, record.version), record)
    if current is None:
        ctx.view.put(achievement_key(payload.member, ""), Directory(ids).with_id(record.id))


def apply_achievement_retire(ctx: Context, payload: AchievementRetire) -> None:
    _require_own(ctx, payload.member, "an achievement.retire")
    current = get_achievement(ctx.view, payload.member, payload.achievement)
    if current is None:
        raise InvalidEvent(
            "unknown-achievement", f"achievement {payload.member}/{payload.achievement} was never published"
        )
    if current.retired_height is not None:
        raise InvalidEvent(
            "achievement-retired", f"achievement {payload.member}/{payload.achievement} is retired already"
        )
    ctx.view.put(achievement_key(current.member, current.id), _retired(current, ctx.height))


def check_award(ctx: Context, payload: Issue) -> None:
    """Check the achievement an issue names, and its stacking rule against the components; record the award."""
    assert payload.achievement is not None and payload.achievement_version is not None
    name = f"{payload.issuer}/{payload.achievement}"
    current = get_achievement(ctx.view, payload.issuer, payload.achievement)
    version = get_achievement(ctx.view, payload.issuer, payload.achievement, payload.achievement_version)
    if current is None or version is None:
        raise InvalidEvent(
            "unknown-achievement", f"{payload.issuer} never published version {payload.achievement_version} of {name}"
        )
    if current.retired_height is not None:
        raise InvalidEvent("achievement-retired", f"achievement {name} is retired")
    rule = definition_of(version.definition, version.member).rule
    if rule is not None:
        components = tuple(_component(ctx, payload, position) for position in range(len(payload.components)))
        outcome = evaluate(rule, components, ctx.event.time_ms)
        if not outcome.met:
            raise InvalidEvent(
                "award-rule-unmet", f"{name} v{version.version} needs more: " + "; ".join(outcome.missing)
            )
        for component in components:
            if component.position not in outcome.counted:
                what = ", ".join(str(f.achievement) for f in component.facets) or "no published achievement"
                raise InvalidEvent(
                    "component-not-counted",
                    f"component {component.position + 1}: awards {what}, which the rule of {name} does not count",
                )
    ctx.view.put(
        award_key(payload.digest), AwardRecord(payload.issuer, payload.achievement, payload.achievement_version)
    )


def _component(ctx: Context, payload: Issue, position: int) -> Component:
    digest = payload.components[position]
    where = f"component {position + 1} ({digest.hex()})"
    record = get_credential(ctx.view, digest)
    if record is None:
        raise InvalidEvent("component-missing", f"{where}: not issued")
    if record.status == Status.REVOKED:
        raise InvalidEvent("component-revoked", f"{where}: revoked")
    if record.status == Status.SUSPENDED:
        raise InvalidEvent("component-suspended", f"{where}: suspended")
    if record.expires_ms is not None and record.expires_ms <= ctx.event.time_ms:
        raise InvalidEvent("component-expired", f"{where}: expired")
    return Component(position, record.issuer, record.issued_ms, facets(ctx.view, digest))


def facets(view: StateView, digest: bytes) -> tuple[Facet, ...]:
    """What a credential counts as in a stacking rule: the achievement version it awards, if any."""
    award = get_award(view, digest)
    if award is None:
        return ()
    record = get_achievement(view, award.member, award.achievement, award.version)
    if record is None:
        return ()
    definition = definition_of(record.definition, record.member)
    ref = AchievementRef(award.member, award.achievement)
    return (Facet(ref, definition.credits, definition.level, definition.field),)


def _require_own(ctx: Context, member: str, what: str) -> None:
    authority = require_issuer(ctx, what)
    if authority.member.id != member:
        raise Unauthorized("not-the-member", f"signed by {authority.member.id!r} for {member!r}'s catalogue")


def _retired(record: AchievementRecord, height: int) -> AchievementRecord:
    return dataclasses.replace(record, retired_height=height)
