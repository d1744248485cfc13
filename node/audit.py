"""Audit: replay the chain from genesis and confirm every block is what the network certified (DESIGN §10).

Theory of operation
-------------------
The auditor trusts only the genesis file. It reads certified blocks in order from a `ChainSource` (a node's API,
or a node's data directory opened read-only) and commits each into its own *replay store* with
`Store.commit_block`, which checks everything a node checks before it writes: the header's link to the previous
one, the validator sets the chain's governance produced, the commit certificate (more than 2/3 of the certifying
set's power), every ledger rule, and the log and state roots the header commits to. Before that, the auditor
checks the certificate names this header, so a stored header altered after the fact is named as such.

Signatures dominate the cost (DESIGN §12), so they are checked ahead of the replay in a process pool on every
core. A worker decodes a batch of events and verifies each signature under the key its (member, key id) names in
a *key directory*: the genesis keys plus every key a member.add, member.update or key.add event carried, learned
from the workers' results in log order. A key id is derived from the key, and an id that two keys would share is
dropped from the directory, so a worker's "verified" means the same as the rules' check: the leaf hashes it
returns go to `commit_block(verified=...)`, which then skips those Ed25519 checks but still looks up every key
and applies every rule. An event whose key the directory does not know yet (added a few batches earlier) is
simply left to the rules. A signature that fails under a known key is a discrepancy at once.

With a data directory, after each block the node's own stored log nodes, state-map nodes and state root are
compared with the replay's (`node.auditsource.StoredChain`).

The replay store lives in a state directory with ``checkpoint.json``, the last audited checkpoint. `resume=True`
continues from there: it checks that the source's block at that height is the one audited and, with a
consistency proof, that the log the source holds now extends the audited one, then replays only the new blocks.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from ledger import domains, merkle
from ledger.block import CertifiedBlock, verify_certified_header
from ledger.errors import BadSignature, DecodeError, InvalidBlock, VerificationError
from ledger.events import Issue, KeyAdd, MemberAdd, MemberUpdate, Payload, Reinstate, Revoke, Suspend, decode_event
from ledger.genesis import Genesis
from ledger.keys import key_id, verify_signature
from ledger.note import Checkpoint, SignedNote
from ledger.state import active_members
from ledger.store import Store
from node.auditsource import AuditDiscrepancy, ChainSource, Discrepancy, ReplayView, StoredChain
from node.progress import Progress

#: Events per task sent to a worker: large enough to amortise the pickling, small enough to keep all cores busy.
BATCH_EVENTS = 2_000
#: Batches in flight per worker, so no core waits for the replay to hand out work.
BATCHES_AHEAD = 3
CHECKPOINT_FILE = "checkpoint.json"
TALLY_FILE = "tally.json"
REPLAY_DIR = "replay"
#: How much lower the signature workers' scheduling priority is than the replay's.
WORKER_NICENESS = 5
#: How often the resume checkpoint is rewritten during a long audit (seconds).
SAVE_INTERVAL = 5.0

KeyDirectory = dict[tuple[str, bytes], bytes]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a worker found in a batch of encoded events."""

    verified: tuple[bytes, ...]
    #: (position in the batch, what failed) for signatures that do not verify under the key their id names.
    bad: tuple[tuple[int, str], ...]
    #: Keys the batch's membership events carry, in log order.
    keys: tuple[tuple[str, bytes], ...]
    #: Payload kinds counted, and the credential events the summary needs (kind, digest, expiry).
    kinds: Mapping[str, int]
    credentials: tuple[tuple[str, bytes, int | None], ...]
    #: CPU seconds the worker spent on the batch.
    cpu: float = 0.0


def verify_batch(raws: Sequence[bytes], directory: Mapping[tuple[str, bytes], bytes]) -> BatchResult:
    """Check the signatures of encoded events under the keys `directory` names (runs in a worker process).

    Events are read with msgpack's C unpacker rather than the strict codec: the replay decodes every event
    strictly anyway, and for the canonical encoding it accepts, the bytes a signature covers are exactly the
    event's 4-item array cut before its signatures, re-headed as a 3-item array (`UnsignedEvent`). Anything
    unexpected here is left unverified, for the replay to judge.
    """
    started = time.process_time()
    verified: list[bytes] = []
    bad: list[tuple[int, str]] = []
    learned: list[tuple[str, bytes]] = []
    kinds: Counter[str] = Counter()
    credentials: list[tuple[str, bytes, int | None]] = []
    for position, raw in enumerate(raws):
        parsed = event_parts(raw)
        if parsed is None:
            continue
        signed, payload, signatures = parsed
        message = domains.EVENT + signed
        known = True
        for member, kid, signature in signatures:
            public = directory.get((member, kid))
            if public is None:
                known = False
                break
            try:
                verify_signature(public, message, signature)
            except BadSignature:
                bad.append((position, f"signature by {member}+{kid.hex()} does not verify"))
                known = False
                break
        if known:
            verified.append(merkle.leaf_hash(raw))
        tag = payload[0]
        kinds[tag] += 1
        if tag in _CREDENTIAL_TAGS:
            digest = payload[1]
            expires = payload[_ISSUE_EXPIRES] if tag == Issue.TAG else None
            if tag != Issue.TAG or expires is not None:
                credentials.append((tag, digest, expires))
        elif tag in _KEY_TAGS:
            try:
                learned.extend(_keys_carried(decode_event(raw).payload))
            except DecodeError:
                continue  # the replay names it, at its block
    cpu = time.process_time() - started
    return BatchResult(tuple(verified), tuple(bad), tuple(learned), dict(kinds), tuple(credentials), cpu)


