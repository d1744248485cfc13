"""C2SP tlog-policy: which logs and witnesses a verifier trusts, and the witness quorum a checkpoint needs.

A policy (c2sp.org/tlog-policy) lists logs (`log <vkey> [<url>]`), witnesses (`witness <name> <vkey> [<url>]`),
groups (`group <name> all|any|<k> <member>...`) and exactly one `quorum <name>` line, where `none` means no
cosignature is required. A checkpoint satisfies the policy if one listed log signed it and the quorum witnessed it:
a witness witnesses by cosigning (tlog-cosignature), a group when at least k of its members witnessed it.

`WitnessPolicy.flat` builds the simple policy of repeatable `--witness VKEY` flags and `--witness-quorum K`: one
group of all the witnesses (named by their key names) with threshold K.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from credledger.ledger.cosignature import Cosignature, CosignerKey, QuorumNotMet, verify_cosignature
from credledger.ledger.errors import DecodeError, VerificationError
from credledger.ledger.keys import PublicKey
from credledger.ledger.note import SignedNote, open_note
from credledger.ledger.treehead import TreeHead

#: Largest policy file read (tlog-policy §Implementation limits asks for at least 32 logs, witnesses and groups).
MAX_POLICY_BYTES = 256 * 1024
MAX_ENTRIES = 256
#: The predefined name (tlog-policy §Defining the quorum).
NONE = "none"
#: tlog-policy §Structure: items are separated by ASCII spaces and tabs only.
_WHITESPACE = re.compile(r"[ \t]+")
_THRESHOLD = re.compile(r"[1-9][0-9]{0,5}")
#: tlog-policy §Character set: tab, newline, 0x20-0x7E and 0x80-0xFF only.
_FORBIDDEN = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Group:
    """A group that witnesses a checkpoint when at least `threshold` of its members do."""

    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    """Trusted logs, witnesses by policy name, groups, and the name of the quorum (`none`: no cosignatures)."""

    logs: tuple[PublicKey, ...]
    witnesses: tuple[tuple[str, CosignerKey], ...]
    groups: tuple[Group, ...]
    quorum: str

    @classmethod
    def flat(cls, logs: Sequence[PublicKey], witness_vkeys: Sequence[str], quorum: int) -> WitnessPolicy:
        """The policy of `--witness VKEY` (repeatable) and `--witness-quorum K`: any K of the witnesses."""
        witnesses = [CosignerKey.from_vkey(text) for text in witness_vkeys]
        names = [w.name for w in witnesses]
        if len(set(names)) != len(names):
            raise DecodeError(f"witnesses: a key name appears twice in {', '.join(names)}")
        if not 0 <= quorum <= len(witnesses):
            raise DecodeError(f"witness quorum must be between 0 and the {len(witnesses)} witnesses, got {quorum}")
        if quorum == 0:
            return cls(tuple(logs), tuple((w.name, w) for w in witnesses), (), NONE)
        group = Group("witnesses", quorum, tuple(names))
        return cls(tuple(logs), tuple((w.name, w) for w in witnesses), (group,), group.name)

    @classmethod
    def parse(cls, data: bytes) -> WitnessPolicy:
        """Parse a tlog-policy file; `DecodeError` names the line and what is wrong with it."""
        if len(data) > MAX_POLICY_BYTES:
            raise DecodeError(f"policy: {len(data)} bytes exceeds the limit of {MAX_POLICY_BYTES}")
        bad = _FORBIDDEN.search(data)
        if bad:
            raise DecodeError(f"policy: control character {bad.group()[0]:#04x} is not allowed")
        # High-bit octets are opaque (§Character set): surrogateescape keeps names byte-exact.
        text = data.decode("utf-8", errors="surrogateescape")
        builder = _Builder()
        for number, raw in enumerate(text.split("\n"), 1):
            fields = [f for f in _WHITESPACE.split(raw) if f]
            if not fields or fields[0].startswith("#"):
                continue
            try:
                builder.line(fields)
            except DecodeError as exc:
                raise DecodeError(f"policy line {number}: {exc}") from None
        return builder.build()

    def check(self, note: SignedNote) -> dict[str, Cosignature]:
        """Check `note` is signed by a listed log and witnessed by the quorum; return the cosignatures by name.

        Raises `VerificationError` (no listed log of the checkpoint's origin signed it), `BadSignature` (a known
        key's line is invalid) or `QuorumNotMet` naming the witnesses whose cosignatures are missing. A policy with
        no log lines checks only the cosignatures (tlog-policy: the log may be known from context).
        """
        if self.logs:
            self._check_log(note)
        by_key = {(key.name, key.key_id): (name, key) for name, key in self.witnesses}
        found: dict[str, Cosignature] = {}
        for sig in note.signatures:
            match = by_key.get((sig.name, sig.key_id))
            if match is not None and match[0] not in found:
                found[match[0]] = verify_cosignature(note.text, sig, match[1])
        if self.quorum == NONE:
            return found
        groups = {g.name: g for g in self.groups}
        if not self._witnessed(self.quorum, groups, set(found)):
            missing = [name for name, _ in self.witnesses if name not in found]
            raise QuorumNotMet(
                f"checkpoint does not satisfy witness quorum {self.quorum!r} ({self._describe(groups)}); "
                f"cosigned by: {', '.join(sorted(found)) or 'nobody'}; missing: {', '.join(missing)}",
                missing,
            )
        return found

    def _check_log(self, note: SignedNote) -> None:
        """tlog-policy §Defining a log: a listed log's key signed it, and that key's name is the origin line."""
        try:
            origin = TreeHead.parse(note.text).origin
        except DecodeError as exc:
            raise VerificationError(f"policy: {exc}") from None
        logs = [key for key in self.logs if key.name == origin]
        if not logs:
            raise VerificationError(f"policy: no listed log has the origin {origin[:100]!r}")
        open_note(note, logs)

    def _witnessed(self, name: str, groups: dict[str, Group], cosigned: set[str]) -> bool:
        group = groups.get(name)
        if group is None:
            return name in cosigned
        return sum(self._witnessed(m, groups, cosigned) for m in group.members) >= group.threshold

    def _describe(self, groups: dict[str, Group]) -> str:
        return "; ".join(f"{g.name}: {g.threshold} of {', '.join(g.members)}" for g in groups.values()) or "one witness"


class _Builder:
    """Accumulates policy lines, enforcing that names are defined before use and keys are not duplicated."""

    def __init__(self) -> None:
        self.logs: list[PublicKey] = []
        self.witnesses: dict[str, CosignerKey] = {}
        self.groups: dict[str, Group] = {}
        self.quorum: str | None = None
        self.used: set[str] = set()

    def line(self, fields: list[str]) -> None:
        keyword, args = fields[0], fields[1:]
        if keyword == "log" and len(args) in (1, 2):
            self._log(args[0])
        elif keyword == "witness" and len(args) in (2, 3):
            self._witness(args[0], args[1])
        elif keyword == "group" and len(args) >= 3:
            self._group(args[0], args[1], args[2:])
        elif keyword == "quorum" and len(args) == 1:
            self._quorum(args[0])
        else:
            raise DecodeError(
                f"expected log, witness, group or quorum with its arguments, got {' '.join(fields)[:80]!r}"
            )
        if len(self.logs) + len(self.witnesses) + len(self.groups) > MAX_ENTRIES:
            raise DecodeError(f"more than {MAX_ENTRIES} logs, witnesses and groups")

    def _log(self, vkey: str) -> None:
        key = PublicKey.from_vkey(vkey)
        if any(k.raw == key.raw for k in self.logs):
            raise DecodeError(f"log key {key.name} is listed twice")
        self.logs.append(key)

    def _witness(self, name: str, vkey: str) -> None:
        self._new_name(name)
        key = CosignerKey.from_vkey(vkey)
        if any(k.raw == key.raw for k in self.witnesses.values()):
            raise DecodeError(f"witness {name}: its key is already listed")
        self.witnesses[name] = key

    def _group(self, name: str, threshold: str, members: list[str]) -> None:
        self._new_name(name)
        for member in members:
            if member not in self.witnesses and member not in self.groups:
                raise DecodeError(f"group {name}: member {member!r} is not defined on an earlier line")
            if member in self.used:
                raise DecodeError(f"group {name}: {member!r} is already a member of a group")
        if len(set(members)) != len(members):
            raise DecodeError(f"group {name}: a member is listed twice")
        if threshold == "all":
            k = len(members)
        elif threshold == "any":
            k = 1
        elif _THRESHOLD.fullmatch(threshold) and int(threshold) <= len(members):
            k = int(threshold)
        else:
            raise DecodeError(f"group {name}: threshold must be all, any or 1 to {len(members)}, got {threshold!r}")
        self.used.update(members)
        self.groups[name] = Group(name, k, tuple(members))

    def _quorum(self, name: str) -> None:
        if self.quorum is not None:
            raise DecodeError("a second quorum line")
        if name != NONE and name not in self.witnesses and name not in self.groups:
            raise DecodeError(f"quorum {name!r} is not defined on an earlier line")
        self.quorum = name

    def _new_name(self, name: str) -> None:
        if name == NONE or name in self.witnesses or name in self.groups:
            raise DecodeError(f"name {name!r} is already defined (or reserved)")

    def build(self) -> WitnessPolicy:
        if self.quorum is None:
            raise DecodeError("policy: no quorum line")
        return WitnessPolicy(tuple(self.logs), tuple(self.witnesses.items()), tuple(self.groups.values()), self.quorum)
