"""Bulk issuance: sign and submit thousands of credentials, wait for their commit, keep one receipt per credential.

Theory of operation
-------------------
`BatchIssuer.run` takes credentials (a name and the document's bytes each) and, for each, ends in exactly one
outcome: issued (committed, receipt written), refused by the ledger (the rule), or bad input. The work:

1. Each credential's *key* is the digest of its input (RFC 8785 JSON, or the bytes with `raw`); two inputs with one
   key are one credential, issued once. The journal (`verifier.batchjournal`, in the output directory) says what
   earlier runs did with each key.
2. Credentials the journal shows as sent but not settled are *in doubt*: the process died (or the node did not
   answer) after their event may have reached a node. They are looked up on the ledger first, in bulk
   (`POST /v1/record`, 1,000 digests a request): one whose issue event is one this batch signed is committed,
   and its bundle is its receipt; one the ledger does not hold is asked for by event id (pending: wait for it;
   unknown: send it again -- the same bytes, or, once too old for admission, the same issue signed afresh).
3. New credentials are signed in chunks of the node's batch limit; a chunk's events are written to the journal
   and fsynced *before* the chunk is sent (`POST /v1/events?wait=commit`), at most `concurrency` chunks in
   flight, each in a worker thread. A committed chunk's receipts are fetched in one `POST /v1/record` (on
   another thread, so the chunk's request slot is free at once; from the nodes given to read from in turn) and
   written before the journal records them. Sending waits while too many committed chunks wait for their
   receipts, so receipts keep pace with commits instead of piling up after the last one.
4. What a chunk's answer left unsettled (a commit wait that timed out, a lost connection, an event a committed
   block dropped) goes back to step 2 until every credential is settled or the node stops answering.

Why this never issues a credential twice: the ledger admits at most one issue per digest (`already-issued`), and
every event id this batch ever signed for a key is in the journal before it leaves the process, so a rerun
recognises its own committed event instead of counting the credential as someone else's. Why it never loses one:
nothing is marked settled before the ledger (or its certified bundle) says so, and the journal is read back on
every run.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credledger.ledger.digest import document_digest
from credledger.ledger.errors import CredledgerError, DecodeError
from credledger.ledger.events import Event, Issue, UnsignedEvent, decode_event, sign_event
from credledger.ledger.genesis import Genesis
from credledger.ledger.keys import SigningKey
from credledger.ledger.record import MAX_RECORD_CREDENTIALS, Record, verify_record
from credledger.verifier.batchjournal import FILE_NAME, Entry, Journal, JournalError
from credledger.verifier.batchreceipts import ReceiptRecord, receipt_paths, receipts_kept, write_file
from credledger.verifier.client import NodeClient, NodeProblem, NodeUnreachable

#: Chunks in flight at once by default.
DEFAULT_CONCURRENCY = 4
#: Events per request when the node does not say its limits.
DEFAULT_BATCH = 1000
#: An event older than this is signed again rather than resent (admission refuses events older than the
#: network's clock skew, 300 s by default; this leaves room for clocks that differ).
RESIGN_AFTER_MS = 120_000
#: How long in-doubt credentials are waited for (pending on the node) before the run gives up on them.
SETTLE_TIMEOUT_S = 120.0
#: Retries of a chunk the node could not take now (mempool full, too many waiters), with growing pauses.
BUSY_RETRIES = 30
#: Threads fetching and writing receipts, beside the `concurrency` submitting: a chunk's request slot is free
#: again as soon as it is committed. With more nodes to read from, one thread per node: the chunks that commit
#: together at the end of a run have their records built by as many nodes at once.
RECEIPT_THREADS = 2
#: Committed chunks whose receipts are still to fetch, per receipt thread, beyond which no more chunks are sent
#: until some are written. Unbounded, on a machine where records come slower than commits, the receipts pile up
#: into a tail after the last commit that grows with the batch; bounded, records are built while blocks commit.
RECEIPTS_AHEAD = 2
#: Refusals that mean "the ledger may hold this credential already": looked up rather than counted as refused.
_LOOK_UP = frozenset({"duplicate-event", "replayed-event", "already-issued"})


@dataclass(frozen=True, slots=True)
class Credential:
    """One input: where it came from (for messages), its receipt's file name stem (None: its key in hex), and the
    document's bytes."""

    source: str
    name: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class BadInput:
    """A file or line of the batch that is not a credential, and why."""

    source: str
    detail: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one credential."""

    source: str
    status: str  # issued | refused | failed
    digest: bytes | None = None
    event_id: bytes | None = None
    index: int | None = None
    receipt: str | None = None
    rule: str | None = None
    detail: str = ""
    #: Settled by an earlier run (read from the journal).
    resumed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "digest": None if self.digest is None else self.digest.hex(),
            "event": None if self.event_id is None else self.event_id.hex(),
            "index": self.index,
            "receipt": self.receipt,
            "rule": self.rule,
            "detail": self.detail,
            "resumed": self.resumed,
        }


@dataclass(slots=True)
class BatchReport:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return all(o.status == "issued" for o in self.outcomes)


@dataclass(frozen=True, slots=True)
class Signer:
    """Turns inputs into the credentials that are registered (None for plain issues): `sign(documents)` returns, for
    each, the document to register (its text) and the status entry (list, index) its issue names, or why it cannot
    be signed. `close` ends what the signer started (worker processes)."""

    sign: Callable[[Sequence[dict[str, Any]]], list[tuple[str, int, int] | str]]
    close: Callable[[], None] = lambda: None


@dataclass(slots=True)
class _Item:
    credential: Credential
    key: bytes
    entry: Entry
    document: dict[str, Any] | None = None  # a signed issue's unsigned input
    #: Why its event must be signed again before it is resent: "time" (too old), "entry" (status entry taken).
    redo: str | None = None

    @property
    def name(self) -> str:
        return self.credential.name or self.key.hex()

    #: The latest event and the encoding it was decoded from, decoded once (a chunk reads it to send it and again
    #: to match the answer).
    decoded: tuple[bytes, Event] | None = None

    @property
    def event(self) -> Event:
        latest = self.entry.events[-1]
        if self.decoded is None or self.decoded[0] != latest:
            self.decoded = (latest, decode_event(latest))
        return self.decoded[1]


@dataclass(slots=True)
class _Answer:
    """What one sent chunk came to."""

    issued: list[tuple[_Item, bytes, int, str, int]] = field(default_factory=list)  # item, id, index, path, bytes
    committed: list[tuple[_Item, bytes, int]] = field(default_factory=list)  # its receipt still to fetch
    unreceipted: list[tuple[_Item, bytes, int]] = field(default_factory=list)  # the receipt could not be fetched
    doubt: list[_Item] = field(default_factory=list)
    resign: list[_Item] = field(default_factory=list)
    refused: list[tuple[_Item, str, str]] = field(default_factory=list)


class BatchIssuer:
    """Issues credentials in bulk through `client`'s node, signed with the issuer `key`, keeping the journal and
    the receipts in `out` (see the module docstring)."""

    def __init__(
        self,
        client: NodeClient,
        key: SigningKey,
        out: Path,
        *,
        origin: str,
        expires_ms: int | None = None,
        achievement: tuple[str, int] | None = None,
        raw: bool = False,
        signer: Signer | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        batch_size: int = DEFAULT_BATCH,
        genesis: Genesis | None = None,
        progress: Callable[[int], None] | None = None,
        readers: Sequence[NodeClient] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if concurrency < 1 or batch_size < 1:
            raise ValueError("concurrency and batch size must be at least 1")
        self.client = client
        self.key = key
        self.out = out
        self.origin = origin
        self.expires_ms = expires_ms
        self.achievement = achievement
        self.raw = raw
        self.signer = signer
        self.concurrency = concurrency
        self.batch_size = min(batch_size, MAX_RECORD_CREDENTIALS)
        self.genesis = genesis
        self.progress = progress or (lambda _count: None)
        self.clock = clock
        #: Nodes receipts are fetched from in turn (with `client`): any node serves the same certified proofs.
        self._readers = itertools.cycle([client, *readers])
        self._receipt_threads = max(RECEIPT_THREADS, 1 + len(readers))
        self._readers_lock = threading.Lock()
        self._journal: Journal | None = None
        self._receipts: ThreadPoolExecutor | None = None
        self._fresh: Iterator[_Item] = iter(())
        self._more = False
        self._outcomes: dict[bytes, Outcome] = {}

    # --- the run ------------------------------------------------------------------------------------------------

    def run(self, credentials: Iterable[Credential | BadInput]) -> BatchReport:
        """Issue every credential (resuming what the journal in `out` says an earlier run did); never raises for
        one credential's fault. Raises NodeUnreachable if the node stops answering (rerun to resume)."""
        started = time.monotonic()
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"{self.out}: cannot create the output folder ({exc.strerror})") from None
        header = {
            "origin": self.origin,
            "issuer": self.key.name,
            "mode": "sign" if self.signer else "raw" if self.raw else "jcs",
            "expires_ms": self.expires_ms,
            "achievement": None if self.achievement is None else list(self.achievement),
        }
        self._journal = Journal(self.out / FILE_NAME, header)
        report = BatchReport()
        try:
            order: list[bytes] = []
            doubt: list[_Item] = []
            unreceipted: list[_Item] = []
            fresh = self._classify(credentials, report, order, doubt, unreceipted)
            if self._journal.entries:
                # A rerun: every credential is looked up in the journal (and what is in doubt settled) first.
                fresh = iter(list(fresh))
            # A first run reads, hashes and sends in step: the first chunk leaves before the last line is hashed.
            self._fresh, self._more = fresh, True
            with ThreadPoolExecutor(self.concurrency) as pool, ThreadPoolExecutor(self._receipt_threads) as receipts:
                self._receipts = receipts
                self._receipts_for(pool, unreceipted)
                queue: deque[_Item] = deque()
                progressed = time.monotonic()
                first = True
                while doubt or queue or self._more:
                    settled = len(self._outcomes)
                    if doubt:
                        if not first:
                            time.sleep(0.5)  # what is pending on the node needs a block or two
                        queue.extend(self._settle(pool, doubt))
                    first = False
                    doubt = self._submit(pool, queue)
                    if len(self._outcomes) > settled:
                        progressed = time.monotonic()
                    elif time.monotonic() - progressed > SETTLE_TIMEOUT_S:
                        break
            for item in doubt:
                self._settled(item, "failed", detail="still pending on the node; run the batch again to follow it up")
        finally:
            self._journal.close()
            if self.signer is not None:
                self.signer.close()
        report.outcomes.extend(self._outcomes[key] for key in order if key in self._outcomes)
        report.seconds = time.monotonic() - started
        return report

    def _classify(
        self,
        credentials: Iterable[Credential | BadInput],
        report: BatchReport,
        order: list[bytes],
        doubt: list[_Item],
        unreceipted: list[_Item],
    ) -> Iterator[_Item]:
        """Yield the credentials the journal does not know; settle, or add to `doubt` or `unreceipted`, the others."""
        assert self._journal is not None
        seen: dict[bytes, str] = {}
        for credential in credentials:
            if isinstance(credential, BadInput):
                report.outcomes.append(Outcome(credential.source, "failed", detail=credential.detail))
                self.progress(1)
                continue
            try:
                key, document = self._key(credential)
            except DecodeError as exc:
                report.outcomes.append(Outcome(credential.source, "failed", detail=str(exc)))
                self.progress(1)
                continue
            if key in seen:
                detail = f"the same credential as {seen[key]} (digest {key.hex()}); issued once"
                report.outcomes.append(Outcome(credential.source, "refused", rule="duplicate-in-batch", detail=detail))
                self.progress(1)
                continue
            seen[key] = credential.source
            order.append(key)
            entry = self._journal.entries.get(key)
            if entry is None:
                yield _Item(credential, key, Entry(credential.source), document)
                continue
            item = _Item(credential, key, entry, document)
            if entry.refused is not None:
                self._settled(item, "refused", rule=entry.refused[0], detail=entry.refused[1], resumed=True)
            elif entry.committed_index is not None:
                if entry.receipt is not None and receipts_kept(self.out, entry):
                    self._settled(item, "issued", resumed=True)
                else:
                    unreceipted.append(item)
            else:
                doubt.append(item)

    def _key(self, credential: Credential) -> tuple[bytes, dict[str, Any] | None]:
        if self.signer is None:
            return document_digest(credential.data, raw=self.raw).digest, None
        try:
            document = json.loads(credential.data)
        except (ValueError, RecursionError):
            raise DecodeError("a credential to sign must be a JSON-LD object, and this is not JSON") from None
        if not isinstance(document, dict):
            raise DecodeError("a credential to sign must be a JSON-LD object")
        return document_digest(credential.data).digest, document

    # --- sending ------------------------------------------------------------------------------------------------

    def _submit(self, pool: ThreadPoolExecutor, queue: deque[_Item]) -> list[_Item]:
        """Send everything in `queue` (and what comes back to it), at most `concurrency` chunks in flight, and fetch
        the receipts of what commits (no chunk is sent while `RECEIPTS_AHEAD` per receipt thread wait for theirs);
        return the credentials left in doubt."""
        assert self._receipts is not None
        doubt: list[_Item] = []
        flying: set[Future[_Answer]] = set()
        fetching: set[Future[_Answer]] = set()
        ahead: list[_Item] = []  # the next chunk, signed and journalled while the requests are out
        while queue or self._more or ahead or flying or fetching:
            room = len(fetching) < RECEIPTS_AHEAD * self._receipt_threads
            while (ahead or queue or self._more) and len(flying) < self.concurrency and room:
                chunk, ahead = ahead or self._next_chunk(queue), []
                if chunk:
                    flying.add(pool.submit(self._send, chunk))
            if not ahead and (queue or self._more):
                ahead = self._next_chunk(queue)  # every slot is busy: prepare the next chunk meanwhile
            if not flying and not fetching:
                continue
            done, _ = wait(flying | fetching, return_when=FIRST_COMPLETED)
            for future in done:
                flying.discard(future)
                fetching.discard(future)
                answer = future.result()
                self._absorb(answer)
                doubt.extend(answer.doubt)
                queue.extend(answer.resign)
                if answer.committed:
                    fetching.add(self._receipts.submit(self._write_receipts, answer.committed))
        return doubt

    def _next_chunk(self, queue: deque[_Item]) -> list[_Item]:
        """Up to `batch_size` credentials, from what came back first, then fresh ones; signed and journalled."""
        chunk = [queue.popleft() for _ in range(min(self.batch_size, len(queue)))]
        if len(chunk) < self.batch_size and self._more:
            chunk.extend(itertools.islice(self._fresh, self.batch_size - len(chunk)))
            self._more = len(chunk) == self.batch_size
        return self._sign(chunk)

    def _sign(self, chunk: list[_Item]) -> list[_Item]:
        """Sign (or re-sign, once too old) each item's issue event and journal it before it is sent."""
        assert self._journal is not None
        now = int(self.clock() * 1000)
        records: list[dict[str, Any]] = []
        ready: list[_Item] = []
        resend = [bool(i.entry.events and i.redo is None and now - i.event.time_ms < RESIGN_AFTER_MS) for i in chunk]
        again = [bool(i.entry.events and i.redo != "entry") for i in chunk]
        documents: dict[int, tuple[str, int, int] | str] = {}
        if self.signer is not None:
            wanted = [i for i, (r, a) in zip(chunk, zip(resend, again, strict=True), strict=True) if not (r or a)]
            signed = self.signer.sign([item.document or {} for item in wanted]) if wanted else []
            documents = {id(item): result for item, result in zip(wanted, signed, strict=True)}
        for item, as_it_was, same_issue in zip(chunk, resend, again, strict=True):
            if as_it_was:
                ready.append(item)
                continue
            record: dict[str, Any] = {"t": "signed", "key": item.key.hex(), "source": item.credential.source}
            try:
                if same_issue:
                    payload = item.event.payload  # the same issue (and document), at a fresh time
                elif self.signer is not None:
                    result = documents[id(item)]
                    if isinstance(result, str):
                        raise ValueError(result)
                    text, list_number, index = result
                    record["document"] = text
                    payload = self._issue(document_digest(text.encode()).digest, (list_number, index))
                else:
                    payload = self._issue(item.key, None)
            except (CredledgerError, ValueError) as exc:
                self._settled(item, "failed", detail=f"cannot issue this credential: {exc}")
                continue
            item.redo = None
            event = sign_event(UnsignedEvent(self.origin, now, payload), self.key)
            assert isinstance(payload, Issue)
            encoded = event.encode()
            item.decoded = (encoded, event)
            record.update(digest=payload.digest.hex(), event=base64.b64encode(encoded).decode())
            records.append(record)
            ready.append(item)
        self._journal.append(records)
        for item in ready:
            item.entry = self._journal.entries.get(item.key, item.entry)
        return ready

    def _issue(self, digest: bytes, status: tuple[int, int] | None) -> Issue:
        achievement, version = self.achievement if self.achievement else (None, None)
        list_number, index = status if status else (None, None)
        return Issue(
            digest,
            self.key.name,
            self.expires_ms,
            (),
            list_number,
            index,
            achievement=achievement,
            achievement_version=version,
        )

    def _send(self, chunk: list[_Item]) -> _Answer:
        """Worker thread: submit one chunk and wait for its commit, then fetch and write its receipts."""
        answer = _Answer()
        encoded = [item.entry.events[-1] for item in chunk]  # as journalled: sent without encoding them again
        wait_s = self.client.timeout
        for attempt in range(BUSY_RETRIES):
            try:
                result = self.client.submit_encoded(encoded, wait=True, timeout=wait_s)
            except NodeProblem as exc:
                if exc.status == 503 and attempt + 1 < BUSY_RETRIES:
                    time.sleep(min(0.2 * (attempt + 1), 2.0))
                    continue
                self._refusals(chunk, exc, answer)
                break
            except NodeUnreachable:
                answer.doubt.extend(chunk)
                break
            results = result.get("results")
            if not isinstance(results, list) or len(results) != len(chunk):
                answer.doubt.extend(chunk)
                break
            for item, entry in zip(chunk, results, strict=True):
                event_id = item.event.id
                if isinstance(entry, dict) and entry.get("status") == "committed" and entry.get("id") == event_id.hex():
                    answer.committed.append((item, event_id, int(entry["index"])))
                else:
                    answer.doubt.append(item)
            break
        return answer

    def _refusals(self, chunk: list[_Item], exc: NodeProblem, answer: _Answer) -> None:
        results = exc.body.get("results")
        if exc.code in ("event-dropped", "commit-timeout") or exc.status >= 500:
            # Not committed within the node's wait, dropped by a block, or the node failing: look them up.
            answer.doubt.extend(chunk)
            return
        if exc.code == "batch-refused" and isinstance(results, list) and len(results) == len(chunk):
            outcomes: list[tuple[str, str, str]] = []
            for result in results:
                problem = result.get("problem") if isinstance(result, dict) else None
                if isinstance(problem, dict):
                    code = str(problem.get("type", "")).rsplit(":", 1)[-1]
                    outcomes.append((code, str(problem.get("rule") or code), str(problem.get("detail", ""))))
                else:
                    outcomes.append(("pending", "", ""))
        else:
            outcomes = [(exc.code, exc.rule or exc.code, exc.detail)] * len(chunk)
        for item, (code, rule, detail) in zip(chunk, outcomes, strict=True):
            if code == "pending" or code in _LOOK_UP or rule in _LOOK_UP:
                answer.doubt.append(item)
            elif rule == "time-out-of-range" or (rule == "status-entry-used" and self.signer is not None):
                item.redo = "time" if rule == "time-out-of-range" else "entry"
                answer.resign.append(item)
            else:
                answer.refused.append((item, rule, detail))

    # --- settling what is in doubt ------------------------------------------------------------------------------

    def _settle(self, pool: ThreadPoolExecutor, doubt: list[_Item]) -> list[_Item]:
        """Look the in-doubt credentials up on the ledger: the committed ones get their receipts; return the others,
        to be sent again. (An event still pending on the node comes back from it as a duplicate, in doubt again;
        one the node no longer holds is admitted afresh. Either way one request per chunk, not per event.)"""
        chunks = [doubt[i : i + MAX_RECORD_CREDENTIALS] for i in range(0, len(doubt), MAX_RECORD_CREDENTIALS)]
        resend: list[_Item] = []
        for answer, absent in pool.map(self._look_up, chunks):
            self._absorb(answer)
            resend.extend(absent)
        return resend

    def _look_up(self, chunk: list[_Item]) -> tuple[_Answer, list[_Item]]:
        """Worker thread: which of `chunk` the ledger holds (by this batch's event: their receipts are written)."""
        answer = _Answer()
        absent: list[_Item] = []
        record = self._record(chunk)
        committed: list[tuple[_Item, bytes, int]] = []
        for item, proof in zip(chunk, record.items, strict=True):
            if proof.event_id is None:
                absent.append(item)
            elif proof.event_id in {decode_event(e).id for e in item.entry.events}:
                committed.append((item, proof.event_id, proof.index))
            else:
                detail = f"the ledger holds this credential already, issued by event {proof.event_id.hex()}"
                answer.refused.append((item, "already-issued", detail + ", which this batch did not sign"))
        self._write_files(committed, record, answer)
        return answer, absent

    # --- receipts -----------------------------------------------------------------------------------------------

    def _receipts_for(self, pool: ThreadPoolExecutor, items: Sequence[_Item]) -> None:
        """Fetch and write the receipts of credentials committed earlier whose receipts were not kept."""
        chunks = []
        for i in range(0, len(items), MAX_RECORD_CREDENTIALS):
            chunk = items[i : i + MAX_RECORD_CREDENTIALS]
            chunks.append([(item, item.entry.committed_id or b"", item.entry.committed_index or 0) for item in chunk])
        for answer in pool.map(self._write_receipts, chunks):
            self._absorb(answer)

    def _record(self, items: Sequence[_Item], client: NodeClient | None = None) -> ReceiptRecord:
        """The node's `credledger-record/v1` of `items`, checked item by item (verified, given a genesis)."""
        client = client or self.client
        digests = [item.entry.digest for item in items]
        data = client.record(digests)
        signed = {item.decoded[0]: item.decoded[1].id for item in items if item.decoded is not None}
        try:
            if self.genesis is not None:
                verify_record(Record.from_json(data), self.genesis)
            return ReceiptRecord.of(data, digests, signed)
        except (DecodeError, KeyError, TypeError, ValueError) as exc:
            raise NodeUnreachable(f"{client.base_url}/v1/record: not a usable record ({exc})") from None

    def _write_receipts(self, committed: list[tuple[_Item, bytes, int]]) -> _Answer:
        """Worker thread: fetch the receipts of committed credentials in one request and write them."""
        answer = _Answer()
        with self._readers_lock:
            reader = next(self._readers)
        for client in dict.fromkeys([reader, self.client]):  # a reader behind the submitting node: ask that one
            try:
                record = self._record([item for item, _, _ in committed], client)
            except (NodeProblem, NodeUnreachable):
                continue
            missing = _Answer()
            self._write_files(committed, record, missing)
            answer.issued.extend(missing.issued)
            committed = missing.unreceipted
            if not committed:
                break
        answer.unreceipted.extend(committed)  # committed; the receipt is fetched on the next run
        return answer

    def _write_files(self, committed: list[tuple[_Item, bytes, int]], record: ReceiptRecord, answer: _Answer) -> None:
        """Write each committed credential's receipt: its bundle, C2SP tlog-proof, and signed document if any."""
        by_digest = {proof.digest: proof for proof in record.items}
        for item, event_id, index in committed:
            proof = by_digest.get(item.entry.digest)
            if proof is None or proof.event_id != event_id or proof.index != index:
                answer.unreceipted.append((item, event_id, index))
                continue
            paths = receipt_paths(self.out, item.name, signed=item.entry.document is not None)
            try:
                size = write_file(paths[0], record.bundle_text(proof))
                size += write_file(paths[1], record.tlog_proof(proof))
                if item.entry.document is not None:
                    size += write_file(paths[2], item.entry.document)
            except OSError as exc:
                # The journal holds the commit: a rerun writes the receipt once the folder can take it.
                raise JournalError(f"{paths[0]}: cannot write the receipt ({exc.strerror}); run again") from None
            answer.issued.append((item, event_id, index, paths[0].name, size))

    # --- bookkeeping (main thread) ------------------------------------------------------------------------------

    def _absorb(self, answer: _Answer) -> None:
        """Journal what an answer settled (one write, one fsync), then count it."""
        assert self._journal is not None
        records: list[dict[str, Any]] = []
        for item, event_id, index, *_ in answer.issued:
            if item.entry.committed_index is None:
                records.append({"t": "committed", "key": item.key.hex(), "id": event_id.hex(), "index": index})
        for item, event_id, index in answer.committed:
            records.append({"t": "committed", "key": item.key.hex(), "id": event_id.hex(), "index": index})
        for item, _, _, path, size in answer.issued:
            records.append({"t": "receipt", "key": item.key.hex(), "path": path, "bytes": size})
        for item, rule, detail in answer.refused:
            records.append({"t": "refused", "key": item.key.hex(), "rule": rule, "detail": detail})
        self._journal.append(records)
        for item, *_ in answer.issued:
            self._settled(item, "issued")
        for item, _, _ in answer.unreceipted:
            detail = "committed, but its receipt could not be fetched; run the batch again to fetch it"
            self._settled(item, "failed", detail=detail)
        for item, rule, detail in answer.refused:
            self._settled(item, "refused", rule=rule, detail=detail)

    def _settled(
        self, item: _Item, status: str, *, rule: str | None = None, detail: str = "", resumed: bool = False
    ) -> None:
        assert self._journal is not None
        entry = self._journal.entries.get(item.key, item.entry)
        self._outcomes[item.key] = Outcome(
            item.credential.source,
            status,
            digest=entry.digest or None,
            event_id=entry.committed_id,
            index=entry.committed_index,
            receipt=entry.receipt,
            rule=rule,
            detail=detail,
            resumed=resumed,
        )
        self.progress(1)
