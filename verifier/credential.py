"""Verify a credential against the ledger, offline, trusting only the genesis file: the API wallets and admissions
systems call.

    from credledger.verifier.credential import verify_credential
    report = verify_credential("badge.json", genesis="devnet/genesis.json", nodes=["http://127.0.0.1:8701"])
    print(report.status)

A credential is a JSON document (a W3C Verifiable Credential or an Open Badges 3.0 badge: its digest is SHA-256
of the RFC 8785 canonical form), any other document (SHA-256 of its bytes), or its digest as 64 hex digits. The
proof is a `credledger-proof/v1` bundle, fetched from any one node (each in turn until one gives a bundle that
verifies and is fresh enough) or read from a file the holder kept. It is checked with the ledger's pure verifier
(`ledger.bundle.verify_bundle`), so a node is never believed because it answered: a node whose bundle fails a
check is reported as misbehaving, by the step that failed, and the next node is asked.

Freshness: a bundle answers "as of" the certified time of its checkpoint. An answer that could still change --
valid, suspended, unknown -- needs a checkpoint no older than `max_age`; an older one is reported as stale (the
status is still given, but `Report.ok` is false). Revoked and expired are final, so they never go stale.

Only the standard library talks to nodes (urllib, through `verifier.client`); nothing here imports a server.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from credledger.ledger import codec
from credledger.ledger.bundle import MAX_BUNDLE_BYTES, Bundle, ProofError, Verdict, verify_bundle
from credledger.ledger.cosignature import QuorumNotMet
from credledger.ledger.digest import credential_digest, parse_digest
from credledger.ledger.errors import DecodeError, VerificationError
from credledger.ledger.events import reason_label
from credledger.ledger.genesis import Genesis, load_genesis
from credledger.ledger.note import SignedNote
from credledger.ledger.state import IssuerKeyRecord, MemberRecord
from credledger.ledger.times import iso_ms
from credledger.ledger.vc.did import member_method_id
from credledger.ledger.vc.errors import ProofError as VcProofError
from credledger.ledger.witnesspolicy import WitnessPolicy
from credledger.verifier.client import DEFAULT_TIMEOUT, NodeClient, NodeProblem, NodeUnreachable
from credledger.verifier.statuslists import (
    INVALID_STATUS_LIST,
    STATUS_LIST_STEP,
    check_status_lists,
    lists_by_url,
    node_fetcher,
)

#: How old a checkpoint may be for an answer that could still change (valid, suspended, unknown).
DEFAULT_MAX_AGE = timedelta(minutes=15)
#: Statuses a later block cannot change: they need no fresh checkpoint.
FINAL_STATUSES = frozenset({"revoked", "expired"})
#: The status of a report for which no source gave a bundle that verifies.
UNVERIFIED = "unverified"
#: The status of a registered credential whose own Data Integrity proof fails (`credential-proof` says why).
INVALID_PROOF = "invalid-proof"
#: Largest credential document read to compute its digest.
MAX_CREDENTIAL_BYTES = 64 * 1024 * 1024

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")

Source = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Check:
    """One check made while verifying, and its outcome. `step` names it as `ProofError.step` does."""

    step: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class SourceFault:
    """A node or bundle file that did not give a usable answer.

    `kind` is "unreachable" (no answer, or not a credledger answer), "refused" (the node answered with a problem,
    e.g. it has no checkpoint yet), "unreadable" (a bundle file that cannot be read), or "invalid-proof" (it
    served a bundle that fails verification: the node misbehaved, or what it serves was tampered with on the
    way) -- then `step` names the failed check.
    """

    source: str
    kind: str
    detail: str
    step: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "step": self.step, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of verifying one credential."""

    #: valid | revoked | suspended | expired | unknown, or "unverified" when no source gave a verifying bundle.
    status: str
    digest: bytes
    #: The node URL or bundle file whose bundle verified (None if none did).
    source: str | None
    verdict: Verdict | None
    checks: tuple[Check, ...]
    #: The answer could still change and its checkpoint is older than `max_age_ms`.
    stale: bool
    #: How old the checkpoint was when verified (None if none verified).
    age_ms: int | None
    max_age_ms: int
    faults: tuple[SourceFault, ...] = field(default=())
    bundle: Bundle | None = None

    @property
    def verified(self) -> bool:
        """A bundle verified: `status` is the ledger's certified answer (though it may be stale)."""
        return self.verdict is not None

    @property
    def ok(self) -> bool:
        """The credential is valid, proven by a fresh enough checkpoint."""
        return self.status == "valid" and not self.stale

    @property
    def misbehaving(self) -> tuple[SourceFault, ...]:
        """The sources that served a bundle failing verification."""
        return tuple(f for f in self.faults if f.kind == "invalid-proof")

    @property
    def issuer(self) -> str | None:
        return self.verdict.issuer if self.verdict else None

    @property
    def issuer_name(self) -> str | None:
        return self.verdict.issuer_name if self.verdict else None

    @property
    def issued_ms(self) -> int | None:
        return self.verdict.issued_ms if self.verdict else None

    @property
    def expires_ms(self) -> int | None:
        return self.verdict.expires_ms if self.verdict else None

    @property
    def as_of_ms(self) -> int | None:
        """The certified time the answer holds as of."""
        return self.verdict.as_of_ms if self.verdict else None

    def to_json(self) -> str:
        """The report as JSON text (the document `to_dict` returns), as `credledger verify --json` prints it."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict: times both as ISO 8601 and as milliseconds since the epoch."""
        verdict = self.verdict
        reason = verdict.reason if verdict else None
        return {
            "status": self.status,
            "ok": self.ok,
            "digest": self.digest.hex(),
            "source": self.source,
            "stale": self.stale,
            "age_ms": self.age_ms,
            "max_age_ms": self.max_age_ms,
            "origin": verdict.origin if verdict else None,
            "height": verdict.height if verdict else None,
            "as_of": _iso(self.as_of_ms),
            "as_of_ms": self.as_of_ms,
            "issuer": self.issuer,
            "issuer_name": self.issuer_name,
            "issued": _iso(self.issued_ms),
            "issued_ms": self.issued_ms,
            "expires": _iso(self.expires_ms),
            "expires_ms": self.expires_ms,
            "status_changed": _iso(verdict.status_changed_ms if verdict else None),
            "reason": reason,
            "reason_name": None if reason is None else reason_label(reason),
            "checks": [c.to_dict() for c in self.checks],
            "faults": [f.to_dict() for f in self.faults],
        }


