"""Achievement definitions: the public catalogue entries members publish on the ledger (DESIGN §14).

A definition is JSON in the shape of an Open Badges 3.0 `Achievement`, carried in an `achievement.publish` event
as its RFC 8785 canonical bytes (so one definition has exactly one encoding)::

    {"id": "data-analytics", "name": "Data analytics", "description": "...",
     "criteria": {"narrative": "Pass the assessed project"}, "achievementType": "MicroCredential",
     "creditsAvailable": 7.5, "creditSystem": "ECTS", "level": {"framework": "EQF", "value": 6},
     "fieldOfStudy": "Computer science", "workload": {"hours": 180}, "assessment": "Supervised project",
     "alignment": [{"targetName": "Data analysis", "targetUrl": "https://example.org/rsd/data-analysis"}],
     "stackingRule": {...}}

`id`, `name`, `criteria` and `achievementType` are required; other Open Badges fields may appear and are kept as
published. Definitions are public: personal data has no place in them, and a field that is obviously about a
person (`recipient`, `credentialSubject`, `email`, `birthDate`, ...) is refused wherever it appears.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from credledger.ledger import jcs
from credledger.ledger.stacking import (
    CreditValue,
    Level,
    Rule,
    RuleError,
    fields,
    integer,
    label,
    parse_credits,
    parse_rule,
)

MAX_DEFINITION_BYTES = 8 * 1024
MAX_DEFINITION_DEPTH = 16
MAX_ALIGNMENTS = 32
MAX_TEXT = 2000

#: Open Badges 3.0 achievement types (an `ext:` prefix names one of an institution's own, as the standard allows).
ACHIEVEMENT_TYPES = frozenset(
    {
        "Achievement", "ApprenticeshipCertificate", "Assessment", "Assignment", "AssociateDegree", "Award", "Badge",
        "BachelorDegree", "Certificate", "CertificateOfCompletion", "Certification", "CommunityService",
        "Competency", "Course", "CoCurricular", "Degree", "Diploma", "DoctoralDegree", "Fieldwork",
        "GeneralEducationDevelopment", "JourneymanCertificate", "LearningProgram", "License", "Membership",
        "MicroCredential", "ProfessionalDoctorate", "QualityAssuranceCredential", "MasterCertificate",
        "MasterDegree", "ResearchDoctorate", "SecondarySchoolDiploma",
    }
)  # fmt: skip

#: Field names that can only be about a person: a definition holding one anywhere is refused.
PERSONAL_FIELDS = frozenset(
    {
        "recipient", "credentialSubject", "learner", "student", "holder", "email", "birthDate", "dateOfBirth",
        "familyName", "givenName", "phone", "telephone", "address", "nationalId", "studentId", "identityHash",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Definition:
    """What the ledger reads from an achievement definition."""

    id: str
    name: str
    achievement_type: str
    credits: CreditValue | None
    level: Level | None
    field: str | None
    workload_hours: int | None
    skills: tuple[str, ...]
    rule: Rule | None


def parse_json(data: bytes, what: str, max_bytes: int) -> dict[str, Any]:
    """Canonical JSON bytes as an object, numbers as int or Decimal (never float)."""
    if len(data) > max_bytes:
        raise RuleError(f"{what}: {len(data)} bytes, the limit is {max_bytes}")
    try:
        text = data.decode()
        tree = jcs.parse(text)
    except (UnicodeDecodeError, jcs.NotJson, jcs.NotCanonicalJson) as exc:
        raise RuleError(f"{what}: not JSON ({exc})") from None
    if _depth(tree) > MAX_DEFINITION_DEPTH:
        raise RuleError(f"{what}: nested deeper than {MAX_DEFINITION_DEPTH}")
    if jcs.canonical_json(text) != data:
        raise RuleError(f"{what}: not in RFC 8785 canonical form")
    value = json.loads(text, parse_float=Decimal)
    if not isinstance(value, dict):
        raise RuleError(f"{what}: expected a JSON object")
    for path in _personal(value, what):
        raise RuleError(f"{path}: personal data has no place in a public definition")
    return value


def parse_definition(data: bytes, owner: str) -> Definition:
    """Validate a definition published by `owner`; RuleError names the field that is wrong."""
    obj = parse_json(data, "definition", MAX_DEFINITION_BYTES)
    for key in ("id", "name", "criteria", "achievementType"):
        if key not in obj:
            raise RuleError(f"definition: missing {key}")
    kind = label(obj["achievementType"], "definition.achievementType")
    if kind not in ACHIEVEMENT_TYPES and not kind.startswith("ext:"):
        raise RuleError(f"definition.achievementType: {kind!r} is not an Open Badges 3.0 type (or ext:...)")
    criteria = obj["criteria"]
    if not isinstance(criteria, dict) or not ({"narrative", "id"} & set(criteria)):
        raise RuleError("definition.criteria: expected an object with a narrative or an id")
    for key in ("description", "assessment"):
        if key in obj and (not isinstance(obj[key], str) or len(obj[key]) > MAX_TEXT):
            raise RuleError(f"definition.{key}: expected a string of at most {MAX_TEXT} characters")
    credits = None
    if ("creditsAvailable" in obj) != ("creditSystem" in obj):
        raise RuleError("definition: creditsAvailable and creditSystem go together")
    if "creditsAvailable" in obj:
        amount = parse_credits(obj["creditsAvailable"], "definition.creditsAvailable")
        credits = CreditValue(label(obj["creditSystem"], "definition.creditSystem"), amount)
    level = None
    if "level" in obj:
        lv = fields(obj["level"], "definition.level", ("framework", "value"))
        level = Level(
            label(lv["framework"], "definition.level.framework"), integer(lv["value"], "definition.level.value", 0, 99)
        )
    workload = None
    if "workload" in obj:
        workload = integer(
            fields(obj["workload"], "definition.workload", ("hours",))["hours"], "definition.workload.hours", 0, 100_000
        )
    return Definition(
        id=label(obj["id"], "definition.id"),
        name=label(obj["name"], "definition.name"),
        achievement_type=kind,
        credits=credits,
        level=level,
        field=label(obj["fieldOfStudy"], "definition.fieldOfStudy") if "fieldOfStudy" in obj else None,
        workload_hours=workload,
        skills=_skills(obj.get("alignment", [])),
        rule=parse_rule(obj["stackingRule"], owner) if "stackingRule" in obj else None,
    )


def _skills(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_ALIGNMENTS:
        raise RuleError(f"definition.alignment: expected a list of at most {MAX_ALIGNMENTS} alignments")
    urls = []
    for i, item in enumerate(raw):
        where = f"definition.alignment[{i}]"
        obj = fields(item, where, ("targetName", "targetUrl"), ("targetFramework", "targetCode", "targetType", "type"))
        label(obj["targetName"], f"{where}.targetName")
        url = label(obj["targetUrl"], f"{where}.targetUrl")
        if not url.startswith(("https://", "http://", "urn:")):
            raise RuleError(f"{where}.targetUrl: expected an http(s) URL or a URN")
        urls.append(url)
    return tuple(urls)


def _depth(tree: Any) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEFINITION_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _personal(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key in PERSONAL_FIELDS:
                yield f"{where}.{key}"
            yield from _personal(child, f"{where}.{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _personal(child, f"{where}[{i}]")
