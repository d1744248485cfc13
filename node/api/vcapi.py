"""The W3C CCG VC-API on a node (DESIGN §13): issue, verify, and update the status of standard credentials.

- ``POST /credentials/issue`` ``{"credential": {...}, "options": {...}}`` -> 201 ``{"verifiableCredential": {...}}``:
  the unsigned credential gets the member's DID, validFrom and status entries, is signed with the member's issuer
  key held in this node's configuration, and its digest is admitted in an `issue` event (as `issue --sign` does).
- ``POST /credentials/status`` ``{"credentialId": ..., "credentialStatus": [{"type": "BitstringStatusListCredential",
  "statusPurpose": "revocation" | "suspension", "status": "1" | "0"}]}`` -> 200: revoke, suspend or reinstate a
  credential this node issued (the node keeps each issued credential's id and digest in its data directory).
- ``POST /credentials/verify`` ``{"verifiableCredential": {...}}`` -> 200 ``{"verified", "checks", "warnings",
  "errors"}``: its proof against the issuer's key history, its status and its issuer's membership, each named.

Issuing and status changes need ``[credentials] issuer_key`` and ``api_token``: without a token configured they
answer 403, without the right ``Authorization: Bearer`` token 401. Verification is open to anyone.

``options`` (VC-API "Handling Unknown Options and Data": an option the service does not know is an error, never
ignored). Issue: ``credentialId`` (the URI under which ``/credentials/status`` finds a credential that has no
``id``; refused if the credential's ``id`` says otherwise); ``mandatoryPointers`` is refused, since
``eddsa-rdfc-2022`` discloses everything and has no selective disclosure. Verify: ``checks`` (which of
``registry``, ``proof``, ``status`` to run; all by default), ``challenge`` and ``domain`` (the proof must carry
exactly these values, as a proof made for one verifier's request does).
"""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from credledger.ledger.digest import credential_digest
from credledger.ledger.errors import ConfigError, DecodeError, InvalidEvent
from credledger.ledger.events import Issue, Reinstate, Revoke, Suspend, UnsignedEvent, sign_event
from credledger.ledger.keys import SigningKey
from credledger.ledger.state import StateView, Status, get_credential, get_directory, get_member, get_status_slot
from credledger.ledger.vc.did import did_document_resolver
from credledger.ledger.vc.errors import ProofError
from credledger.ledger.vc.issuing import CredentialRefused, choose_status_entry, prepare_credential, sign_issued
from credledger.ledger.vc.members import member_did_document
from credledger.ledger.vc.proof import issuer_id, verify_credential
from credledger.node.api.common import APPLICATION, json_response
from credledger.node.api.problems import Problem
from credledger.node.api.reads import ROSTER
from credledger.node.api.standard import get_status_usage_counts

#: Draws of a new status entry after admission refused one as taken by a pending event.
MAX_DRAWS = 8
#: The file in the data directory listing the credentials this node issued through the VC-API (id, digest).
ISSUED_FILE = "vcapi-issued.jsonl"
MAX_CREDENTIAL_ID = 2048
#: The checks ``POST /credentials/verify`` runs, in order; ``options.checks`` may name a subset.
VERIFY_CHECKS = ("registry", "proof", "status")
ISSUE_OPTIONS = frozenset({"credentialId", "mandatoryPointers"})
VERIFY_OPTIONS = frozenset({"checks", "challenge", "domain"})
MAX_OPTION_TEXT = 2048


class Signer:
    """The member's issuer key this node holds, and the ids of the credentials it issued with it."""

    def __init__(self, key: SigningKey | None, token: str, data_dir: Path) -> None:
        self.key = key
        self._token = token.encode()
        self._path = data_dir / ISSUED_FILE
        self._issued: dict[str, bytes] = {}
        if self._path.exists():
            for line in self._path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                self._issued[entry["id"]] = bytes.fromhex(entry["digest"])

    def authorize(self, request: web.Request) -> SigningKey:
        """The issuer key, once the request shows the configured bearer token; else a 401 or 403 problem."""
        if not self._token:
            raise Problem(403, "vc-api-disabled", "this node has no [credentials] api_token: its VC-API only verifies")
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Problem(401, "unauthenticated", "send the node's VC-API token as Authorization: Bearer <token>")
        if not hmac.compare_digest(token.strip().encode(), self._token):
            raise Problem(401, "unauthenticated", "the bearer token is not this node's VC-API token")
        if self.key is None:
            raise Problem(403, "no-issuer-key", "this node holds no issuer key ([credentials] issuer_key)")
        return self.key

    def remember(self, credential_id: str, digest: bytes) -> None:
        self._issued[credential_id] = digest
        with self._path.open("a", encoding="utf-8") as file:
            file.write(json.dumps({"id": credential_id, "digest": digest.hex()}) + "\n")

    def digest_of(self, credential_id: str) -> bytes:
        digest = self._issued.get(credential_id)
        if digest is None:
            raise Problem(404, "unknown-credential", f"this node issued no credential with id {credential_id[:200]!r}")
        return digest


