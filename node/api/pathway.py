"""`POST /v1/pathway`: which published awards a learner's credentials complete, and what is missing for the others.

The same question `credledger pathway` asks, answered from this node's state at its latest committed height
(`ledger.pathway.pathways_in_state`): advice, not proof -- the ledger checks a rule again when an award is issued,
and a learner who trusts no node verifies a record and runs `credledger pathway` instead.

The body names the credentials in one of three ways, with an optional `toward` ("MEMBER/ID", only that award)::

    {"digests": ["<64 hex>", ...]}
    {"record": {"format": "credledger-record/v1", ...}}            the credentials of a saved record
    {"credentials": [<credential document or credledger-proof/v1 bundle>, ...]}

A credential document is named by its ledger digest (SHA-256 of its RFC 8785 form); documents that name different
subjects (`credentialSubject.id`) are refused, as the command line refuses them: a pathway is one learner's.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from credledger.ledger.bundle import FORMAT as BUNDLE_FORMAT
from credledger.ledger.digest import document_digest
from credledger.ledger.errors import DecodeError
from credledger.ledger.limits import MAX_NAME
from credledger.ledger.pathway import pathways_in_state
from credledger.ledger.record import FORMAT as RECORD_FORMAT
from credledger.ledger.record import MAX_RECORD_CREDENTIALS
from credledger.ledger.stacking import AchievementRef
from credledger.node.api.common import APPLICATION, CONFIG, json_response, parse_hex32
from credledger.node.api.events import read_body
from credledger.node.api.problems import Problem

#: Largest `POST /v1/pathway` body. A record of many credentials is larger than this: send its digests instead.
MAX_PATHWAY_REQUEST_BYTES = 8 * 1024 * 1024
_FORMS = ("digests", "record", "credentials")


async def post_pathway(request: web.Request) -> web.Response:
    """Each credential's standing and every award rule in force evaluated over the valid ones, complete first."""
    chain = request.app[APPLICATION]
    body = await read_body(request, MAX_PATHWAY_REQUEST_BYTES, request.app[CONFIG].api.body_timeout_ms / 1000)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Problem(400, "malformed", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Problem(400, "malformed", "expected an object with one of digests, record or credentials")
    named = [form for form in _FORMS if form in data]
    unknown = sorted(set(data) - {*_FORMS, "toward"})
    if unknown:
        raise Problem(400, "malformed", f"unknown field {', '.join(unknown)} (expected {', '.join(_FORMS)}, toward)")
    if len(named) != 1:
        raise Problem(400, "malformed", f"give exactly one of digests, record or credentials, got {len(named)}")
    digests = _digests(named[0], data[named[0]])
    toward = _toward(data.get("toward"))
    with chain.store.snapshot() as snap:
        if snap.height == 0:
            raise Problem(503, "no-checkpoint", "no block has been committed yet, so there is nothing to evaluate")
        at_ms = snap.header(snap.height).time_ms
        try:
            standings, found = pathways_in_state(snap.state_view(), digests, at_ms, toward=toward)
        except KeyError as exc:
            raise Problem(404, "not-found", str(exc.args[0])) from None
        height = snap.height
    return json_response(
        {
            "height": height,
            "as_of_ms": at_ms,
            "credentials": [s.to_json() for s in standings],
            "pathways": [p.to_json() for p in found],
        }
    )


def _digests(form: str, value: Any) -> list[bytes]:
    if form == "digests":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_RECORD_CREDENTIALS:
            raise Problem(400, "malformed", f"digests: expected a list of 1..{MAX_RECORD_CREDENTIALS} hex digests")
        digests = [parse_hex32(d if isinstance(d, str) else "", f"digests[{i}]") for i, d in enumerate(value)]
    elif form == "record":
        digests = _record_digests(value)
    else:
        digests = _credential_digests(value)
    seen: set[bytes] = set()
    for i, digest in enumerate(digests):
        if digest in seen:
            raise Problem(400, "malformed", f"{form}[{i}]: credential {digest.hex()} is listed twice")
        seen.add(digest)
    return digests


def _record_digests(value: Any) -> list[bytes]:
    if not isinstance(value, dict) or value.get("format") != RECORD_FORMAT:
        raise Problem(400, "malformed", f"record: expected an object with format {RECORD_FORMAT!r}")
    items = value.get("credentials")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_RECORD_CREDENTIALS:
        raise Problem(400, "malformed", f"record.credentials: expected a list of 1..{MAX_RECORD_CREDENTIALS} items")
    out = []
    for i, item in enumerate(items):
        raw = item.get("digest") if isinstance(item, dict) else None
        out.append(parse_hex32(raw if isinstance(raw, str) else "", f"record.credentials[{i}].digest"))
    return out


def _credential_digests(value: Any) -> list[bytes]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_RECORD_CREDENTIALS:
        raise Problem(
            400, "malformed", f"credentials: expected a list of 1..{MAX_RECORD_CREDENTIALS} documents or bundles"
        )
    out = []
    subjects: dict[str, int] = {}
    for i, item in enumerate(value):
        where = f"credentials[{i}]"
        if not isinstance(item, dict):
            raise Problem(400, "malformed", f"{where}: expected a credential document or a proof bundle (an object)")
        if item.get("format") == BUNDLE_FORMAT:
            raw = item.get("digest")
            out.append(parse_hex32(raw if isinstance(raw, str) else "", f"{where}.digest"))
            continue
        subject = item.get("credentialSubject")
        if isinstance(subject, dict) and isinstance(subject.get("id"), str):
            subjects.setdefault(subject["id"], i)
        try:
            out.append(document_digest(json.dumps(item).encode()).digest)
        except DecodeError as exc:  # JSON that RFC 8785 cannot canonicalise
            raise Problem(400, "malformed", f"{where}: {exc}") from None
    if len(subjects) > 1:
        named = "; ".join(f"credentials[{i}]: {subject}" for subject, i in subjects.items())
        raise Problem(400, "different-subjects", f"the credentials name different subjects ({named}); one learner's")
    return out


def _toward(value: Any) -> AchievementRef | None:
    if value is None:
        return None
    member, sep, achievement = value.partition("/") if isinstance(value, str) else ("", "", "")
    if not sep or not member or not achievement or len(value) > 2 * MAX_NAME:
        raise Problem(400, "malformed", f"toward: expected MEMBER/ID, e.g. uni-b.example/data-cert, got {value!r}")
    return AchievementRef(member, achievement)
