"""The `credledger-proof/v1` bundle: one self-contained JSON document a verifier checks offline (DESIGN §8).

A bundle holds, for one credential digest:

- ``checkpoint``: the latest commit certificate (a C2SP checkpoint note) and ``header``, the block header it
  certifies (base64 of its canonical encoding);
- ``validators``: the validator-set chain from genesis -- for every change, the header of the block before the
  new set takes over, its certificate by the set before, and the new set -- so a verifier holding only the genesis
  file can check who certified the checkpoint;
- ``credential``: the credential's state-map record (or null) with its proof against the header's state root;
- ``events``: the issue event and, if the credential was revoked or suspended, the event that did it, each with
  its RFC 6962 inclusion proof against the header's log root;
- ``issuer``: the issuing member's record and the issuer-key record, each with its state proof.

Verification (`verify_bundle`) follows DESIGN §8 in order and raises `ProofError` naming the failed step, or
returns a `Verdict`: valid, revoked, suspended, expired, or unknown -- with the certified time it holds as of.
Everything here is pure: bytes in, verdict or error out.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from credledger.ledger import codec, domains, encoding, merkle, smt
from credledger.ledger.block import Header, decode_header, verify_certified_header
from credledger.ledger.errors import DecodeError, VerificationError
from credledger.ledger.events import Event, Issue, Reinstate, Revoke, Suspend, decode_event
from credledger.ledger.genesis import Genesis
from credledger.ledger.keys import PublicKey
from credledger.ledger.note import Checkpoint, SignedNote
from credledger.ledger.smt import ProofLeaf, StateProof
from credledger.ledger.state import (
    CredentialRecord,
    IssuerKeyRecord,
    MemberRecord,
    Status,
    cred_key,
    issuer_key_key,
    member_key,
)
from credledger.ledger.times import iso_ms
from credledger.ledger.validators import ValidatorSet

FORMAT = "credledger-proof/v1"
#: Largest bundle a verifier will parse.
MAX_BUNDLE_BYTES = 4 * 1024 * 1024
#: Most validator-set changes a bundle may carry.
MAX_VALIDATOR_LINKS = 100_000

T = TypeVar("T")


class ProofError(VerificationError):
    """A bundle failed verification; `step` names the check (validators, certificate, state, inclusion, ...)."""

    code = "proof-invalid"

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


@dataclass(frozen=True, slots=True)
class StateEntry:
    """A state-map value (None = absent) and its proof."""

    value: bytes | None
    proof: StateProof


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event with its log index and inclusion proof against the checkpoint's log root."""

    index: int
    event: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ValidatorLink:
    """A certified header whose `next_validators_hash` hands over to `next_set` from the following height."""

    header: bytes
    certificate: str
    next_set: bytes


