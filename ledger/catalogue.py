"""The catalogue's records in the state map: achievements, their versions, awards and recognitions (DESIGN §14).

Theory of operation
-------------------
Keys are namespaced hashes like every other record's (`ledger.state`)::

    achievement_key(member, id)             = SHA-256("achievement\\x00" || member || "\\x00" || id)
    achievement_version_key(member, id, v)  = SHA-256("achievement\\x00" || member || "\\x00" || id || "\\x00" || v)
    award_key(digest)                       = SHA-256("award\\x00" || digest)
    recognition_key(member, id)             = SHA-256("recognition\\x00" || member || "\\x00" || id)

(v as 8 bytes, big-endian.)

The current version of an achievement lives at `achievement_key` and every version, once published, stays at its
own `achievement_version_key` for good, so a proof about an award can always show the definition it was checked
against. Ids are printable, so they never hold the NUL that separates the version, and never are empty: the empty
id is each member's *directory* (the sorted ids it has published, or the recognitions it holds in force), as the
member directory in `ledger.state` is. An `award` record says which achievement version a credential awards; it
is written once, with the credential.
"""

from __future__ import annotations

import functools
import hashlib
import json
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from credledger.ledger import codec, domains
from credledger.ledger.achievement import MAX_DEFINITION_BYTES
from credledger.ledger.codec import Size
from credledger.ledger.events import AchievementId
from credledger.ledger.recognition import MAX_RECOGNITION_BYTES
from credledger.ledger.state import StateView
from credledger.ledger.validators import MemberId

R = TypeVar("R")

#: Most achievement ids one member may publish, and most recognitions it may hold in force at once.
MAX_ACHIEVEMENTS_PER_MEMBER = 1024
MAX_RECOGNITIONS_PER_MEMBER = 256


def achievement_key(member: str, achievement: str) -> bytes:
    """Where the current version of `member`'s achievement lives (the empty id: its directory)."""
    return hashlib.sha256(domains.STATE_ACHIEVEMENT + member.encode() + b"\x00" + achievement.encode()).digest()


def achievement_version_key(member: str, achievement: str, version: int) -> bytes:
    """Where one published version of `member`'s achievement lives, for good."""
    prefix = domains.STATE_ACHIEVEMENT + member.encode() + b"\x00" + achievement.encode() + b"\x00"
    return hashlib.sha256(prefix + version.to_bytes(8, "big")).digest()


def award_key(digest: bytes) -> bytes:
    """Where the record of which achievement a credential awards lives."""
    return hashlib.sha256(domains.STATE_AWARD + digest).digest()


def recognition_key(member: str, recognition: str) -> bytes:
    """Where one of `member`'s recognitions lives (the empty id: the ids it holds in force)."""
    return hashlib.sha256(domains.STATE_RECOGNITION + member.encode() + b"\x00" + recognition.encode()).digest()


@dataclass(frozen=True, slots=True)
class AchievementRecord:
    """One version of an achievement definition, and whether the achievement is retired (current record only)."""

    member: MemberId
    id: AchievementId
    version: int
    definition: Annotated[bytes, Size(1, MAX_DEFINITION_BYTES)]
    published_index: int
    published_height: int
    published_ms: int
    retired_height: int | None


@dataclass(frozen=True, slots=True)
class Directory:
    """Sorted, unique ids: a member's achievements, or the recognitions it holds in force."""

    ids: Annotated[tuple[AchievementId, ...], Size(0, MAX_ACHIEVEMENTS_PER_MEMBER)]

    def __post_init__(self) -> None:
        if list(self.ids) != sorted(set(self.ids)):
            raise ValueError("directory ids must be sorted and unique")

    def with_id(self, item: str) -> Directory:
        return Directory(tuple(sorted({*self.ids, item})))

    def without_id(self, item: str) -> Directory:
        return Directory(tuple(i for i in self.ids if i != item))


@dataclass(frozen=True, slots=True)
class AwardRecord:
    """The achievement version a credential awards (its issuer's)."""

    member: MemberId
    achievement: AchievementId
    version: int


def _load(view: StateView, cls: type[R], key: bytes) -> R | None:
    data = view.get(key)
    return None if data is None else typing.cast(R, _decode(typing.cast(type, cls), data))


@functools.lru_cache(maxsize=4096)
def _decode(cls: type, data: bytes) -> object:
    # Records are immutable values: an award's components read the same achievement records again and again.
    return codec.decode(cls, data)


