"""Audit: replay the chain from genesis and confirm every block is what the network certified (DESIGN §10).

Theory of operation
-------------------
The auditor trusts only the genesis file. It reads certified blocks in order from a `BlockSource` (a node's API,
or a node's data directory opened read-only) and commits each into its own *replay store* with
`Store.commit_block`, which checks everything a node checks before it writes: the header's link to the previous
one, the validator sets the chain's governance produced, the commit certificate (more than 2/3 of the certifying
set's power), every ledger rule, and the log and state roots the header commits to. Before that, the auditor
checks the certificate names this header, so a stored header altered after the fact is named as such.

Signatures dominate the cost (DESIGN §12), so they are checked ahead of the replay in a process pool on every
core (`verifier.auditbatches`); the leaf hashes of events whose signatures were checked go to
`commit_block(verified=...)`, which then skips those Ed25519 checks but still looks up every key and applies
every rule. A signature that fails under a key the workers know is a discrepancy at once.

With a data directory, the node's own stored log nodes, state-map nodes and state root are compared with the
replay's after each block (`verifier.auditsource.StoredChain`), in the pool when there is one, trailing the replay by
a few blocks; every comparison is finished before a checkpoint is saved. A discrepancy the audit stops at is
saved with the checkpoint, so `--resume` names it again rather than continuing past it.

The replay store lives in a state directory with ``checkpoint.json``, the last audited checkpoint. `resume=True`
continues from there: it checks that the source's block at that height is the one audited and, with a
consistency proof, that the log the source holds now extends the audited one, then replays only the new blocks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from credledger.ledger import merkle
from credledger.ledger.block import CertifiedBlock, verify_certified_header
from credledger.ledger.errors import DecodeError, InvalidBlock, StorageError, VerificationError
from credledger.ledger.events import Issue, Reinstate, Revoke, Suspend
from credledger.ledger.genesis import Genesis
from credledger.ledger.note import Checkpoint, SignedNote
from credledger.ledger.state import active_members
from credledger.ledger.storage import schema
from credledger.ledger.storage.datadir import LMDB_DATA_FILE, AuditDiscrepancy, DataDir, Discrepancy, ReplayView
from credledger.ledger.storage.store import Store
from credledger.verifier.auditbatches import BATCHES_AHEAD, Batches, BatchResult, Comparisons, Keys, make_pool
from credledger.verifier.auditsource import BlockSource

CHECKPOINT_FILE = "checkpoint.json"
TALLY_FILE = "tally.json"
REPLAY_DIR = "replay"
#: How often the resume checkpoint is rewritten during a long audit (seconds).
SAVE_INTERVAL = 5.0


class Progress(Protocol):
    """What the audit reports its progress to (the command line draws it as a bar on stderr)."""

    def advance(self, count: int, note: str = "") -> None: ...

    def finish(self, note: str = "") -> None: ...


@dataclass
class Tally:
    """Counts for the summary, kept from the workers' results as blocks are replayed."""

    kinds: Counter[str] = field(default_factory=Counter)
    suspended: set[bytes] = field(default_factory=set)
    revoked: int = 0
    expiring: dict[bytes, int] = field(default_factory=dict)
    #: CPU seconds spent checking signatures (in the workers, or here), this run.
    signature_cpu: float = 0.0
    #: CPU seconds the workers spent comparing a node's files with the replay, this run.
    comparison_cpu: float = 0.0

    def add(self, result: BatchResult) -> None:
        self.kinds.update(result.kinds)
        self.signature_cpu += result.cpu
        for kind, digest, expires in result.credentials:
            if kind == Issue.TAG and expires is not None:
                self.expiring[digest] = expires
            elif kind == Suspend.TAG:
                self.suspended.add(digest)
            elif kind == Reinstate.TAG:
                self.suspended.discard(digest)
            elif kind == Revoke.TAG:
                self.suspended.discard(digest)
                self.expiring.pop(digest, None)
                self.revoked += 1

    def to_json(self, height: int) -> dict[str, Any]:
        """The tally as of `height`, for `--resume` to continue counting from."""
        return {
            "height": height,
            "kinds": dict(self.kinds),
            "suspended": sorted(d.hex() for d in self.suspended),
            "revoked": self.revoked,
            "expiring": {d.hex(): t for d, t in self.expiring.items()},
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Tally:
        return cls(
            Counter(document["kinds"]),
            {bytes.fromhex(d) for d in document["suspended"]},
            int(document["revoked"]),
            {bytes.fromhex(d): int(t) for d, t in document["expiring"].items()},
        )

    def credentials(self, now_ms: int) -> dict[str, int]:
        """Credentials by status as of `now_ms` (expired = active with an expiry at or before it)."""
        issued = self.kinds[Issue.TAG]
        expired = sum(1 for d, t in self.expiring.items() if t <= now_ms and d not in self.suspended)
        suspended = len(self.suspended)
        return {
            "valid": issued - self.revoked - suspended - expired,
            "suspended": suspended,
            "revoked": self.revoked,
            "expired": expired,
        }


@dataclass(frozen=True, slots=True)
class AuditResult:
    """How an audit ended: the summary of what was replayed, and the first discrepancy, if any."""

    source: str
    genesis: str
    from_height: int
    height: int
    log_size: int
    log_root: bytes
    state_root: bytes
    events: int
    event_kinds: Mapping[str, int]
    members: int
    validators: int
    credentials: Mapping[str, int]
    elapsed: float
    discrepancy: Discrepancy | None
    resumed: bool
    #: The height after which `event_kinds` and `credentials` were counted (0: the whole chain).
    counted_from: int = 0
    #: CPU seconds of this process (the replay: the one serial step), of the signature checks and of the
    #: comparisons made in workers, this run.
    replay_cpu: float = 0.0
    signature_cpu: float = 0.0
    comparison_cpu: float = 0.0

    @property
    def clean(self) -> bool:
        return self.discrepancy is None

    @property
    def events_per_second(self) -> float:
        return self.events / self.elapsed if self.elapsed > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "source": self.source,
            "genesis": self.genesis,
            "resumed": self.resumed,
            "from_height": self.from_height,
            "height": self.height,
            "blocks": self.height - self.from_height,
            "events": self.events,
            "log": {"size": self.log_size, "root": merkle.b64(self.log_root)},
            "state_root": self.state_root.hex(),
            "event_kinds": dict(self.event_kinds),
            "members": self.members,
            "validators": self.validators,
            "credentials": dict(self.credentials),
            "counted_from": self.counted_from,
            "cpu_s": {
                "replay": round(self.replay_cpu, 3),
                "signatures": round(self.signature_cpu, 3),
                "comparisons": round(self.comparison_cpu, 3),
            },
            "elapsed_s": round(self.elapsed, 3),
            "events_per_s": round(self.events_per_second),
            "discrepancy": None
            if self.discrepancy is None
            else {"height": self.discrepancy.height, "kind": self.discrepancy.kind, "detail": self.discrepancy.detail},
        }


