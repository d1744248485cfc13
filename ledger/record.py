"""The lifelong learning record: many credentials' proofs under one certified checkpoint (DESIGN §14).

A `credledger-record/v1` document is a proof bundle (`ledger.bundle`) whose anchor -- network, checkpoint, header
and validator-set chain -- is shared by every credential in it::

    {"format": "credledger-record/v1", "origin": ..., "genesis": ..., "checkpoint": ..., "header": ...,
     "validators": [...],
     "credentials": [{"digest": ..., "credential": ..., "events": [...], "issuer": {...}, "achievement": ...}]}

Each credential carries what its own bundle would (its record, issue and status events, issuer records), plus,
when its issue event names an achievement, the state proof of that achievement version's record, so the verifier
learns the credits, level, field and skills it stands for from the ledger itself. `verify_record` checks the
anchor once and every credential against it, and sums up what the valid credentials amount to. Pure: bytes in,
verdict or `ProofError` out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from credledger.ledger import codec, encoding, smt
from credledger.ledger.achievement import Definition, parse_definition
from credledger.ledger.bundle import (
    FORMAT as BUNDLE_FORMAT,
)
from credledger.ledger.bundle import (
    Bundle,
    ProofError,
    StateEntry,
    Verdict,
    entry_from_json,
    entry_to_json,
    verify_against,
    verify_anchor,
)
from credledger.ledger.catalogue import AchievementRecord, achievement_version_key
from credledger.ledger.errors import DecodeError, VerificationError
from credledger.ledger.events import Issue, decode_event
from credledger.ledger.genesis import Genesis
from credledger.ledger.stacking import RuleError, format_credits

FORMAT = "credledger-record/v1"
#: Most credentials one record holds.
MAX_RECORD_CREDENTIALS = 1000
#: Largest record file a verifier will parse.
MAX_RECORD_BYTES = 64 * 1024 * 1024
#: The members of a record that every credential's bundle shares (its anchor), in `Record.to_json`'s order.
_ANCHOR = ("origin", "genesis", "checkpoint", "header", "validators")


@dataclass(frozen=True, slots=True)
class Record:
    """The shared anchor (as an item-less bundle) and, per credential, its bundle and its achievement's proof."""

    bundles: tuple[Bundle, ...]
    achievements: tuple[StateEntry | None, ...]

    def to_json(self) -> dict[str, Any]:
        first = self.bundles[0].to_json()
        items = []
        for bundle, achievement in zip(self.bundles, self.achievements, strict=True):
            data = bundle.to_json()
            items.append(
                {
                    "digest": data["digest"],
                    "credential": data["credential"],
                    "events": data["events"],
                    "issuer": data["issuer"],
                    "achievement": None if achievement is None else entry_to_json(achievement),
                }
            )
        return {"format": FORMAT, **{k: first[k] for k in _ANCHOR}, "credentials": items}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1)

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> Record:
        """Parse a record, strictly; DecodeError names the bad field."""
        data = encoding.from_json_text(data, "record", MAX_RECORD_BYTES)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DecodeError(f"record: expected an object with format {FORMAT!r}")
        items = data.get("credentials")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_RECORD_CREDENTIALS:
            raise DecodeError(f"record.credentials: expected a list of 1..{MAX_RECORD_CREDENTIALS} credentials")
        anchor = {"format": BUNDLE_FORMAT, **{k: data.get(k) for k in _ANCHOR}}
        bundles, achievements = [], []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise DecodeError(f"record.credentials[{i}]: expected an object")
            try:
                bundles.append(
                    Bundle.from_json(
                        {**anchor, **{k: item.get(k) for k in ("digest", "credential", "events", "issuer")}}
                    )
                )
            except DecodeError as exc:
                raise DecodeError(f"record.credentials[{i}]: {exc}") from None
            raw = item.get("achievement")
            achievements.append(None if raw is None else entry_from_json(raw, f"record.credentials[{i}].achievement"))
        return cls(tuple(bundles), tuple(achievements))


@dataclass(frozen=True, slots=True)
class CredentialResult:
    """One credential's verdict, and the achievement version it awards (if its issue names one)."""

    verdict: Verdict
    achievement: AchievementRecord | None
    definition: Definition | None