#: Positions in a payload's encoding ([tag, fields...]), from the records' declared field order.
_ISSUE_EXPIRES = 1 + [f.name for f in dataclasses.fields(Issue)].index("expires_ms")
_CREDENTIAL_TAGS = frozenset(cls.TAG for cls in (Issue, Revoke, Suspend, Reinstate))
_KEY_TAGS = frozenset(cls.TAG for cls in (MemberAdd, MemberUpdate, KeyAdd))
_EVENT_ARRAY = 0x94  # the canonical header of an event's 4-field array
_UNSIGNED_ARRAY = b"\x93"  # ... and of the 3-field unsigned event


def event_parts(raw: bytes) -> tuple[bytes, tuple[Any, ...], list[tuple[str, bytes, bytes]]] | None:
    """(signed bytes, payload array, signatures) of an encoded event, or None if it does not look like one."""
    if not raw or raw[0] != _EVENT_ARRAY:
        return None
    unpacker = msgpack.Unpacker(raw=False, use_list=False, max_buffer_size=len(raw))
    unpacker.feed(raw[1:])
    try:
        unpacker.skip()  # origin
        unpacker.skip()  # time
        payload = unpacker.unpack()
        cut = unpacker.tell()
        signatures = unpacker.unpack()
    except (ValueError, msgpack.UnpackException):
        return None
    well_formed = (
        isinstance(payload, tuple)
        and payload
        and isinstance(payload[0], str)
        and isinstance(signatures, tuple)
        and signatures
        and all(
            isinstance(sig, tuple)
            and len(sig) == 3
            and isinstance(sig[0], str)
            and isinstance(sig[1], bytes)
            and isinstance(sig[2], bytes)
            for sig in signatures
        )
    )
    if not well_formed:
        return None
    checked = [(sig[0], sig[1], sig[2]) for sig in signatures]
    return _UNSIGNED_ARRAY + raw[1 : 1 + cut], payload, checked


def _keys_carried(payload: Payload) -> list[tuple[str, bytes]]:
    if isinstance(payload, MemberAdd):
        return [(payload.member, payload.node_key), *((payload.member, k) for k in payload.issuer_keys)]
    if isinstance(payload, MemberUpdate):
        return [(payload.member, payload.node_key)]
    if isinstance(payload, KeyAdd):
        return [(payload.member, payload.public_key)]
    return []


class Keys:
    """The key directory: (member, key id) -> public key, with ids that two keys claim dropped for good."""

    def __init__(self, genesis: Genesis) -> None:
        self.directory: KeyDirectory = {}
        self._ambiguous: set[tuple[str, bytes]] = set()
        for member in genesis.members:
            self.learn([(member.member, member.node_key), *((member.member, k) for k in member.issuer_keys)])

    def learn(self, keys: Iterable[tuple[str, bytes]]) -> None:
        for member, public in keys:
            slot = (member, key_id(member, public))
            if slot in self._ambiguous:
                continue
            known = self.directory.get(slot)
            if known is None:
                self.directory[slot] = public
            elif known != public:
                del self.directory[slot]
                self._ambiguous.add(slot)