def get_achievement(
    view: StateView, member: str, achievement: str, version: int | None = None
) -> AchievementRecord | None:
    """The current record of an achievement, or one version of it."""
    key = (
        achievement_key(member, achievement)
        if version is None
        else achievement_version_key(member, achievement, version)
    )
    return _load(view, AchievementRecord, key)


def get_directory(view: StateView, key: bytes) -> Directory:
    return _load(view, Directory, key) or Directory(())


def achievement_ids(view: StateView, member: str) -> tuple[str, ...]:
    return get_directory(view, achievement_key(member, "")).ids


def get_award(view: StateView, digest: bytes) -> AwardRecord | None:
    return _load(view, AwardRecord, award_key(digest))


@dataclass(frozen=True, slots=True)
class RecognitionRecord:
    """A recognition as published, and the height it was withdrawn at, if it was."""

    member: MemberId
    id: AchievementId
    definition: Annotated[bytes, Size(1, MAX_RECOGNITION_BYTES)]
    published_index: int
    published_height: int
    withdrawn_height: int | None


def get_recognition(view: StateView, member: str, recognition: str) -> RecognitionRecord | None:
    return _load(view, RecognitionRecord, recognition_key(member, recognition))


def recognition_ids(view: StateView, member: str) -> tuple[str, ...]:
    """The ids of the recognitions `member` holds in force."""
    return get_directory(view, recognition_key(member, "")).ids


# --- the catalogue as the API shows it ----------------------------------------------------------------------------


def achievement_to_json(record: AchievementRecord) -> dict[str, Any]:
    """An achievement version as the API shows it, its definition as the JSON object it was published as."""
    return {
        "member": record.member,
        "id": record.id,
        "version": record.version,
        "published_height": record.published_height,
        "published_ms": record.published_ms,
        "published_index": record.published_index,
        "retired_height": record.retired_height,
        "definition": json.loads(record.definition),
    }


@dataclass(frozen=True, slots=True)
class CatalogueFilter:
    """What `GET /v1/achievements` may filter on; None matches everything."""

    member: str | None = None
    kind: str | None = None
    skill: str | None = None
    level: int | None = None
    framework: str | None = None
    text: str | None = None

    def matches(self, record: AchievementRecord, definition: dict[str, Any]) -> bool:
        level = definition.get("level") or {}
        return (
            (self.member is None or record.member == self.member)
            and (self.kind is None or definition.get("achievementType") == self.kind)
            and (self.level is None or level.get("value") == self.level)
            and (self.framework is None or level.get("framework") == self.framework)
            and (self.skill is None or self._has_skill(definition.get("alignment", [])))
            and (self.text is None or self._has_text(definition))
        )

    def _has_skill(self, alignments: list[dict[str, Any]]) -> bool:
        wanted = str(self.skill).casefold()
        return any(
            a.get("targetUrl") == self.skill or wanted in str(a.get("targetName", "")).casefold() for a in alignments
        )

    def _has_text(self, definition: dict[str, Any]) -> bool:
        haystack = " ".join(str(definition.get(k, "")) for k in ("id", "name", "description", "fieldOfStudy"))
        return str(self.text).casefold() in haystack.casefold()


def list_achievements(
    view: StateView, members: Sequence[str], wanted: CatalogueFilter, *, after: tuple[str, str] | None, limit: int
) -> tuple[list[AchievementRecord], tuple[str, str] | None]:
    """Current achievement records matching `wanted`, ordered by (member, id), after the cursor `after`; and the
    cursor of the next page (None when this is the last)."""
    out: list[AchievementRecord] = []
    for member in sorted(members):
        if after is not None and member < after[0]:
            continue
        if wanted.member is not None and member != wanted.member:
            continue
        for achievement in achievement_ids(view, member):
            if after is not None and (member, achievement) <= after:
                continue
            record = get_achievement(view, member, achievement)
            if record is None or not wanted.matches(record, json.loads(record.definition)):
                continue
            if len(out) == limit:
                last = out[-1]
                return out, (last.member, last.id)
            out.append(record)
    return out, None


def recognition_to_json(record: RecognitionRecord) -> dict[str, Any]:
    """A recognition as the API shows it, its definition as the JSON object it was published as."""
    return {
        "member": record.member,
        "id": record.id,
        "published_height": record.published_height,
        "withdrawn_height": record.withdrawn_height,
        "definition": json.loads(record.definition),
    }
