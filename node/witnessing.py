"""Being witnessed: submit each new checkpoint to the configured outside witnesses and keep their cosignatures.

Theory of operation
-------------------
Every node that lists `[witnesses]` submits on its own (the proposer has no special role): cosignatures arrive
after a block commits, so they are not part of consensus, and each node serves what its witnesses gave it. The node
looks for a new certificate every `WATCH_S`; a new one is sent at once unless the last submission began less than
`witness_interval_ms` ago (then as soon as it is that old), so a checkpoint after a quiet spell is witnessed without
waiting out the interval, and a busy network submits at most once per interval. It goes to every witness at once as
C2SP tlog-witness `POST /add-checkpoint`, with the size that witness last cosigned (0 when unknown) and a
consistency proof from there. A 409 names the size the witness holds (another node of the network may have moved
it): the node resubmits once from that size. A cosignature is verified against the witness's vkey before it is
kept (`ledger.witness.read_witness_answer`); any other answer, or no answer, is logged and the witness is tried
again with the next checkpoint.

The note with the cosignatures appended is kept for its height: `/v1/checkpoint`, `/checkpoint` and proof bundles
carry them while that height is the latest. It is also written to `data_dir/cosigned-checkpoint` (fsynced, renamed
into place whole) before it is served, so a restarted node serves the cosignatures it collected even while its
witnesses cannot be reached. At start the file is used only if its note is the node's own certificate of that
height and every cosignature line on it verifies under a witness the config lists (lines of other witnesses are
dropped); the sizes it proves become the sizes those witnesses are known to hold. A checkpoint submitted again at
the same height keeps the cosignatures of witnesses that did not answer this time.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import structlog

from credledger.ledger.cosignature import Cosignature, CosignerKey, verified_cosignatures
from credledger.ledger.errors import ConfigError, CredledgerError, DecodeError, VerificationError
from credledger.ledger.note import Checkpoint, SignedNote
from credledger.ledger.storage.store import Store
from credledger.ledger.treehead import TreeHead
from credledger.ledger.witness import Resubmit, add_checkpoint_body, read_witness_answer
from credledger.node.config import WitnessesConfig

log = structlog.get_logger("credledger.witnessing")
#: Largest answer read from a witness (a few cosignature lines, or a problem document).
MAX_ANSWER_BYTES = 64 * 1024
#: How often the node looks for a new checkpoint between submissions (one LMDB read of the height).
WATCH_S = 0.05


@dataclass(frozen=True, slots=True)
class OutsideWitness:
    key: CosignerKey
    url: str


@dataclass(frozen=True, slots=True)
class CosignedCheckpoint:
    """The certificate of block `height` with the witnesses' cosignature lines appended."""

    height: int
    note: str
    cosignatures: tuple[Cosignature, ...]

    @property
    def witnesses(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cosignatures)


def load_witnesses(config: WitnessesConfig) -> list[OutsideWitness]:
    """The witnesses `[witnesses]` lists; `ConfigError` names a wrong entry."""
    found = []
    for number, entry in enumerate(config.witnesses):
        where = f"witnesses.witnesses[{number}]"
        try:
            key = CosignerKey.from_vkey(entry.vkey)
        except (DecodeError, ValueError) as exc:
            raise ConfigError(f"{where}.vkey: {exc}") from None
        if not entry.url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.url: expected an http:// or https:// URL, got {entry.url[:80]!r}")
        found.append(OutsideWitness(key, entry.url.rstrip("/")))
    if found and not 1 <= config.quorum <= len(found):
        raise ConfigError(f"witnesses.quorum: expected 1 to {len(found)}, got {config.quorum}")
    return found


