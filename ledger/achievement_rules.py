"""The rules for the catalogue: achievement.publish/retire, recognition.publish/withdraw, and the award check.

A member publishes its own achievements with one of its issuer keys; each publish of an id is its next version,
and every version stays in the state map. A retired achievement takes no new version and no new award. An issue
that names an achievement awards a published version of the issuer's own; when that version carries a stacking
rule, the issue must list components that meet it, each issued, not revoked, suspended or expired at the issue
time, and each counted by the rule (DESIGN §14). The rule is evaluated by `ledger.stacking`, over the facts the
state holds at the issue's height, with the recognitions the issuer holds in force at that height.

A recognition is published by the recognising member for another member's achievements; one that makes them
equivalent to an achievement of its own must name one it has published. Withdrawn, it leaves the member's
directory of recognitions in force, so later awards stop counting it and earlier ones are untouched.
"""

from __future__ import annotations

import dataclasses
import functools

from credledger.ledger.achievement import Definition, parse_definition
from credledger.ledger.authority import Context, require_issuer
from credledger.ledger.catalogue import (
    MAX_ACHIEVEMENTS_PER_MEMBER,
    MAX_RECOGNITIONS_PER_MEMBER,
    AchievementRecord,
    AwardRecord,
    Directory,
    RecognitionRecord,
    achievement_ids,
    achievement_key,
    achievement_version_key,
    award_key,
    get_achievement,
    get_award,
    get_recognition,
    recognition_ids,
    recognition_key,
)
from credledger.ledger.errors import InvalidEvent, Unauthorized
from credledger.ledger.events import (
    AchievementPublish,
    AchievementRetire,
    Issue,
    RecognitionPublish,
    RecognitionWithdraw,
)
from credledger.ledger.recognition import Recognition, parse_recognition, recognised_facets, recognises
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
        recognitions = recognitions_in_force(ctx.view, payload.issuer)
        components = tuple(
            _component(ctx, payload, position, recognitions) for position in range(len(payload.components))
        )
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


def _component(ctx: Context, payload: Issue, position: int, recognitions: tuple[Recognition, ...]) -> Component:
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
    counted_as = facets(ctx.view, digest, payload.issuer, recognitions)
    # facets() puts the component's own achievement first; the issuer's recognitions may cover it.
    recognised = bool(counted_as) and recognises(recognitions, counted_as[0])
    return Component(position, record.issuer, record.issued_ms, counted_as, recognised)


def facets(view: StateView, digest: bytes, owner: str, recognitions: tuple[Recognition, ...]) -> tuple[Facet, ...]:
    """What a credential counts as in `owner`'s stacking rules: the achievement version it awards, if any, and
    what `owner`'s recognitions make of that achievement."""
    award = get_award(view, digest)
    if award is None:
        return ()
    own = _facet(view, award.member, award.achievement, award.version)
    if own is None:
        return ()
    return (own, *recognised_facets(own, recognitions, lambda achievement: _facet(view, owner, achievement)))


def _facet(view: StateView, member: str, achievement: str, version: int | None = None) -> Facet | None:
    record = get_achievement(view, member, achievement, version)
    if record is None:
        return None
    definition = definition_of(record.definition, record.member)
    return Facet(AchievementRef(member, achievement), definition.credits, definition.level, definition.field)


def recognitions_in_force(view: StateView, member: str) -> tuple[Recognition, ...]:
    """The recognitions `member` holds in force, in id order."""
    out = []
    for recognition in recognition_ids(view, member):
        record = get_recognition(view, member, recognition)
        if record is not None:
            out.append(recognition_of(record.definition, member))
    return tuple(out)


@functools.lru_cache(maxsize=1024)
def recognition_of(data: bytes, owner: str) -> Recognition:
    """A published recognition, parsed once per process."""
    return parse_recognition(data, owner)


def apply_recognition_publish(ctx: Context, payload: RecognitionPublish) -> None:
    _require_own(ctx, payload.member, "a recognition.publish")
    recognition = recognition_of(payload.definition, payload.member)
    if get_recognition(ctx.view, payload.member, recognition.id) is not None:
        raise InvalidEvent("recognition-exists", f"{payload.member} published recognition {recognition.id!r} before")
    source = recognition.source_member
    if (
        recognition.source_achievement is not None
        and get_achievement(ctx.view, source, recognition.source_achievement) is None
    ):
        raise InvalidEvent("unknown-achievement", f"{source}/{recognition.source_achievement} was never published")
    if recognition.equivalent is not None and get_achievement(ctx.view, payload.member, recognition.equivalent) is None:
        raise InvalidEvent("unknown-achievement", f"{payload.member}/{recognition.equivalent} was never published")
    ids = recognition_ids(ctx.view, payload.member)
    if len(ids) >= MAX_RECOGNITIONS_PER_MEMBER:
        raise InvalidEvent("too-many-recognitions", f"{payload.member} holds {len(ids)} recognitions, the limit")
    record = RecognitionRecord(payload.member, recognition.id, payload.definition, ctx.index, ctx.height, None)
    ctx.view.put(recognition_key(payload.member, recognition.id), record)
    ctx.view.put(recognition_key(payload.member, ""), Directory(ids).with_id(recognition.id))


def apply_recognition_withdraw(ctx: Context, payload: RecognitionWithdraw) -> None:
    _require_own(ctx, payload.member, "a recognition.withdraw")
    record = get_recognition(ctx.view, payload.member, payload.recognition)
    if record is None:
        raise InvalidEvent(
            "unknown-recognition", f"{payload.member} never published recognition {payload.recognition!r}"
        )
    if record.withdrawn_height is not None:
        raise InvalidEvent("recognition-withdrawn", f"recognition {payload.recognition!r} is withdrawn already")
    ctx.view.put(recognition_key(record.member, record.id), dataclasses.replace(record, withdrawn_height=ctx.height))
    ids = recognition_ids(ctx.view, payload.member)
    ctx.view.put(recognition_key(payload.member, ""), Directory(ids).without_id(record.id))


def _require_own(ctx: Context, member: str, what: str) -> None:
    authority = require_issuer(ctx, what)
    if authority.member.id != member:
        raise Unauthorized("not-the-member", f"signed by {authority.member.id!r} for {member!r}'s catalogue")


def _retired(record: AchievementRecord, height: int) -> AchievementRecord:
    return dataclasses.replace(record, retired_height=height)