class Auditor:
    """Replays `source` into the replay store under `state_dir`, checking everything on the way."""

    def __init__(
        self,
        source: BlockSource,
        genesis: Genesis,
        state_dir: str | os.PathLike[str],
        *,
        workers: int | None = None,
        progress: Callable[[int], Progress] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.genesis = genesis
        self.state_dir = Path(state_dir)
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.make_progress = progress
        self.clock = clock
        self._inline = True

    def run(self, *, resume: bool = False, to_height: int | None = None) -> AuditResult:
        """Audit up to `to_height` (default: the source's height now). Returns the result; never raises for a
        discrepancy (it is in the result), raises `CredledgerError` if the source cannot be read."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # The replay stores the state map's nodes as the node's store does, so their records compare exactly; a
        # replay kept from an audit by an earlier credledger may store them otherwise, and is then begun afresh.
        grouped_from = self.source.state_grouped_from() if isinstance(self.source, DataDir) else None
        if not resume or (grouped_from is not None and not _replay_groups_nodes_as(self.state_dir, grouped_from)):
            _remove_replay(self.state_dir)
        started, started_cpu = self.clock(), time.process_time()
        # The replay is scratch that `--resume` may reuse, not a record anyone relies on: skipping the per-block
        # fsync makes replay several times faster, and a replay cut short by a crash is simply redone.
        replay = Store(self.state_dir / REPLAY_DIR, durable=False)
        try:
            replay.initialize(self.genesis, state_grouped_from=grouped_from or 0)
            start = replay.height()
            target = self.source.height() if to_height is None else to_height
            tally, counted_from = Tally(), start
            saved = _read_json(self.state_dir / TALLY_FILE) if resume else None
            if saved is not None and saved.get("height") == start:
                tally, counted_from = Tally.from_json(saved), 0
            discrepancy = None
            try:
                if resume and start:
                    self._repeat_recorded_discrepancy()
                    self._check_extends(replay, start, target)
                if target < start:
                    raise AuditDiscrepancy(
                        Discrepancy(
                            target, "height", f"the source holds {target} blocks, fewer than the {start} audited"
                        )
                    )
                self._replay(replay, start, target, tally)
            except AuditDiscrepancy as exc:
                discrepancy = exc.discrepancy
            self._save_tally(replay, tally)
            result = self._result(
                replay,
                start,
                tally,
                discrepancy,
                resumed=resume and start > 0,
                started=started,
                counted_from=counted_from,
            )
            # Signatures checked in this process (no pool) are not the replay's own work.
            inline = tally.signature_cpu if self._inline else 0.0
            replay_cpu = time.process_time() - started_cpu - inline
            return dataclasses.replace(
                result,
                replay_cpu=replay_cpu,
                signature_cpu=tally.signature_cpu,
                comparison_cpu=tally.comparison_cpu,
            )
        finally:
            replay.close()

    # --- replay -------------------------------------------------------------------------------------------------

    def _replay(self, replay: Store, start: int, target: int, tally: Tally) -> None:
        keys = Keys(self.genesis)
        total = self._events_between(start, target)
        progress = self.make_progress(total) if self.make_progress else None
        saved_at = self.clock()
        pool = make_pool(self.workers, total)
        self._inline = pool is None
        comparisons = self._comparisons(replay, pool)
        discrepancy: Discrepancy | None = None
        try:
            batches = Batches(
                self.source, start, target, pool=pool, keys=keys, ahead=BATCHES_AHEAD * max(self.workers, 1)
            )
            for block, result in batches:
                header = block.header
                if result.bad:
                    position, detail = result.bad[0]
                    index = header.log_size - header.event_count + position
                    raise AuditDiscrepancy(Discrepancy(header.height, "event-signature", f"event {index}: {detail}"))
                self._commit(replay, block, frozenset(result.verified))
                keys.learn(result.keys)
                tally.add(result)
                if comparisons is not None:
                    comparisons.submit(header)
                if progress is not None:
                    progress.advance(header.event_count, f"block {header.height}/{target}")
                if self.clock() - saved_at >= SAVE_INTERVAL:
                    if comparisons is not None:
                        comparisons.drain()  # a saved checkpoint vouches for every block up to it
                    self._save(replay)
                    saved_at = self.clock()
            if comparisons is not None:
                with replay.snapshot() as snap:
                    comparisons.finish(snap.log_size)
        except AuditDiscrepancy as exc:
            discrepancy = exc.discrepancy
            raise
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            if comparisons is not None:
                tally.comparison_cpu += comparisons.cpu
            if progress is not None:
                progress.finish()
            self._save(replay, discrepancy)

    def _comparisons(self, replay: Store, pool: Executor | None) -> Comparisons | None:
        """With a data directory as the source, the comparisons of its files with the replay; else None."""
        if not isinstance(self.source, DataDir):
            return None
        return Comparisons(self.source, ReplayView.of(replay), self.state_dir / REPLAY_DIR, pool)

    def _commit(self, replay: Store, certified: CertifiedBlock, verified: frozenset[bytes]) -> None:
        """Check the certificate names the header, then commit the block into the replay store."""
        header = certified.header
        height = header.height
        try:
            note = SignedNote.parse(certified.certificate)
            checkpoint = Checkpoint.parse(note.text)
        except DecodeError as exc:
            raise AuditDiscrepancy(Discrepancy(height, "certificate", f"malformed checkpoint note: {exc}")) from None
        if checkpoint.height != height or checkpoint.header_hash != header.hash():
            raise AuditDiscrepancy(
                Discrepancy(
                    height,
                    "header",
                    f"the header does not hash to what its certificate signs (certificate for height "
                    f"{checkpoint.height}, header {checkpoint.header_hash.hex()[:16]}; the header hashes to "
                    f"{header.hash().hex()[:16]})",
                )
            )
        with replay.snapshot() as snap:
            validators = snap.validator_set(height)
        try:
            verify_certified_header(header, note, validators)
        except VerificationError as exc:
            raise AuditDiscrepancy(Discrepancy(height, "certificate", str(exc))) from None
        try:
            replay.commit_block(certified.block, certified.certificate, verified=verified)
        except InvalidBlock as exc:
            detail = str(exc).removeprefix(f"block {height}: ")
            # The store words its refusals "<rule>: <detail>" for a ledger rule, and names the roots it compared.
            if detail.startswith("bad-signature:"):
                kind = "event-signature"
            elif detail.startswith("header commits to log"):
                kind = "roots"
            else:
                kind = "replay"
            raise AuditDiscrepancy(Discrepancy(height, kind, detail)) from None

    def _events_between(self, start: int, target: int) -> int:
        """How many events the audit will replay, for the progress bar (0 if the source cannot say yet: then the
        discrepancy is found, and named, when the replay reaches it)."""
        if target <= start:
            return 0
        try:
            last = self.source.block(target).header.log_size
            first = self.source.block(start).header.log_size if start else 0
        except AuditDiscrepancy:
            return 0
        return max(last - first, 0)

    # --- resume -------------------------------------------------------------------------------------------------

    def _repeat_recorded_discrepancy(self) -> None:
        """A resumed audit does not continue past a discrepancy the audit it resumes found: it names it again."""
        recorded = (read_checkpoint(self.state_dir) or {}).get("discrepancy")
        if isinstance(recorded, dict):
            raise AuditDiscrepancy(
                Discrepancy(
                    int(recorded.get("height", 0)),
                    str(recorded.get("kind", "recorded")),
                    f"{recorded.get('detail', '')} (found by the audit this one resumes; audit again without "
                    "--resume to start over)",
                )
            )

    def _check_extends(self, replay: Store, start: int, target: int) -> None:
        """The source's block `start` is the one audited, and its log now extends the audited log."""
        with replay.snapshot() as snap:
            audited = snap.header(start)
        theirs = self.source.block(start).header
        if theirs.hash() != audited.hash():
            raise AuditDiscrepancy(
                Discrepancy(start, "fork", "the source's block at the last audited height is not the block audited")
            )
        if target <= start or audited.log_size == 0:
            return
        latest = self.source.block(target).header
        proof = self.source.consistency(audited.log_size, latest.log_size)
        try:
            merkle.verify_consistency(audited.log_size, latest.log_size, proof, audited.log_root, latest.log_root)
        except VerificationError as exc:
            raise AuditDiscrepancy(Discrepancy(target, "consistency", str(exc))) from None

    def _save_tally(self, replay: Store, tally: Tally) -> None:
        """Keep the counts with the height they hold at, so a resumed audit sums the whole chain."""
        _write_json(self.state_dir / TALLY_FILE, tally.to_json(replay.height()))

    def _save(self, replay: Store, discrepancy: Discrepancy | None = None) -> None:
        """Write the last audited checkpoint (atomically: a crash leaves the old file or the new one), with the
        discrepancy the audit stopped at, if any: the replay may have gone past a block whose comparison with a
        node's files failed, and `--resume` must not pass over it."""
        with replay.snapshot() as snap:
            height = snap.height
            if height == 0:
                return
            header = snap.header(height)
            note = snap.certificate(height)
        document = {
            "origin": self.genesis.origin,
            "genesis": self.genesis.hash().hex(),
            "source": self.source.name,
            "height": height,
            "log_size": header.log_size,
            "log_root": merkle.b64(header.log_root),
            "header_hash": merkle.b64(header.hash()),
            "checkpoint": note,
            "saved_ms": int(time.time() * 1000),
        }
        if discrepancy is not None:
            document["discrepancy"] = dataclasses.asdict(discrepancy)
        _write_json(self.state_dir / CHECKPOINT_FILE, document)

    # --- summary ------------------------------------------------------------------------------------------------

    def _result(
        self,
        replay: Store,
        start: int,
        tally: Tally,
        discrepancy: Discrepancy | None,
        *,
        resumed: bool,
        started: float,
        counted_from: int,
    ) -> AuditResult:
        with replay.snapshot() as snap:
            height = snap.height
            header = snap.header(height) if height else None
            members = list(active_members(snap.state_view()))
            validators = len(snap.validator_set(height + 1))
            first = snap.header(start).log_size if start else 0
        now_ms = header.time_ms if header else self.genesis.genesis_time_ms
        return AuditResult(
            source=self.source.name,
            genesis=self.genesis.hash().hex(),
            from_height=start,
            height=height,
            log_size=header.log_size if header else 0,
            log_root=header.log_root if header else merkle.EMPTY_ROOT,
            state_root=header.state_root if header else bytes(32),
            events=(header.log_size if header else 0) - first,
            event_kinds=dict(tally.kinds),
            members=len(members),
            validators=validators,
            credentials=tally.credentials(now_ms),
            elapsed=self.clock() - started,
            discrepancy=discrepancy,
            resumed=resumed,
            counted_from=counted_from,
        )


def _replay_groups_nodes_as(state_dir: Path, grouped_from: int) -> bool:
    """Whether the replay kept in `state_dir`, if there is one, stores its state map's nodes by group from version
    `grouped_from` on (`schema.grouped_from`), as the audited node does. A replay of an earlier schema does not: opened
    to go on, it would be upgraded, and group the nodes of its next blocks."""
    if not (state_dir / REPLAY_DIR / LMDB_DATA_FILE).is_file():
        return True
    try:
        kept = DataDir(state_dir / REPLAY_DIR)
    except StorageError:
        return False
    try:
        return kept.schema_version() == schema.SCHEMA_VERSION and kept.state_grouped_from() == grouped_from
    finally:
        kept.close()


def _remove_replay(state_dir: Path) -> None:
    for name in (CHECKPOINT_FILE, TALLY_FILE, REPLAY_DIR):
        path = state_dir / name
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        elif path.exists():
            path.unlink()


def read_checkpoint(state_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last audited checkpoint saved in `state_dir`, or None."""
    return _read_json(Path(state_dir) / CHECKPOINT_FILE)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except ValueError:
        return None  # a file cut short: treated as absent, the replay store is the record that counts
    return document if isinstance(document, dict) else None


def _write_json(path: Path, document: dict[str, Any]) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of one."""
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(document, indent=1) + "\n")
    scratch.replace(path)


def default_state_dir(genesis: Genesis) -> Path:
    """Where audits of this network keep their replay store: the user's cache directory."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "credledger" / "audit" / genesis.hash().hex()[:16]