@dataclass(frozen=True, slots=True)
class RecordVerdict:
    """What a verified record says: each credential's status, and what the valid ones amount to."""

    origin: str
    height: int
    as_of_ms: int
    results: tuple[CredentialResult, ...]
    checks: tuple[str, ...]

    @property
    def valid(self) -> tuple[CredentialResult, ...]:
        return tuple(r for r in self.results if r.verdict.status == "valid")

    def credits(self) -> dict[str, int]:
        """Credit totals (in hundredths) per system over the valid credentials."""
        totals: dict[str, int] = {}
        for result in self.valid:
            if result.definition is not None and result.definition.credits is not None:
                credit = result.definition.credits
                totals[credit.system] = totals.get(credit.system, 0) + credit.amount
        return dict(sorted(totals.items()))

    def levels(self) -> list[str]:
        return sorted(
            {
                f"{r.definition.level.framework} {r.definition.level.value}"
                for r in self.valid
                if r.definition and r.definition.level
            }
        )

    def skills(self) -> list[str]:
        return sorted({s for r in self.valid if r.definition for s in r.definition.skills})

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "origin": self.origin,
            "height": self.height,
            "as_of_ms": self.as_of_ms,
            "credentials": [
                {
                    **r.verdict.to_json(),
                    "achievement": None
                    if r.achievement is None
                    else {"member": r.achievement.member, "id": r.achievement.id, "version": r.achievement.version},
                }
                for r in self.results
            ],
            "credits": {system: format_credits(amount) for system, amount in self.credits().items()},
            "levels": self.levels(),
            "skills": self.skills(),
            "checks": list(self.checks),
        }


def verify_record(record: Record, genesis: Genesis, *, now_ms: int | None = None) -> RecordVerdict:
    """Verify the anchor once and every credential against it; ProofError names the credential and the check."""
    checks: list[str] = []
    header, checkpoint = verify_anchor(record.bundles[0], genesis, checks)
    anchor = record.bundles[0]
    definitions: dict[tuple[bytes, str], Definition] = {}  # many credentials award the same achievement version
    results = []
    for i, (bundle, entry) in enumerate(zip(record.bundles, record.achievements, strict=True)):
        # Every item was parsed with the record's one anchor; hold that even for records built in memory.
        shared = (bundle.origin, bundle.genesis_hash, bundle.checkpoint, bundle.header, bundle.validators)
        if shared != (anchor.origin, anchor.genesis_hash, anchor.checkpoint, anchor.header, anchor.validators):
            raise ProofError("record", f"credential {i} is not under the record's checkpoint")
        try:
            verdict = verify_against(bundle, header, checkpoint, [], now_ms=now_ms)
            achievement, definition = _achievement(bundle, entry, header.state_root, verdict, definitions)
        except ProofError as exc:
            raise ProofError(exc.step, f"credential {i} ({bundle.digest.hex()}): {exc.detail}") from None
        results.append(CredentialResult(verdict, achievement, definition))
    checks.append(f"{len(results)} credentials verified against the one checkpoint at height {header.height}")
    return RecordVerdict(header.origin, header.height, header.time_ms, tuple(results), tuple(checks))


def _achievement(
    bundle: Bundle,
    entry: StateEntry | None,
    state_root: bytes,
    verdict: Verdict,
    definitions: dict[tuple[bytes, str], Definition],
) -> tuple[AchievementRecord | None, Definition | None]:
    if verdict.status == "unknown":
        return None, None
    payload = decode_event(bundle.events[0].event).payload  # included and checked by verify_against
    if not isinstance(payload, Issue) or payload.achievement is None or payload.achievement_version is None:
        if entry is not None:
            raise ProofError("achievement", "an achievement proof for an issue that names none")
        return None, None
    if entry is None or entry.value is None:
        raise ProofError("achievement", f"no proof of achievement {payload.issuer}/{payload.achievement}")
    key = achievement_version_key(payload.issuer, payload.achievement, payload.achievement_version)
    value = entry.value
    try:
        smt.verify_proof(state_root, key, value, entry.proof)
        record = codec.decode(AchievementRecord, value)
        if (record.member, record.id, record.version) != (
            payload.issuer,
            payload.achievement,
            payload.achievement_version,
        ):
            raise ProofError("achievement", "the achievement record is not the version the issue names")
        cached = (record.definition, record.member)
        if cached not in definitions:
            definitions[cached] = parse_definition(record.definition, record.member)
        definition = definitions[cached]
    except (VerificationError, DecodeError, RuleError, ValueError) as exc:
        raise ProofError("achievement", str(exc)) from None
    return record, definition
