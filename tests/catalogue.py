"""Builders for catalogue tests: achievement definitions as canonical JSON, and the events that publish them."""

from __future__ import annotations

import json
from typing import Any

from credledger.ledger import jcs
from credledger.ledger.events import AchievementPublish, Event, Issue, RecognitionPublish
from tests.factories import T0, TestMember, signed


def definition(
    achievement_id: str,
    *,
    credits: float | None = None,
    system: str = "ECTS",
    level: int | None = None,
    framework: str = "EQF",
    field: str | None = None,
    kind: str = "MicroCredential",
    rule: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An Open Badges 3.0-shaped achievement definition."""
    out: dict[str, Any] = {
        "id": achievement_id,
        "name": achievement_id.replace("-", " ").title(),
        "description": f"The {achievement_id} achievement",
        "criteria": {"narrative": "Pass the assessment"},
        "achievementType": kind,
        **extra,
    }
    if credits is not None:
        out["creditsAvailable"] = credits
        out["creditSystem"] = system
    if level is not None:
        out["level"] = {"framework": framework, "value": level}
    if field is not None:
        out["fieldOfStudy"] = field
    if rule is not None:
        out["stackingRule"] = rule
    return out


def canonical(value: Any) -> bytes:
    return jcs.canonical_json(json.dumps(value))


def publish(member: TestMember, value: dict[str, Any], *, time_ms: int = T0) -> Event:
    return signed(AchievementPublish(member.id, canonical(value)), member.issuer, time_ms=time_ms)


def award(
    member: TestMember,
    credential: bytes,
    achievement: str,
    version: int = 1,
    *,
    components: tuple[bytes, ...] = (),
    time_ms: int = T0,
    expires_ms: int | None = None,
) -> Event:
    """`member` issues `credential` as an award of its `achievement` (version `version`)."""
    payload = Issue(credential, member.id, expires_ms, components, achievement=achievement, achievement_version=version)
    return signed(payload, member.issuer, time_ms=time_ms)


def recognise(member: TestMember, value: dict[str, Any], *, time_ms: int = T0) -> Event:
    """`member` publishes the recognition `value`."""
    return signed(RecognitionPublish(member.id, canonical(value)), member.issuer, time_ms=time_ms)