SIGNER = web.AppKey("vc_signer", Signer)


def make_signer(issuer_key: str, token: str, data_dir: Path, member_id: str) -> Signer:
    """The node's `Signer` from its configuration; ConfigError if the issuer key file is unusable."""
    key = None
    if issuer_key:
        try:
            key = SigningKey.from_skey(Path(issuer_key).read_text(encoding="utf-8"))
        except (OSError, DecodeError) as exc:
            raise ConfigError(f"[credentials] issuer_key {issuer_key}: {exc}") from None
        if key.name != member_id:
            raise ConfigError(f"[credentials] issuer_key is {key.name}'s, not {member_id}'s")
    data_dir.mkdir(parents=True, exist_ok=True)
    return Signer(key, token, data_dir)


async def _json_body(request: web.Request, field: str) -> tuple[dict[str, Any], Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):
        raise Problem(400, "malformed", "the request body is not JSON") from None
    if not isinstance(body, dict) or field not in body:
        raise Problem(400, "malformed", f"expected a JSON object with {field!r}")
    return body, body[field]


def _options(body: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """The request's ``options`` object (empty if absent); 400 ``unknown-option`` naming any the API does not know."""
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise Problem(400, "malformed", "options must be a JSON object")
    unknown = sorted(set(options) - known)
    if unknown:
        raise Problem(
            400,
            "unknown-option",
            f"options {', '.join(repr(name[:80]) for name in unknown[:10])} are not supported here "
            f"(supported: {', '.join(sorted(known))})",
        )
    return options


def _option_text(options: Mapping[str, Any], name: str) -> str | None:
    value = options.get(name)
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= MAX_OPTION_TEXT):
        raise Problem(400, "malformed", f"options.{name} must be a string of 1 to {MAX_OPTION_TEXT} characters")
    return value


def _issued_id(credential: Mapping[str, Any], options: Mapping[str, Any]) -> str | None:
    """The id ``/credentials/status`` will know the credential by: ``options.credentialId``, else its ``id``."""
    credential_id = credential.get("id")
    if credential_id is not None and (not isinstance(credential_id, str) or len(credential_id) > MAX_CREDENTIAL_ID):
        raise Problem(400, "malformed", f"credential id must be a string of at most {MAX_CREDENTIAL_ID} characters")
    if "mandatoryPointers" in options:
        raise Problem(
            400,
            "unsupported-option",
            "options.mandatoryPointers applies to selective-disclosure cryptosuites; this node signs "
            "eddsa-rdfc-2022, which discloses the whole credential",
        )
    option_id = _option_text(options, "credentialId")
    if option_id is None:
        return credential_id
    if credential_id is not None and credential_id != option_id:
        raise Problem(
            400,
            "malformed",
            f"options.credentialId {option_id[:200]!r} is not the credential's id {credential_id[:200]!r}; "
            "give credentialId only for a credential without an id",
        )
    return option_id


async def issue_credential(request: web.Request) -> web.Response:
    """Sign an unsigned credential for this node's member and register it (201 with the signed credential)."""
    signer = request.app[SIGNER]
    key = signer.authorize(request)
    body, credential = await _json_body(request, "credential")
    if not isinstance(credential, dict):
        raise Problem(400, "malformed", "credential must be a JSON object")
    credential_id = _issued_id(credential, _options(body, ISSUE_OPTIONS))
    chain = request.app[APPLICATION]
    for _ in range(MAX_DRAWS):
        now_ms = chain.now_ms()
        with chain.store.snapshot() as snap:
            view = snap.state_view()
            member = get_member(view, key.name)
            if member is None or not member.active:
                raise Problem(403, "no-issuer-key", f"{key.name} is not an active member")
            used = get_status_usage_counts(view, key.name)
            try:
                list_number, index = choose_status_entry(used, functools.partial(_taken, view, key.name))
                signed = sign_issued(
                    prepare_credential(credential, member, list_number, index, now_ms), member, key, now_ms
                )
            except (CredentialRefused, ProofError, DecodeError) as exc:
                raise Problem(400, "credential-refused", str(exc)) from None
        digest = credential_digest(json.dumps(signed).encode())
        event = sign_event(
            UnsignedEvent(chain.genesis.origin, now_ms, Issue(digest, key.name, None, (), list_number, index)), key
        )
        try:
            chain.admit(event)
        except InvalidEvent as exc:
            if exc.rule == "status-entry-used":
                continue
            raise
        if isinstance(credential_id, str):
            signer.remember(credential_id, digest)
        return json_response({"verifiableCredential": signed}, status=201)
    raise Problem(503, "status-entries-busy", f"{MAX_DRAWS} random status entries were taken meanwhile; retry")


def _taken(view: StateView, member_id: str, list_number: int, index: int) -> bool:
    return get_status_slot(view, member_id, list_number, index) is not None


_CHANGES = {("revocation", "1"): "revoke", ("suspension", "1"): "suspend", ("suspension", "0"): "reinstate"}


