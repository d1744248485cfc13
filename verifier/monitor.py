"""Split-view monitoring: follow several nodes' checkpoints and catch two certified views that cannot both be true.

Theory of operation
-------------------
Every round, the monitor fetches each node's latest checkpoint note (`GET /v1/checkpoint`) and verifies its
certificate: more than 2/3 of the voting power of the validator set that certifies its height. That set comes
from the genesis file and the certified validator-set chain, which the monitor learns from a node's proof bundle
(verified with `ledger.bundle.verify_bundle`) whenever a note does not verify under the sets it knows already.

Each verified checkpoint is then held against what the monitor has seen:

- *same height*: every certified checkpoint of one height must name the same block header (and log size and
  root). Two that differ are a split view, and the two notes are the evidence: anyone holding the validators'
  keys can check both, and only a colluding or compromised super-majority could have signed both.
- *a node's successive checkpoints*: the node must prove, with an RFC 9162 consistency proof, that its new log
  extends its previous one;
- *checkpoints of different nodes*: the node further ahead must prove that its log extends the other node's.

A consistency proof that fails does not by itself prove a split view (a node may serve a broken proof), so the
monitor then fetches the certified block at the lower checkpoint's height from the node further ahead and
compares headers: a different certified header at the same height is a split view with two notes as evidence;
the same header means the node served a bad proof, a fault that is reported but is no split view.

Witness sources (`witnesses=` URLs of witness nodes, `GET /witnessed-checkpoint`) add the view of a witness: the
checkpoint of this log it last cosigned, verified like a node's. It is held against every other view at the same
height, and against each view's size and root (a larger log at a lower height, or one size with two roots, is a
split view); a witness serves no proofs, so a node further ahead proves it extends the witness's checkpoint, while
a witness further ahead is checked only by height, size and root. So a monitor that reaches a lying node and a
witness sees the split even when it reaches no honest node.

Evidence is written as JSON (`SplitView.to_json`), each note verbatim. With a witness policy, each checkpoint also
names the policy's witnesses whose valid cosignatures it carries (`cosigned_by`): of a split view's two notes, the
one outside witnesses vouched for and the one they never saw (a witness refuses to cosign a fork of what it holds).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from credledger.ledger import codec, merkle
from credledger.ledger.block import decode_header, verify_certificate
from credledger.ledger.bundle import ProofError, verify_bundle
from credledger.ledger.cosignature import QuorumNotMet, verified_cosignatures
from credledger.ledger.errors import DecodeError, VerificationError
from credledger.ledger.genesis import Genesis
from credledger.ledger.note import Checkpoint, SignedNote
from credledger.ledger.validators import ValidatorSet
from credledger.ledger.witnesspolicy import WitnessPolicy
from credledger.verifier.client import DEFAULT_TIMEOUT, NodeClient, NodeProblem, NodeUnreachable

#: A digest no credential has: the monitor fetches its (absence) bundle only for the validator-set chain.
PROBE_DIGEST = bytes(32)
#: Most checkpoints remembered by height (older ones are forgotten first).
MAX_REMEMBERED = 100_000


@dataclass(frozen=True, slots=True)
class Seen:
    """A verified checkpoint and where it came from."""

    node: str
    note: str
    checkpoint: Checkpoint
    #: The witnesses of the monitor's policy whose valid cosignatures the note carries.
    cosigned_by: tuple[str, ...] = ()
    #: "node": a node's latest checkpoint; "witness": the checkpoint a witness node holds for the log.
    source: str = "node"

    def to_json(self) -> dict[str, Any]:
        c = self.checkpoint
        return {
            "node": self.node,
            "source": self.source,
            "height": c.height,
            "round": c.round,
            "log_size": c.size,
            "log_root": merkle.b64(c.root),
            "header_hash": merkle.b64(c.header_hash),
            "note": self.note,
            "cosigned_by": list(self.cosigned_by),
        }


@dataclass(frozen=True, slots=True)
class SplitView:
    """Two certified checkpoints that cannot both be true."""

    first: Seen
    second: Seen
    detail: str
    detected_ms: int

    def to_json(self, genesis: Genesis) -> dict[str, Any]:
        return {
            "kind": "split-view",
            "origin": genesis.origin,
            "genesis": genesis.hash().hex(),
            "detected_ms": self.detected_ms,
            "detail": self.detail,
            "first": self.first.to_json(),
            "second": self.second.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Fault:
    """A node that could not be followed this round, or served something that fails a check (no split view)."""

    node: str
    kind: str  # unreachable | refused | invalid-checkpoint | bad-proof
    detail: str


@dataclass
class MonitorResult:
    rounds: int = 0
    split_views: list[SplitView] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    latest: dict[str, Seen] = field(default_factory=dict)


class Monitor:
    """Follows `nodes` against `genesis`. `report` hears each split view and fault as it is found."""

    def __init__(
        self,
        nodes: Sequence[str],
        genesis: Genesis,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        evidence: str | os.PathLike[str] | None = None,
        report: Callable[[SplitView | Fault | Seen], None] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        witnesses: WitnessPolicy | None = None,
        witness_sources: Sequence[str] = (),
    ) -> None:
        if not nodes:
            raise ValueError("give at least one node to monitor")
        self.readers = [NodeClient(url, timeout=timeout) for url in nodes]
        #: Witness nodes whose held checkpoint of this log is one more view (`GET /witnessed-checkpoint`).
        self.witness_readers = [NodeClient(url, timeout=timeout) for url in witness_sources]
        self.genesis = genesis
        self.evidence = Path(evidence) if evidence is not None else None
        self.report = report or (lambda _item: None)
        #: Checkpoints without the cosignatures this policy requires are reported as `unwitnessed` faults.
        self.witnesses = witnesses
        self.clock = clock
        self.sleep = sleep
        #: Validator sets by the height from which they certify.
        self._schedule: list[tuple[int, ValidatorSet]] = [(1, genesis.validator_set())]
        self._by_height: dict[int, Seen] = {}
        self._split_keys: set[tuple[str, str]] = set()
        self.result = MonitorResult()

    def run(self, *, rounds: int | None = None, duration: float | None = None, interval: float = 5.0) -> MonitorResult:
        """Poll every node each `interval` seconds until `rounds` rounds or `duration` seconds have passed."""
        deadline = None if duration is None else self.clock() + duration
        while True:
            self.poll()
            if rounds is not None and self.result.rounds >= rounds:
                break
            if deadline is not None and self.clock() + interval > deadline:
                break
            self.sleep(interval)
        return self.result

    def poll(self) -> None:
        """One round: every node's checkpoint, then the cross-node checks."""
        for reader in self.readers:
            seen = self._fetch(reader)
            if seen is None:
                continue
            previous = self.result.latest.get(reader.base_url)
            self.result.latest[reader.base_url] = seen
            self._remember(seen)
            if previous is not None and previous.checkpoint != seen.checkpoint:
                self._check_extends(reader, previous, seen)
        for reader in self.witness_readers:
            seen = self._fetch_witnessed(reader)
            if seen is None:
                continue
            label = f"witness {reader.base_url}"
            previous = self.result.latest.get(label)
            self.result.latest[label] = seen
            self._remember(seen)
            if previous is not None and previous.checkpoint != seen.checkpoint:
                self._check_extends(None, previous, seen)
        latest = sorted(self.result.latest.values(), key=lambda s: (s.checkpoint.height, s.source, s.node))
        for lower, higher in itertools.pairwise(latest):
            if lower.checkpoint.height < higher.checkpoint.height:
                self._check_extends(self._reader(higher), lower, higher)
        self.result.rounds += 1

    # --- one node's checkpoint ----------------------------------------------------------------------------------

    def _fetch(self, reader: NodeClient) -> Seen | None:
        node = reader.base_url
        try:
            text = reader.checkpoint()
            seen = Seen(node, text, self._verify_note(reader, text))
            return replace(seen, cosigned_by=self._check_witnessed(seen))
        except NodeUnreachable as exc:
            self._fault(Fault(node, "unreachable", str(exc)))
        except NodeProblem as exc:
            self._fault(Fault(node, "refused", f"{exc.status} {exc.code}: {exc.detail}"))
        except (VerificationError, DecodeError) as exc:
            self._fault(Fault(node, "invalid-checkpoint", str(exc)))
        return None

    def _fetch_witnessed(self, witness: NodeClient) -> Seen | None:
        """The checkpoint a witness node holds for this log, verified as a node's is (None: a fault)."""
        where = f"witness {witness.base_url}"
        try:
            text = witness.witnessed_checkpoint(self.genesis.origin)
            seen = Seen(witness.base_url, text, self._verify_note(self.readers[0], text), source="witness")
            return replace(seen, cosigned_by=self._check_witnessed(seen))
        except NodeUnreachable as exc:
            self._fault(Fault(where, "unreachable", str(exc)))
        except NodeProblem as exc:
            self._fault(Fault(where, "refused", f"{exc.status} {exc.code}: {exc.detail}"))
        except (VerificationError, DecodeError) as exc:
            self._fault(Fault(where, "invalid-checkpoint", str(exc)))
        return None

    def _verify_note(self, reader: NodeClient, text: str) -> Checkpoint:
        """The checkpoint of a note certified by the set for its height (learning newer sets if need be)."""
        note = SignedNote.parse(text)
        checkpoint = Checkpoint.parse(note.text)
        if checkpoint.origin != self.genesis.origin:
            raise VerificationError(f"checkpoint is for {checkpoint.origin!r}, not {self.genesis.origin!r}")
        try:
            verify_certificate(note, self._validators(checkpoint.height))
        except VerificationError:
            self._learn_validators(reader)
            verify_certificate(note, self._validators(checkpoint.height))
        return checkpoint

    def _check_witnessed(self, seen: Seen) -> tuple[str, ...]:
        """Report a certified checkpoint that lacks the witnesses' cosignatures (it still counts for split views);
        return the policy's witnesses that validly cosigned it."""
        if self.witnesses is None:
            return ()
        note = SignedNote.parse(seen.note)
        try:
            return tuple(sorted(self.witnesses.check(note)))
        except VerificationError as exc:
            kind = "unwitnessed" if isinstance(exc, QuorumNotMet) else "invalid-cosignature"
            self._fault(Fault(seen.node, kind, f"height {seen.checkpoint.height}: {exc}"))
        names = {key.name: name for name, key in self.witnesses.witnesses}
        try:
            found = verified_cosignatures(note, [key for _, key in self.witnesses.witnesses])
        except VerificationError:
            return ()  # a witness's line that does not verify: reported above
        return tuple(sorted(names[key_name] for key_name in found))

    def _validators(self, height: int) -> ValidatorSet:
        return [vset for starts, vset in self._schedule if starts <= height][-1]

    def _learn_validators(self, reader: NodeClient) -> None:
        """Learn the validator-set chain from a bundle the node serves, verified from genesis."""
        try:
            bundle = reader.bundle(PROBE_DIGEST)
            verify_bundle(bundle, self.genesis)
        except (NodeUnreachable, NodeProblem, DecodeError, ProofError):
            return  # the note's own check then names what is wrong
        schedule = [(1, self.genesis.validator_set())]
        for link in bundle.validators:
            schedule.append((decode_header(link.header).height + 1, codec.decode(ValidatorSet, link.next_set)))
        if len(schedule) > len(self._schedule):
            self._schedule = schedule

    # --- holding checkpoints against each other -------------------------------------------------------------------

    def _remember(self, seen: Seen) -> None:
        height = seen.checkpoint.height
        known = self._by_height.get(height)
        if known is None:
            if len(self._by_height) >= MAX_REMEMBERED:
                del self._by_height[min(self._by_height)]
            self._by_height[height] = seen
            return
        a, b = known.checkpoint, seen.checkpoint
        if (a.header_hash, a.size, a.root) != (b.header_hash, b.size, b.root):
            self._split(
                known,
                seen,
                f"two certified checkpoints for height {height}: header {merkle.b64(a.header_hash)} "
                f"(log size {a.size}) and header {merkle.b64(b.header_hash)} (log size {b.size})",
            )

    def _check_extends(self, reader: NodeClient | None, older: Seen, newer: Seen) -> None:
        """`reader`'s view (`newer`) must extend `older`: a consistency proof, then headers if that fails.

        With no reader (`newer` is a witness's view, which serves no proofs) only sizes and roots are compared."""
        a, b = older.checkpoint, newer.checkpoint
        if b.height < a.height:
            return  # a node that fell back (restored, or lagging behind a load balancer) is checked the other way
        if b.size < a.size:
            self._split(
                older, newer, f"height {b.height} has a smaller log ({b.size}) than height {a.height} ({a.size})"
            )
            return
        if a.size == b.size:
            if a.root != b.root:
                self._split(older, newer, f"log size {a.size} certified with two different roots")
            return
        if a.size == 0 or reader is None:
            return  # the empty log is a prefix of every log; a witness's view cannot prove more
        try:
            answer = reader.consistency(a.size, b.size)
            merkle.verify_consistency(a.size, b.size, answer.proof, a.root, b.root)
            return
        except (NodeUnreachable, NodeProblem) as exc:
            self._fault(Fault(reader.base_url, "unreachable", f"consistency proof {a.size} -> {b.size}: {exc}"))
            return
        except (VerificationError, DecodeError) as exc:
            failure = str(exc)
        self._compare_headers(reader, older, newer, failure)

    def _compare_headers(self, reader: NodeClient, older: Seen, newer: Seen, failure: str) -> None:
        """The consistency proof failed: fetch the certified block at `older`'s height from `reader` and compare."""
        height = older.checkpoint.height
        try:
            block = reader.block(height)
            note = SignedNote.parse(block.certificate)
            theirs = Checkpoint.parse(note.text)
            verify_certificate(note, self._validators(height))
        except (NodeUnreachable, NodeProblem, DecodeError, VerificationError) as exc:
            self._fault(
                Fault(reader.base_url, "bad-proof", f"{failure}; and its block {height} cannot be checked: {exc}")
            )
            return
        if theirs.header_hash != block.header.hash() or theirs.height != height:
            self._fault(Fault(reader.base_url, "bad-proof", f"{failure}; its block {height} does not match its note"))
            return
        if theirs.header_hash == older.checkpoint.header_hash:
            self._fault(Fault(reader.base_url, "bad-proof", f"served a consistency proof that fails: {failure}"))
            return
        evidence = Seen(reader.base_url, block.certificate, theirs)
        self._split(
            older,
            evidence,
            f"{reader.base_url} holds a different certified block at height {height} "
            f"(its log does not extend the checkpoint of {older.node}: {failure})",
        )
        self._remember(evidence)

    # --- reporting ----------------------------------------------------------------------------------------------

    def _split(self, first: Seen, second: Seen, detail: str) -> None:
        key = tuple(sorted((first.note, second.note)))
        if key in self._split_keys:
            return
        self._split_keys.add((key[0], key[1]))
        split = SplitView(first, second, detail, int(self.clock() * 1000))
        self.result.split_views.append(split)
        self.report(split)
        if self.evidence is not None:
            document = [s.to_json(self.genesis) for s in self.result.split_views]
            self.evidence.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")

    def _fault(self, fault: Fault) -> None:
        self.result.faults.append(fault)
        self.report(fault)

    def _reader(self, seen: Seen) -> NodeClient | None:
        """The node that served `seen` (None for a witness's view)."""
        if seen.source != "node":
            return None
        return next(r for r in self.readers if r.base_url == seen.node)