def verify_credential(
    credential: Source | bytes,
    *,
    genesis: Source | Genesis,
    nodes: Sequence[str] = (),
    bundle: Source | Bundle | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    now_ms: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    witnesses: WitnessPolicy | None = None,
    status_lists: Sequence[Source | Mapping[str, Any]] = (),
    check_status_lists: bool = True,
) -> Report:
    """Verify `credential` (a file path, 64 hex digits, or the document's bytes) against `genesis`.

    A signed credential's Bitstring Status Lists are checked against the certified state
    (`verifier.statuslists`): `status_lists` are list credentials the caller fetched (files or documents, matched
    by their ``id``); any other is fetched from the node whose bundle verified. A list that disagrees with the
    state proof, or is not signed by the issuer, makes the status `invalid-status-list`. `check_status_lists=False`
    leaves the lists alone.

    The proof comes from `bundle` (a kept bundle file, tried first) or from `nodes`, asked in turn. With
    `witnesses`, a bundle counts only if its checkpoint carries the cosignatures the policy requires (C2SP
    tlog-policy; `WitnessPolicy.flat` for "any K of these witnesses"); otherwise the source is a fault of kind
    `unwitnessed` naming the missing witnesses. Returns a
    `Report` whatever the sources did; raises `ValueError` for unusable arguments (no source, a bad node URL)
    and `CredledgerError` subclasses for a credential or genesis file that cannot be read.
    """
    if not nodes and bundle is None:
        raise ValueError("give at least one node URL or a bundle file to verify against")
    trusted = genesis if isinstance(genesis, Genesis) else load_genesis(os.fspath(genesis))
    digest = digest_of(credential)
    document = signed_document(credential)
    given = lists_by_url(status_lists) if check_status_lists else {}
    readers = [NodeClient(url, timeout=timeout) for url in nodes]  # ValueError for a malformed URL, before any I/O
    now = int(time.time() * 1000) if now_ms is None else now_ms
    limit = int(max_age.total_seconds() * 1000)
    faults: list[SourceFault] = []
    best: Report | None = None
    sources: list[tuple[str, NodeClient | Bundle | Source]] = []
    if bundle is not None:
        sources.append((bundle_name(bundle), bundle))
    sources.extend((reader.base_url, reader) for reader in readers)
    for name, source in sources:
        report = _from_source(
            source,
            name,
            digest=digest,
            trusted=trusted,
            now=now,
            limit=limit,
            witnesses=witnesses,
            document=document,
        )
        if isinstance(report, Report) and document is not None and check_status_lists:
            report = _with_status_lists(report, document, given, source)
        if isinstance(report, SourceFault):
            faults.append(report)
            continue
        if best is None or (best.age_ms or 0) > (report.age_ms or 0):
            best = report
        if not report.stale:
            break
    if best is None:
        failed = tuple(Check(f.step or f.kind, False, f"{f.source}: {f.detail}") for f in faults)
        return Report(UNVERIFIED, digest, None, None, failed, False, None, limit, tuple(faults))
    return Report(
        best.status,
        digest,
        best.source,
        best.verdict,
        best.checks,
        best.stale,
        best.age_ms,
        limit,
        tuple(faults),
        best.bundle,
    )