async def update_status(request: web.Request) -> web.Response:
    """Revoke, suspend or reinstate a credential this node issued, by its id."""
    signer = request.app[SIGNER]
    key = signer.authorize(request)
    body, credential_id = await _json_body(request, "credentialId")
    if not isinstance(credential_id, str):
        raise Problem(400, "malformed", "credentialId must be a string")
    updates = body.get("credentialStatus")
    if not isinstance(updates, list) or len(updates) != 1 or not isinstance(updates[0], Mapping):
        raise Problem(400, "malformed", "credentialStatus must be a list of one {statusPurpose, status} object")
    change = _CHANGES.get((str(updates[0].get("statusPurpose")), str(updates[0].get("status"))))
    if change is None:
        raise Problem(
            400,
            "malformed",
            "statusPurpose/status must be revocation/1, suspension/1 or suspension/0 (revocation is final)",
        )
    digest = signer.digest_of(credential_id)
    chain = request.app[APPLICATION]
    payload: Revoke | Suspend | Reinstate
    if change == "revoke":
        payload = Revoke(digest, 0)
    elif change == "suspend":
        payload = Suspend(digest, 6)
    else:
        payload = Reinstate(digest)
    event = sign_event(UnsignedEvent(chain.genesis.origin, chain.now_ms(), payload), key)
    admitted = chain.admit(event)
    return json_response({"credentialId": credential_id, "change": change, "event": admitted.event_id.hex()})


def _verify_checks(options: Mapping[str, Any]) -> tuple[str, ...]:
    wanted = options.get("checks", list(VERIFY_CHECKS))
    if not isinstance(wanted, list) or not wanted or not all(isinstance(c, str) for c in wanted):
        raise Problem(400, "malformed", f"options.checks must be a non-empty list of {', '.join(VERIFY_CHECKS)}")
    unknown = sorted(set(wanted) - set(VERIFY_CHECKS))
    if unknown:
        raise Problem(
            400,
            "unknown-option",
            f"options.checks: {', '.join(repr(c[:80]) for c in unknown[:10])} is not a check this node makes "
            f"(it makes {', '.join(VERIFY_CHECKS)})",
        )
    return tuple(c for c in VERIFY_CHECKS if c in wanted)


def _proof_binding(credential: Mapping[str, Any], options: Mapping[str, Any]) -> list[str]:
    """Why the credential's proof does not carry ``options.challenge`` / ``options.domain`` (one line for each)."""
    errors = []
    proof = credential.get("proof")
    proof = proof[0] if isinstance(proof, list) and len(proof) == 1 else proof
    for name in ("challenge", "domain"):
        expected = _option_text(options, name)
        if expected is None:
            continue
        got = proof.get(name) if isinstance(proof, dict) else None
        if got != expected:
            shown = "none" if got is None else repr(str(got)[:200])
            errors.append(f"the proof's {name} is {shown}, not {expected[:200]!r} as options.{name} requires")
    return errors


async def verify(request: web.Request) -> web.Response:
    """A verification report of a signed credential: proof against the issuer's key history, status, membership."""
    body, credential = await _json_body(request, "verifiableCredential")
    if not isinstance(credential, dict):
        raise Problem(400, "malformed", "verifiableCredential must be a JSON object")
    options = _options(body, VERIFY_OPTIONS)
    wanted = _verify_checks(options)
    binding = _proof_binding(credential, options)
    checks: list[str] = []
    errors: list[dict[str, str]] = []
    chain = request.app[APPLICATION]
    with chain.store.snapshot() as snap:
        view = snap.state_view()
        members = {m.did: m for m in (get_member(view, i) for i in get_directory(view).members) if m is not None}
        try:
            issuer = issuer_id(credential)
        except ProofError as exc:
            raise Problem(400, "malformed", str(exc)) from None
        member = members.get(issuer)
        outcomes: dict[str, str | None] = {}  # check -> None (passed) or why it failed
        outcomes["registry"] = None if member is not None else f"{issuer!r} is not a member of this network"
        if "proof" in wanted:
            outcomes["proof"] = binding[0] if binding else None
            if member is None:
                outcomes["proof"] = f"no key history for {issuer!r}: it is not a member of this network"
            elif not binding:
                document = member_did_document(member, request.app[ROSTER].issuer_keys(snap, member.id))
                try:
                    verify_credential(credential, did_document_resolver([document]))
                except (ProofError, DecodeError) as exc:
                    outcomes["proof"] = str(exc)
        record = get_credential(view, credential_digest(json.dumps(credential).encode()))
        if record is None:
            outcomes["status"] = "the ledger holds no issue of this credential"
        else:
            outcomes["status"] = None if record.status == Status.ACTIVE else f"the credential is {record.status}"
    for check in wanted:
        failed = outcomes[check]
        if failed is None:
            checks.append(check)
        else:
            errors.append({"check": check, "detail": failed})
    return json_response({"verified": not errors, "checks": checks, "warnings": [], "errors": errors})