@dataclass
class Tally:
    """Counts for the summary, kept from the workers' results as blocks are replayed."""

    kinds: Counter[str] = field(default_factory=Counter)
    suspended: set[bytes] = field(default_factory=set)
    revoked: int = 0
    expiring: dict[bytes, int] = field(default_factory=dict)
    #: CPU seconds spent checking signatures (in the workers, or here), this run.
    signature_cpu: float = 0.0

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
    #: CPU seconds of this process (the replay: the one serial step) and of the signature checks, this run.
    replay_cpu: float = 0.0
    signature_cpu: float = 0.0

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
            "cpu_s": {"replay": round(self.replay_cpu, 3), "signatures": round(self.signature_cpu, 3)},
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
        source: ChainSource,
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
        if not resume:
            _remove_replay(self.state_dir)
        started, started_cpu = self.clock(), time.process_time()
        # The replay is scratch that `--resume` may reuse, not a record anyone relies on: skipping the per-block
        # fsync makes replay several times faster, and a replay cut short by a crash is simply redone.
        replay = Store(self.state_dir / REPLAY_DIR, durable=False)
        try:
            replay.initialize(self.genesis)
            start = replay.height()
            target = self.source.height() if to_height is None else to_height
            tally, counted_from = Tally(), start
            saved = _read_json(self.state_dir / TALLY_FILE) if resume else None
            if saved is not None and saved.get("height") == start:
                tally, counted_from = Tally.from_json(saved), 0
            discrepancy = None
            try:
                if resume and start:
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
            return dataclasses.replace(result, replay_cpu=replay_cpu, signature_cpu=tally.signature_cpu)
        finally:
            replay.close()

    # --- replay -------------------------------------------------------------------------------------------------

    def _replay(self, replay: Store, start: int, target: int, tally: Tally) -> None:
        stored = self.source if isinstance(self.source, StoredChain) else None
        view = ReplayView(replay.env)
        keys = Keys(self.genesis)
        total = self._events_between(start, target)
        progress = self.make_progress(total) if self.make_progress else None
        saved_at = self.clock()
        pool = _pool(self.workers) if self.workers > 0 and total > BATCH_EVENTS // 4 else None
        self._inline = pool is None
        try:
            batches = _Batches(
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
                if stored is not None:
                    stored.compare_block(view, header)
                if progress is not None:
                    progress.advance(header.event_count, f"block {header.height}/{target}")
                if self.clock() - saved_at >= SAVE_INTERVAL:
                    self._save(replay)
                    saved_at = self.clock()
            if stored is not None:
                with replay.snapshot() as snap:
                    stored.compare_tail(view, snap.log_size)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            if progress is not None:
                progress.finish()
            self._save(replay)

    def _commit(self, replay: Store, certified: CertifiedBlock, verified: frozenset[bytes]) -> None:
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

    def _save(self, replay: Store) -> None:
        """Write the last audited checkpoint (atomically: a crash leaves the old file or the new one)."""
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


class _Batches:
    """Blocks in order with their workers' results, keeping the pool busy BATCHES_AHEAD batches ahead.

    Blocks are grouped into tasks of about BATCH_EVENTS events (many small blocks, or one block split in several);
    each block is yielded once all its events' results are in.
    """

    def __init__(
        self,
        source: ChainSource,
        start: int,
        target: int,
        *,
        pool: Executor | None,
        keys: Keys,
        ahead: int,
    ) -> None:
        self._source = source
        self._next = start + 1
        self._target = target
        self._pool = pool
        self._keys = keys
        self._ahead = ahead
        # Each entry: a block and the futures (or results) of the batches covering its events, in order.
        self._queue: deque[tuple[CertifiedBlock, list[Future[BatchResult] | BatchResult]]] = deque()
        self._tasks = 0

    def __iter__(self) -> _Batches:
        return self

    def __next__(self) -> tuple[CertifiedBlock, BatchResult]:
        self._fill()
        if not self._queue:
            raise StopIteration
        block, parts = self._queue.popleft()
        results = [p.result() if isinstance(p, Future) else p for p in parts]
        self._tasks -= sum(1 for p in parts if isinstance(p, Future))
        return block, _merge(results)

    def _fill(self) -> None:
        while self._next <= self._target and (not self._queue or self._tasks < self._ahead):
            block = self._source.block(self._next)
            if block.header.height != self._next:
                found = Discrepancy(self._next, "block", f"asked for block {self._next}, got {block.header.height}")
                raise AuditDiscrepancy(found)
            self._next += 1
            events = block.block.events
            parts: list[Future[BatchResult] | BatchResult] = []
            for offset in range(0, len(events), BATCH_EVENTS):
                chunk = events[offset : offset + BATCH_EVENTS]
                if self._pool is None:
                    parts.append(verify_batch(chunk, self._keys.directory))
                else:
                    parts.append(self._pool.submit(verify_batch, chunk, dict(self._keys.directory)))
                    self._tasks += 1
            self._queue.append((block, parts))
            if self._pool is None:
                return


def _merge(results: list[BatchResult]) -> BatchResult:
    if len(results) == 1:
        return results[0]
    verified: list[bytes] = []
    bad: list[tuple[int, str]] = []
    keys: list[tuple[str, bytes]] = []
    kinds: Counter[str] = Counter()
    credentials: list[tuple[str, bytes, int | None]] = []
    offset = 0
    for result in results:
        verified.extend(result.verified)
        bad.extend((offset + position, detail) for position, detail in result.bad)
        keys.extend(result.keys)
        kinds.update(result.kinds)
        credentials.extend(result.credentials)
        offset += BATCH_EVENTS
    cpu = sum(result.cpu for result in results)
    return BatchResult(tuple(verified), tuple(bad), tuple(keys), dict(kinds), tuple(credentials), cpu)


def _pool(workers: int) -> ProcessPoolExecutor:
    # forkserver: workers start from a clean process, never from a fork of one holding LMDB maps and threads.
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_yield_to_the_replay)


def _yield_to_the_replay() -> None:
    """Run a worker at a lower priority: the replay is the one serial step, so it should never wait for a core
    while workers, already ahead, check signatures it will need only later."""
    os.nice(WORKER_NICENESS)


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