@dataclass(frozen=True, slots=True)
class Fetched:
    """A bundle one node served (parsed, not verified), and the sources that gave none before it."""

    bundle: Bundle | None
    source: str | None
    faults: tuple[SourceFault, ...]


def fetch_bundle(digest: bytes, nodes: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> Fetched:
    """Ask `nodes` in turn for the bundle of `digest` and return the first that parses and is for that digest.

    Nothing is verified here (there is no trust root): `verify_credential` is what checks a bundle.
    """
    readers = [NodeClient(url, timeout=timeout) for url in nodes]
    faults: list[SourceFault] = []
    for reader in readers:
        try:
            bundle = reader.bundle(digest)
        except NodeUnreachable as exc:
            faults.append(SourceFault(reader.base_url, "unreachable", str(exc)))
            continue
        except NodeProblem as exc:
            faults.append(SourceFault(reader.base_url, "refused", f"{exc.status} {exc.code}: {exc.detail}"))
            continue
        except DecodeError as exc:
            faults.append(SourceFault(reader.base_url, "invalid-proof", str(exc), "format"))
            continue
        if bundle.digest != digest:
            detail = f"the bundle is for credential {bundle.digest.hex()}, not {digest.hex()}"
            faults.append(SourceFault(reader.base_url, "invalid-proof", detail, "digest"))
            continue
        return Fetched(bundle, reader.base_url, tuple(faults))
    return Fetched(None, None, tuple(faults))


def digest_of(credential: Source | bytes) -> bytes:
    """The ledger digest of a credential given as its bytes, a file path, or 64 hex digits."""
    if isinstance(credential, bytes):
        return credential_digest(credential)
    text = os.fspath(credential)
    if isinstance(credential, str) and _HEX64.fullmatch(text):
        return parse_digest(text.lower())
    try:
        with open(text, "rb") as file:
            data = file.read(MAX_CREDENTIAL_BYTES + 1)
    except OSError as exc:
        raise DecodeError(f"{text}: not a 64-hex-digit digest, and cannot read it as a file ({exc.strerror})") from None
    if len(data) > MAX_CREDENTIAL_BYTES:
        raise DecodeError(f"{text}: larger than {MAX_CREDENTIAL_BYTES} bytes")
    return credential_digest(data)


def read_bundle(path: Source) -> Bundle:
    """Parse a bundle file (OSError if it cannot be read, DecodeError if it is not a `credledger-proof/v1` bundle)."""
    with open(path, "rb") as file:
        data = file.read(MAX_BUNDLE_BYTES + 1)
    return Bundle.from_json(data)


def bundle_name(bundle: Source | Bundle) -> str:
    return "bundle given" if isinstance(bundle, Bundle) else os.fspath(bundle)


def _load(source: NodeClient | Bundle | Source, digest: bytes) -> Bundle:
    if isinstance(source, NodeClient):
        return source.bundle(digest)
    if isinstance(source, Bundle):
        return source
    return read_bundle(source)


def signed_document(credential: Source | bytes) -> dict[str, Any] | None:
    """The credential's JSON document if it carries a Data Integrity proof (a standard signed credential)."""
    if isinstance(credential, str) and _HEX64.fullmatch(credential):
        return None
    try:
        if isinstance(credential, bytes):
            data = credential
        else:
            with open(os.fspath(credential), "rb") as file:
                data = file.read(MAX_CREDENTIAL_BYTES + 1)
        document = json.loads(data)
    except (OSError, ValueError, RecursionError):
        return None  # not JSON: a document hashed as bytes, which has no proof of its own
    return document if isinstance(document, dict) and "proof" in document else None


def credential_proof_check(document: dict[str, Any], bundle: Bundle) -> Check:
    """Check a signed credential's Data Integrity proof against the ledger's records in a verified bundle: it must be
    made by the issuer key that registered the credential, named under the issuing member's DID."""
    # Imported here: the JSON-LD processor takes most of a second to load, and most credentials carry no proof.
    from credledger.ledger.vc.proof import verify_credential as verify_signed  # noqa: PLC0415

    if bundle.member is None or bundle.key is None or bundle.member.value is None or bundle.key.value is None:
        return Check("credential-proof", False, "the ledger holds no issuer record to check the proof against")
    member = codec.decode(MemberRecord, bundle.member.value)
    key = codec.decode(IssuerKeyRecord, bundle.key.value)
    try:
        expected = member_method_id(member.did, key.key_id, key.public_key)
    except VcProofError as exc:
        return Check("credential-proof", False, f"{exc.check}: {exc.detail}")

    def resolve(method: str) -> bytes:
        if method != expected:
            raise VcProofError("verification-method", f"{method!r} is not the key that registered it ({expected})")
        return key.public_key

    try:
        verify_signed(document, resolve)
    except VcProofError as exc:
        return Check("credential-proof", False, f"{exc.check}: {exc.detail}")
    except DecodeError as exc:
        return Check("credential-proof", False, str(exc))
    return Check("credential-proof", True, f"eddsa-rdfc-2022 proof by {expected}, the key that registered it")


def _from_source(
    source: NodeClient | Bundle | Source,
    name: str,
    *,
    digest: bytes,
    trusted: Genesis,
    now: int,
    limit: int,
    witnesses: WitnessPolicy | None,
    document: dict[str, Any] | None = None,
) -> Report | SourceFault:
    """The report on one source's bundle, or why that source gave none that verifies."""
    try:
        candidate = _load(source, digest)
        report = _check(candidate, digest, trusted, source=name, now_ms=now, limit_ms=limit, document=document)
        return report if witnesses is None else _witnessed(report, candidate, witnesses)
    except QuorumNotMet as exc:
        return SourceFault(name, "unwitnessed", str(exc), "witnesses")
    except NodeUnreachable as exc:
        return SourceFault(name, "unreachable", str(exc))
    except NodeProblem as exc:
        return SourceFault(name, "refused", f"{exc.status} {exc.code}: {exc.detail}")
    except (ProofError, DecodeError) as exc:
        step, detail = (exc.step, exc.detail) if isinstance(exc, ProofError) else ("format", str(exc))
        return SourceFault(name, "invalid-proof", detail, step)
    except OSError as exc:
        return SourceFault(name, "unreadable", f"cannot read it ({exc.strerror})")


def _with_status_lists(
    report: Report, document: dict[str, Any], given: Mapping[str, dict[str, Any]], source: NodeClient | Bundle | Source
) -> Report:
    """`report` with a check of each of the signed credential's status lists (`verifier.statuslists`)."""
    if (
        report.verdict is None
        or report.bundle is None
        or report.verdict.issuer is None
        or report.status == INVALID_PROOF
    ):
        return report
    fetch = find_key = None
    if isinstance(source, NodeClient):
        client = source
        fetch = node_fetcher(client.get_json)
        issuer = report.verdict.issuer

        def find_key(method: str) -> bytes:
            from credledger.ledger.vc.did import key_in_did_document  # noqa: PLC0415

            return key_in_did_document(client.did_document(issuer), method)

    outcomes = check_status_lists(
        document, report.bundle, report.verdict, given=given, fetch=fetch, find_key=find_key, source=report.source or ""
    )
    if not outcomes:
        return report
    checks = tuple(Check(STATUS_LIST_STEP, o.ok, o.detail) for o in outcomes)
    refused = any(o.refused for o in outcomes)
    return replace(report, checks=(*report.checks, *checks), status=INVALID_STATUS_LIST if refused else report.status)


def _witnessed(report: Report, bundle: Bundle, policy: WitnessPolicy) -> Report:
    """`report` with a check that the bundle's checkpoint satisfies the witness policy; `QuorumNotMet` if it does
    not, `ProofError` if a cosignature line of a listed witness is invalid."""
    try:
        cosigned = policy.check(SignedNote.parse(bundle.checkpoint))
    except QuorumNotMet:
        raise
    except (VerificationError, DecodeError) as exc:
        raise ProofError("witnesses", str(exc)) from None
    names = ", ".join(sorted(cosigned)) or "no witness (the policy requires none)"
    check = Check("witnesses", True, f"the checkpoint is cosigned by {names}, as the witness policy requires")
    return replace(report, checks=(*report.checks, check))


def _check(
    bundle: Bundle,
    digest: bytes,
    genesis: Genesis,
    *,
    source: str,
    now_ms: int,
    limit_ms: int,
    document: dict[str, Any] | None = None,
) -> Report:
    """Verify one bundle for `digest`; raises ProofError naming the failed step."""
    if bundle.digest != digest:
        # A bundle proves what it says about its own digest; one for another credential says nothing about ours.
        raise ProofError("digest", f"the bundle is for credential {bundle.digest.hex()}, not {digest.hex()}")
    try:
        verdict = verify_bundle(bundle, genesis, now_ms=now_ms)
    except ProofError:
        raise
    except (VerificationError, DecodeError) as exc:  # the verifier names its steps; anything else is the bundle's
        raise ProofError("bundle", str(exc)) from None
    checks = [Check("digest", True, f"the bundle is for credential {digest.hex()}")]
    checks.extend(Check("proof", True, text) for text in verdict.checks)
    age = now_ms - verdict.as_of_ms
    stale = verdict.status not in FINAL_STATUSES and age > limit_ms
    if verdict.status in FINAL_STATUSES:
        checks.append(Check("freshness", True, f"{verdict.status} is final: it holds however old the checkpoint is"))
    else:
        checks.append(
            Check(
                "freshness",
                not stale,
                f"the checkpoint is {_duration(age)} old; an answer that can still change needs one at most "
                f"{_duration(limit_ms)} old",
            )
        )
    status = verdict.status
    if document is not None and verdict.issuer is not None:
        proof = credential_proof_check(document, bundle)
        checks.append(proof)
        if not proof.ok:
            status = INVALID_PROOF
    return Report(status, digest, source, verdict, tuple(checks), stale, age, limit_ms, (), bundle)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


def _duration(ms: int) -> str:
    if ms < 0:
        return f"0 s (its time is {_duration(-ms)} ahead of this clock)"
    seconds = ms / 1000
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"