@dataclass(frozen=True, slots=True)
class Bundle:
    origin: str
    genesis_hash: bytes
    digest: bytes
    checkpoint: str
    header: bytes
    validators: tuple[ValidatorLink, ...]
    credential: StateEntry
    events: tuple[LoggedEvent, ...]
    member: StateEntry | None
    key: StateEntry | None

    # --- JSON --------------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "origin": self.origin,
            "genesis": self.genesis_hash.hex(),
            "digest": self.digest.hex(),
            "checkpoint": self.checkpoint,
            "header": _b64(self.header),
            "validators": [
                {"header": _b64(v.header), "certificate": v.certificate, "next": _b64(v.next_set)}
                for v in self.validators
            ],
            "credential": entry_to_json(self.credential),
            "events": events_to_json(self.events),
            "issuer": None
            if self.member is None or self.key is None
            else {"member": entry_to_json(self.member), "key": entry_to_json(self.key)},
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1)

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> Bundle:
        """Parse a bundle, strictly; DecodeError names the bad field."""
        data = encoding.from_json_text(data, "bundle", MAX_BUNDLE_BYTES)
        obj = _obj(data, "bundle")
        if obj.get("format") != FORMAT:
            raise DecodeError(f"bundle: format must be {FORMAT!r}, got {obj.get('format')!r}")
        links = _list(obj.get("validators"), "validators", MAX_VALIDATOR_LINKS)
        events = _list(obj.get("events"), "events", 2)
        issuer = obj.get("issuer")
        issuer_obj = None if issuer is None else _obj(issuer, "issuer")
        return cls(
            origin=_str(obj.get("origin"), "origin"),
            genesis_hash=_hex(obj.get("genesis"), "genesis", 32),
            digest=_hex(obj.get("digest"), "digest", 32),
            checkpoint=_str(obj.get("checkpoint"), "checkpoint"),
            header=_unb64(obj.get("header"), "header"),
            validators=tuple(
                ValidatorLink(
                    _unb64(_obj(v, f"validators[{i}]").get("header"), f"validators[{i}].header"),
                    _str(v.get("certificate"), f"validators[{i}].certificate"),
                    _unb64(v.get("next"), f"validators[{i}].next"),
                )
                for i, v in enumerate(links)
            ),
            credential=entry_from_json(obj.get("credential"), "credential"),
            events=tuple(
                LoggedEvent(
                    _int(_obj(e, f"events[{i}]").get("index"), f"events[{i}].index"),
                    _unb64(e.get("event"), f"events[{i}].event"),
                    tuple(_unb64(h, f"events[{i}].proof") for h in _list(e.get("proof"), f"events[{i}].proof", 64)),
                )
                for i, e in enumerate(events)
            ),
            member=None if issuer_obj is None else entry_from_json(issuer_obj.get("member"), "issuer.member"),
            key=None if issuer_obj is None else entry_from_json(issuer_obj.get("key"), "issuer.key"),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a verified bundle says about a credential, and every check that was made to say it."""

    status: str  # valid | revoked | suspended | expired | unknown
    digest: bytes
    origin: str
    height: int
    as_of_ms: int
    issuer: str | None = None
    issuer_name: str | None = None
    issued_ms: int | None = None
    issued_height: int | None = None
    expires_ms: int | None = None
    status_changed_ms: int | None = None
    reason: int | None = None
    checks: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "digest": self.digest.hex(),
            "origin": self.origin,
            "height": self.height,
            "as_of_ms": self.as_of_ms,
            "issuer": self.issuer,
            "issuer_name": self.issuer_name,
            "issued_ms": self.issued_ms,
            "issued_height": self.issued_height,
            "expires_ms": self.expires_ms,
            "status_changed_ms": self.status_changed_ms,
            "reason": self.reason,
            "checks": list(self.checks),
        }
        return out


def verify_bundle(bundle: Bundle, genesis: Genesis, *, now_ms: int | None = None) -> Verdict:
    """Verify `bundle` against the network's genesis; `now_ms` (default: the certified time) decides expiry."""
    checks: list[str] = []
    header, checkpoint = verify_anchor(bundle, genesis, checks)
    return verify_against(bundle, header, checkpoint, checks, now_ms=now_ms)


def verify_anchor(bundle: Bundle, genesis: Genesis, checks: list[str]) -> tuple[Header, Checkpoint]:
    """Step 1: the bundle's network, validator-set chain, certificate and header; the certified header."""
    if bundle.origin != genesis.origin or bundle.genesis_hash != genesis.hash():
        raise ProofError("network", f"bundle is for {bundle.origin!r}, the genesis given is for {genesis.origin!r}")
    checks.append(f"bundle belongs to network {genesis.origin} (genesis {genesis.hash().hex()[:16]})")

    # Step 1: validator-set chain, certificate, header.
    header = _step("header", lambda: decode_header(bundle.header))
    validators = _walk_validator_chain(bundle.validators, genesis, header.height, checks)
    note = _step("certificate", lambda: SignedNote.parse(bundle.checkpoint))
    checkpoint: Checkpoint = _step("certificate", lambda: verify_certified_header(header, note, validators))
    if header.origin != genesis.origin:
        raise ProofError("header", f"header origin {header.origin!r} is not {genesis.origin!r}")
    checks.append(
        f"checkpoint at height {header.height} (log size {header.log_size}) carries signatures of more than 2/3 of "
        f"the voting power of the {len(validators)} validators that certify it"
    )
    return header, checkpoint


def verify_against(
    bundle: Bundle, header: Header, checkpoint: Checkpoint, checks: list[str], *, now_ms: int | None = None
) -> Verdict:
    """Steps 2-4 for the bundle's credential, against a header `verify_anchor` certified."""
    origin = header.origin
    # Step 2: state proof of the credential record.
    key = cred_key(bundle.digest)
    _step("state", lambda: smt.verify_proof(header.state_root, key, bundle.credential.value, bundle.credential.proof))
    verdict = dict(digest=bundle.digest, origin=origin, height=header.height, as_of_ms=header.time_ms)
    if bundle.credential.value is None:
        checks.append("the state at that height proves that no credential with this digest was ever issued")
        return Verdict("unknown", checks=tuple(checks), **verdict)  # type: ignore[arg-type]
    record = _step("state", lambda: codec.decode(CredentialRecord, bundle.credential.value or b""))
    checks.append(f"the state proves the credential record (status {record.status}) at height {header.height}")

    # Step 2b: inclusion of the issue event (and the status event, if any).
    if not bundle.events:
        raise ProofError("inclusion", "the bundle carries no issue event")
    issue_entry = bundle.events[0]
    if issue_entry.index != record.issue_index:
        raise ProofError(
            "inclusion", f"issue event is at index {issue_entry.index}, the record says {record.issue_index}"
        )
    issue_event = _included(issue_entry, header, checkpoint, checks, "issue")
    payload = issue_event.payload
    if not isinstance(payload, Issue) or payload.digest != bundle.digest:
        raise ProofError("digest", "the included issue event is not the issue of this credential's digest")
    if payload.issuer != record.issuer:
        raise ProofError("record", f"issue event names issuer {payload.issuer}, the record says {record.issuer}")

    # Step 3: the issue signature under an issuer key valid at the issue height.
    _verify_issuer(bundle, header, record, issue_event, checks)

    # Step 4: the status.
    status_changed_ms = None
    reason = None
    if record.status_index is not None:
        if len(bundle.events) < 2:
            raise ProofError("inclusion", f"the record's status is {record.status} but no status event is included")
        status_entry = bundle.events[1]
        if status_entry.index != record.status_index:
            raise ProofError(
                "inclusion", f"status event is at index {status_entry.index}, the record says {record.status_index}"
            )
        status_event = _included(status_entry, header, checkpoint, checks, "status")
        expected: type[Revoke | Suspend | Reinstate] = {
            Status.REVOKED: Revoke,
            Status.SUSPENDED: Suspend,
            Status.ACTIVE: Reinstate,
        }[Status(record.status)]
        sp = status_event.payload
        if not isinstance(sp, Revoke | Suspend | Reinstate) or type(sp) is not expected or sp.digest != bundle.digest:
            raise ProofError("record", f"the status event is not a {expected.TAG} of this credential")
        status_changed_ms = status_event.time_ms
        reason = sp.reason if isinstance(sp, Revoke | Suspend) else None
    member = _decode_entry(bundle.member, MemberRecord)
    status = _status(record, header.time_ms if now_ms is None else now_ms)
    checks.append(f"result: {status} as of the certified time {iso_ms(header.time_ms)}")
    return Verdict(
        status,
        issuer=record.issuer,
        issuer_name=member.name if member else None,
        issued_ms=record.issued_ms,
        issued_height=record.issued_height,
        expires_ms=record.expires_ms,
        status_changed_ms=status_changed_ms,
        reason=reason,
        checks=tuple(checks),
        **verdict,  # type: ignore[arg-type]
    )


def _status(record: CredentialRecord, now_ms: int) -> str:
    if record.status == Status.REVOKED:
        return "revoked"
    if record.status == Status.SUSPENDED:
        return "suspended"
    if record.expires_ms is not None and record.expires_ms <= now_ms:
        return "expired"
    return "valid"


def _walk_validator_chain(
    links: tuple[ValidatorLink, ...], genesis: Genesis, height: int, checks: list[str]
) -> ValidatorSet:
    current = genesis.validator_set()
    starts = 1
    for i, link in enumerate(links):
        header = _step("validators", lambda link=link: decode_header(link.header))  # type: ignore[misc]
        if header.height < starts or header.height >= height:
            raise ProofError(
                "validators", f"link {i} is at height {header.height}, expected between {starts} and {height - 1}"
            )
        if header.validators_hash != current.hash():
            raise ProofError(
                "validators",
                f"gap in the validator-set chain: link {i} (height {header.height}) is certified by set "
                f"{header.validators_hash.hex()[:16]}, but the chain so far leads to {current.hash().hex()[:16]}",
            )
        note = _step("validators", lambda link=link: SignedNote.parse(link.certificate))  # type: ignore[misc]
        _step("validators", lambda h=header, n=note, c=current: verify_certified_header(h, n, c))  # type: ignore[misc]
        nxt = _step("validators", lambda link=link: codec.decode(ValidatorSet, link.next_set))  # type: ignore[misc]
        if nxt.hash() != header.next_validators_hash:
            raise ProofError("validators", f"link {i}: the new set does not match the certified header's hash")
        current, starts = nxt, header.height + 1
        checks.append(f"validator set changed after height {header.height}, certified by the set before")
    checks.append(f"validator-set chain links genesis to the set certifying height {height} ({len(links)} changes)")
    return current


def _included(entry: LoggedEvent, header: Header, checkpoint: Checkpoint, checks: list[str], what: str) -> Event:
    leaf = merkle.leaf_hash(entry.event)
    _step(
        "inclusion", lambda: merkle.verify_inclusion(leaf, entry.index, header.log_size, entry.proof, checkpoint.root)
    )
    event = _step("inclusion", lambda: decode_event(entry.event))
    checks.append(f"the {what} event is in the log at index {entry.index} of {header.log_size}")
    return event


def _verify_issuer(bundle: Bundle, header: Header, record: CredentialRecord, event: Event, checks: list[str]) -> None:
    if bundle.member is None or bundle.key is None:
        raise ProofError("issuer-key", "the bundle carries no issuer member or key record")
    member_entry, key_entry = bundle.member, bundle.key
    _step(
        "issuer-key",
        lambda: smt.verify_proof(header.state_root, member_key(record.issuer), member_entry.value, member_entry.proof),
    )
    _step(
        "issuer-key",
        lambda: smt.verify_proof(
            header.state_root, issuer_key_key(record.issuer, record.key_id), key_entry.value, key_entry.proof
        ),
    )
    key = _decode_entry(key_entry, IssuerKeyRecord)
    if key is None or _decode_entry(member_entry, MemberRecord) is None:
        raise ProofError("issuer-key", f"the state holds no record of issuer {record.issuer} or its key")
    if len(event.signatures) != 1:
        raise ProofError("issue-signature", f"an issue carries one signature, this one {len(event.signatures)}")
    sig = event.signatures[0]
    if (sig.member, sig.key_id) != (record.issuer, key.key_id):
        raise ProofError("issue-signature", f"signed by {sig.member}/{sig.key_id.hex()}, not the record's issuer key")
    public = PublicKey(record.issuer, key.public_key)
    _step("issue-signature", lambda: public.verify(domains.EVENT, event.signed_bytes(), sig.sig))
    checks.append(f"the issue event is signed by {record.issuer}'s issuer key {key.key_id.hex()}")
    h = record.issued_height
    if h < key.valid_from:
        raise ProofError(
            "issuer-key", f"key {key.key_id.hex()} became valid at {key.valid_from}, after the issue ({h})"
        )
    if key.compromised_since is not None and key.compromised_since <= h:
        raise ProofError(
            "issuer-key",
            f"key {key.key_id.hex()} is marked compromised since height {key.compromised_since}, "
            f"at or before the issue at height {h}",
        )
    if key.retired_at is not None and key.retired_at <= h:
        raise ProofError(
            "issuer-key", f"key {key.key_id.hex()} was retired at height {key.retired_at}, before the issue ({h})"
        )
    checks.append(f"the key was valid at the issue height {h} and is not marked compromised at or before it")


def _decode_entry(entry: StateEntry | None, cls: type[T]) -> T | None:
    if entry is None or entry.value is None:
        return None
    value = entry.value
    return _step("record", lambda: codec.decode(cls, value))


def _step(step: str, check: Callable[[], T]) -> T:
    try:
        return check()
    except ProofError:
        raise
    except (VerificationError, DecodeError, ValueError, KeyError) as exc:
        raise ProofError(step, str(exc)) from None


# --- JSON helpers --------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def events_to_json(events: Sequence[LoggedEvent]) -> list[dict[str, Any]]:
    """A bundle's logged events as JSON: each one's log index, encoding and inclusion proof."""
    return [{"index": e.index, "event": _b64(e.event), "proof": [_b64(h) for h in e.proof]} for e in events]


def entry_to_json(entry: StateEntry) -> dict[str, Any]:
    leaf = entry.proof.leaf
    return {
        "value": None if entry.value is None else _b64(entry.value),
        "proof": {
            "leaf": None if leaf is None else {"key": _b64(leaf.key), "value_hash": _b64(leaf.value_hash)},
            "siblings": [_b64(s) for s in entry.proof.siblings],
        },
    }


def entry_from_json(raw: Any, where: str) -> StateEntry:
    obj = _obj(raw, where)
    proof = _obj(obj.get("proof"), f"{where}.proof")
    leaf_raw = proof.get("leaf")
    leaf = None
    if leaf_raw is not None:
        leaf_obj = _obj(leaf_raw, f"{where}.proof.leaf")
        try:
            leaf = ProofLeaf(_unb64(leaf_obj.get("key"), "key"), _unb64(leaf_obj.get("value_hash"), "value_hash"))
        except ValueError as exc:
            raise DecodeError(f"{where}.proof.leaf: {exc}") from None
    siblings = tuple(_unb64(s, f"{where}.proof.siblings") for s in _list(proof.get("siblings"), "siblings", 256))
    try:
        state_proof = StateProof(leaf, siblings)
    except ValueError as exc:
        raise DecodeError(f"{where}.proof: {exc}") from None
    value = obj.get("value")
    return StateEntry(None if value is None else _unb64(value, f"{where}.value"), state_proof)


def _obj(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DecodeError(f"bundle: {where} must be an object")
    return raw


def _list(raw: Any, where: str, limit: int) -> list[Any]:
    if not isinstance(raw, list):
        raise DecodeError(f"bundle: {where} must be a list")
    if len(raw) > limit:
        raise DecodeError(f"bundle: {where} has {len(raw)} items, more than {limit}")
    return raw


def _str(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise DecodeError(f"bundle: {where} must be a string")
    return raw


def _int(raw: Any, where: str) -> int:
    if type(raw) is not int or raw < 0:
        raise DecodeError(f"bundle: {where} must be a non-negative integer")
    return raw


def _hex(raw: Any, where: str, size: int) -> bytes:
    value = encoding.from_hex(_str(raw, where), f"bundle: {where}")
    if len(value) != size:
        raise DecodeError(f"bundle: {where} must be {size} bytes")
    return value


def _unb64(raw: Any, where: str) -> bytes:
    return encoding.from_base64(_str(raw, where), f"bundle: {where}", canonical=False)