class Witnessing:
    """Submits checkpoints to the witnesses and holds the latest cosigned one."""

    def __init__(
        self,
        store: Store,
        witnesses: Sequence[OutsideWitness],
        config: WitnessesConfig,
        keep: Path | None = None,
    ) -> None:
        """`keep` is the file the latest cosigned checkpoint is written to and restored from (None: memory only)."""
        self._store = store
        self._witnesses = list(witnesses)
        self._quorum = config.quorum
        self._interval_s = config.witness_interval_ms / 1000
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_ms / 1000)
        #: The size each witness last cosigned, as far as this node knows.
        self._known = {w.key.name: 0 for w in self._witnesses}
        self._submitted = 0
        self._keep = keep
        self.cosigned: CosignedCheckpoint | None = None if keep is None else self._restore(keep)

    def note_for(self, height: int, certificate: str) -> str:
        """The certificate of `height`, with cosignatures appended if the witnesses cosigned it."""
        cosigned = self.cosigned
        return cosigned.note if cosigned is not None and cosigned.height == height else certificate

    async def run(self) -> None:
        """Submit each new checkpoint as soon as it commits, but at most once per interval, until cancelled."""
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            while True:
                started = loop.time()
                if await self.submit_latest(session):
                    await asyncio.sleep(max(0.0, started + self._interval_s - loop.time()))
                else:
                    await asyncio.sleep(min(WATCH_S, self._interval_s))

    async def submit_latest(self, session: aiohttp.ClientSession) -> bool:
        """Submit the latest checkpoint to every witness if it is new; say whether it was."""
        with self._store.snapshot() as snap:
            height = snap.height
            if height in (0, self._submitted):
                return False
            certificate = snap.certificate(height)
        note = SignedNote.parse(certificate)
        size = TreeHead.parse(note.text).size
        answers = await asyncio.gather(*(self._submit(session, w, note, size) for w in self._witnesses))
        self._submitted = height
        fresh = {c.name: c for c in answers if c is not None}
        previous = self.cosigned
        if previous is not None and previous.height == height:  # keep what silent witnesses gave before
            fresh = {c.name: c for c in previous.cosignatures} | fresh
        cosignatures = [fresh[w.key.name] for w in self._witnesses if w.key.name in fresh]
        if cosignatures:
            signed = note.with_signatures(c.note_signature() for c in cosignatures)
            cosigned = CosignedCheckpoint(height, signed.format(), tuple(cosignatures))
            if self._keep is not None:
                await asyncio.to_thread(_write_whole, self._keep, cosigned.note)
            self.cosigned = cosigned
        if len(cosignatures) < self._quorum:
            log.warning("witness quorum not reached", height=height, cosigned=len(cosignatures), quorum=self._quorum)
        return True

    async def _submit(
        self, session: aiohttp.ClientSession, witness: OutsideWitness, note: SignedNote, size: int
    ) -> Cosignature | None:
        name = witness.key.name
        try:
            for _ in range(2):  # the first try, and once more from the size a 409 names
                old = self._known[name]
                if old > size:
                    old = 0  # the witness's record is not ours to prove from; let its 409 say what it holds
                proof = self._proof(old, size)
                body = add_checkpoint_body(old, proof, note)
                async with session.post(witness.url + "/add-checkpoint", data=body) as response:
                    answer_body = await _read_answer(response)
                    kind = response.headers.get("Content-Type")
                    answer = read_witness_answer(response.status, answer_body, note, witness.key, content_type=kind)
                if isinstance(answer, Resubmit):
                    self._known[name] = answer.old_size
                    continue
                self._known[name] = size
                return answer
            log.warning("witness kept answering 409", witness=name, size=size)
        except CredledgerError as exc:
            log.warning("witness refused the checkpoint", witness=name, size=size, error=str(exc))
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("witness unreachable", witness=name, url=witness.url, error=str(exc) or type(exc).__name__)
        return None

    def _restore(self, path: Path) -> CosignedCheckpoint | None:
        """The cosigned checkpoint kept in `path`, if it is this node's certificate with valid cosignatures."""
        try:
            kept = SignedNote.parse(path.read_bytes())
            checkpoint = Checkpoint.parse(kept.text)
            with self._store.snapshot() as snap:
                if checkpoint.height > snap.height:
                    raise VerificationError(f"it is of height {checkpoint.height}, past the ledger's {snap.height}")
                certificate = SignedNote.parse(snap.certificate(checkpoint.height))
            if certificate.text != kept.text:
                raise VerificationError(f"it is not this node's certificate of height {checkpoint.height}")
            found = verified_cosignatures(kept, [w.key for w in self._witnesses])
        except FileNotFoundError:
            return None
        except (OSError, KeyError, DecodeError, VerificationError) as exc:
            log.warning("kept cosigned checkpoint not used", path=str(path), error=str(exc))
            return None
        cosignatures = tuple(found[w.key.name] for w in self._witnesses if w.key.name in found)
        if not cosignatures:
            return None
        for name in found:
            self._known[name] = checkpoint.size
        note = certificate.with_signatures(c.note_signature() for c in cosignatures)
        return CosignedCheckpoint(checkpoint.height, note.format(), cosignatures)

    def _proof(self, old: int, size: int) -> list[bytes]:
        if old in (0, size):
            return []
        with self._store.snapshot() as snap:
            return snap.consistency_proof(old, size)


def _write_whole(path: Path, text: str) -> None:
    """Write `path` durably and whole: a temporary file, fsynced, renamed over it, and the directory fsynced."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        log.warning("cannot keep the cosigned checkpoint", path=str(path), error=str(exc))


async def _read_answer(response: aiohttp.ClientResponse) -> bytes:
    """The answer's body, at most `MAX_ANSWER_BYTES` of it (a longer one is cut, and then fails to parse)."""
    chunks: list[bytes] = []
    total = 0
    while total <= MAX_ANSWER_BYTES and (chunk := await response.content.readany()):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)[: MAX_ANSWER_BYTES + 1]
