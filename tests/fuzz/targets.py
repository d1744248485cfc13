"""The decoders of outside bytes, as fuzz targets: bytes in, a value or a `CredledgerError` out.

Each target runs one parser the way the node, the syncer or a verifier runs it on what arrives from outside --
and where the parser's result feeds a verifier, the verifier too (a decoded certificate is checked against the
validator set, a decoded bundle against the genesis). The contract every target holds, whatever the input:

- it returns, or raises `CredledgerError` (the project's own errors, which the CLI and API turn into messages);
- it never raises anything else (a stray `ValueError`, `KeyError`, `RecursionError`, ... is a finding);
- it never hangs and never allocates without bound (the fuzzers run each input under a time and memory limit).

`check(target, data)` enforces the contract; the Hypothesis tests, the atheris harness and the long-run script
all call it.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypothesis.strategies import SearchStrategy

from credledger.ledger import codec, tlogproof
from credledger.ledger.achievement import parse_definition
from credledger.ledger.block import CertifiedBlock, decode_header, verify_certificate, verify_certified_header
from credledger.ledger.bundle import Bundle, verify_bundle
from credledger.ledger.cosignature import CosignerKey, cosign
from credledger.ledger.errors import CredledgerError, DecodeError
from credledger.ledger.eventjson import event_from_json
from credledger.ledger.events import decode_event
from credledger.ledger.genesis import parse_genesis
from credledger.ledger.merkle import consistency_path, leaf_hash
from credledger.ledger.note import Checkpoint, SignedNote
from credledger.ledger.recognition import parse_recognition
from credledger.ledger.record import Record, verify_record
from credledger.ledger.treehead import TreeHead
from credledger.ledger.votes import decode_evidence, decode_message, verify_evidence, verify_vote
from credledger.ledger.witness import (
    SIZE_CONTENT_TYPE,
    LogRecord,
    WitnessedLog,
    add_checkpoint,
    add_checkpoint_body,
    read_witness_answer,
)
from credledger.ledger.witnesspolicy import WitnessPolicy
from credledger.node.api import events as api_events
from credledger.node.config import ApiConfig, parse_config
from credledger.node.peers import Hello, Proof
from credledger.node.sync import max_certified_block_bytes
from tests.catalogue import canonical, definition
from tests.factories import key_for
from tests.fuzz.corpus import Corpus, corpus
from tests.fuzz.machine import REFUSALS, MachineTarget, moved_messages

#: Settings a config file may not take from the environment during fuzzing (the real environment is not input).
_NO_ENV: dict[str, str] = {}
_CONFIG_BASE = Path("/nonexistent/credledger-fuzz")
MAX_BATCH = ApiConfig().max_batch


@dataclass(frozen=True)
class Target:
    """One parser of outside bytes: `run` parses (and verifies) `data`; `seeds` picks its valid examples."""

    name: str
    module: str
    run: Callable[[bytes, Corpus], object]
    seeds: Callable[[Corpus], tuple[bytes, ...]]
    #: Whether inputs are text whose structure is JSON (the fuzzers also mutate them as JSON values).
    json: bool = False
    #: What the target may raise: the project's own errors, or fewer where its caller stops on anything else.
    refusals: tuple[type[Exception], ...] = (CredledgerError,)
    #: A structure-aware Hypothesis strategy over the seeds, besides the byte and JSON mutations.
    structured: Callable[[tuple[bytes, ...]], SearchStrategy[bytes]] | None = None


def check(target: Target, data: bytes) -> None:
    """Run `target` on `data`; anything but success or a CredledgerError propagates as a finding."""
    with contextlib.suppress(*target.refusals):
        target.run(data, corpus())


def _text(data: bytes) -> str | None:
    """The UTF-8 text of `data`, or None: a parser that takes text is handed text, and bytes that are not UTF-8
    are not a file of its format."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _event(data: bytes, c: Corpus) -> object:
    return decode_event(data)


def _event_json(data: bytes, c: Corpus) -> object:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None  # not JSON: the API refuses it before the event decoder (tests/fuzz covers that route too)
    return event_from_json(document)


def _header(data: bytes, c: Corpus) -> object:
    return decode_header(data)


def _certified_block(data: bytes, c: Corpus) -> object:
    """As the syncer applies a block fetched from a peer: decode, then check its certificate."""
    block = codec.decode(CertifiedBlock, data, max_bytes=max_certified_block_bytes(c.network.genesis.params))
    return verify_certified_header(block.header, block.note(), c.network.genesis.validator_set())


def _note(data: bytes, c: Corpus) -> object:
    note = SignedNote.parse(data)
    Checkpoint.parse(note.text)
    return verify_certificate(note, c.network.genesis.validator_set())


def _bundle(data: bytes, c: Corpus) -> object:
    return verify_bundle(Bundle.from_json(data), c.network.genesis)


def _tlog_proof(data: bytes, c: Corpus) -> object:
    text = _text(data)
    if text is None:
        return None
    return tlogproof.verify(tlogproof.TlogProof.parse(text), c.network.genesis.validator_set())


def _message(data: bytes, c: Corpus) -> object:
    """As the driver takes a consensus frame from a peer: decode, then check the signature."""
    message = decode_message(data)
    return verify_vote(message, c.network.genesis.validator_set(), c.network.genesis.origin)


def _evidence(data: bytes, c: Corpus) -> object:
    evidence = decode_evidence(data)
    return verify_evidence(evidence, c.network.genesis.validator_set(), c.network.genesis.origin)


def _handshake(data: bytes, c: Corpus) -> object:
    """As the peer layer reads a handshake frame: a Hello or a Proof, at most 4 KiB."""
    if data[:1] == b"\x94":
        return codec.decode(Hello, data, max_bytes=4096)
    return codec.decode(Proof, data, max_bytes=4096)


def _api_json_body(data: bytes, c: Corpus) -> object:
    """As `POST /v1/events` reads a JSON body (one event or a batch, encoded or in JSON form)."""
    return api_events._parse_json_body(data, MAX_BATCH)


def _api_msgpack_body(data: bytes, c: Corpus) -> object:
    """As `POST /v1/events` reads an `application/msgpack` body."""
    return api_events._parse_msgpack_body(data, MAX_BATCH)


_MACHINE = MachineTarget()


def _consensus_machine(data: bytes, c: Corpus) -> object:
    """A decoded consensus message, re-signed by its signer, handed to a running machine (only `MessageRejected`
    and `MessageOutOfWindow` may come back: the driver halts the node on anything else)."""
    try:
        _MACHINE.feed(data)
    except DecodeError:
        return None  # refused before the machine, as the decoder targets check
    return True


@functools.cache
def _machine_seeds() -> tuple[bytes, ...]:
    return _MACHINE.seeds()


def _definition(data: bytes, c: Corpus) -> object:
    return parse_definition(data, "m0.test")


def _definition_seeds() -> tuple[bytes, ...]:
    rule = {
        "all": [{"achievement": {"id": "a"}}, {"n_of": {"n": 1, "of": [{"credits": {"min": 7.5, "system": "ECTS"}}]}}]
    }
    skills = [{"targetName": "Data analysis", "targetUrl": "https://example.org/rsd/data"}]
    return (
        canonical(definition("micro", credits=7.5, level=6, field="Maths", alignment=skills)),
        canonical(definition("cert", kind="Certificate", rule=rule)),
        canonical({"id": "r", "from": {"member": "m1.test", "level": {"framework": "EQF", "min": 6}},
                   "as": {"rate": {"fromSystem": "ECTS", "system": "UCP", "numerator": 1, "denominator": 6}}}),
    )  # fmt: skip


def _recognition(data: bytes, c: Corpus) -> object:
    return parse_recognition(data, "m0.test")


def _record(data: bytes, c: Corpus) -> object:
    return verify_record(Record.from_json(data), c.network.genesis)


def _record_seeds(c: Corpus) -> tuple[bytes, ...]:
    """Records built from the corpus's bundles (all from one snapshot, so they share one anchor)."""
    bundles = tuple(Bundle.from_json(b) for b in c.bundles)
    return (
        Record(bundles, (None,) * len(bundles)).dumps().encode(),
        Record(bundles[:1], (None,)).dumps().encode(),
    )


def _genesis(data: bytes, c: Corpus) -> object:
    return parse_genesis(data)


def _config(data: bytes, c: Corpus) -> object:
    return parse_config(data, _CONFIG_BASE, _NO_ENV)


#: The witness the witness targets cosign as (a test key).
_WITNESS = key_for("witness.test/fuzz", "witness")
#: Cosignature time: fixed, so every run of one input gives the same answer.
_COSIGN_TIME = 1_767_225_600


class _MemoryState:
    """A witness's record held in memory (`ledger.witness.WitnessState`), fresh for each input."""

    def __init__(self, record: LogRecord | None) -> None:
        self.record = record

    def get(self, origin: str) -> LogRecord | None:
        return self.record

    def compare_and_set(self, origin: str, expected: LogRecord | None, new: LogRecord) -> bool:
        if self.record != expected:
            return False
        self.record = new
        return True


def _witnessed(c: Corpus) -> tuple[dict[str, WitnessedLog], LogRecord]:
    """The corpus network as a witnessed log (3 of its 4 validators sign), and a record of its first checkpoint."""
    keys = tuple(c.network[i].node.public for i in c.network.ids)
    origin = c.network.genesis.origin
    first = TreeHead.parse(SignedNote.parse(c.notes[0]).text)
    return {origin: WitnessedLog(origin, keys, 3)}, LogRecord(first.size, first.root)


def _add_checkpoint(data: bytes, c: Corpus) -> object:
    """As `POST /add-checkpoint` decides a body: a cosignature or a refusal with the spec's status, never a raise."""
    logs, record = _witnessed(c)
    return add_checkpoint(data, logs, _MemoryState(record), [_WITNESS], _COSIGN_TIME)


def _add_checkpoint_seeds(c: Corpus) -> tuple[bytes, ...]:
    """The first checkpoint again, the second from the first with its consistency proof, and a stale old size."""
    first, second = (SignedNote.parse(n) for n in c.notes[:2])
    leaves = [leaf_hash(e) for e in c.events]
    size1, size2 = (TreeHead.parse(n.text).size for n in (first, second))
    return (
        add_checkpoint_body(size1, [], first),
        add_checkpoint_body(size1, consistency_path(leaves[:size2], size1), second),
        add_checkpoint_body(0, [], second),
    )


def _witness_answer(data: bytes, c: Corpus) -> object:
    """As a witnessed node reads a witness's answer: the first byte picks the status, the rest is the body."""
    if not data:
        return None
    status = _ANSWER_STATUSES[data[0] % len(_ANSWER_STATUSES)]
    note = SignedNote.parse(c.notes[0])
    kind = SIZE_CONTENT_TYPE if status == 409 else None
    return read_witness_answer(status, data[1:], note, CosignerKey.of(_WITNESS), content_type=kind)


_ANSWER_STATUSES = (200, 409, 400, 403, 404, 422, 500)


def _witness_answer_seeds(c: Corpus) -> tuple[bytes, ...]:
    note = SignedNote.parse(c.notes[0])
    size = TreeHead.parse(note.text).size
    return (b"\x00" + cosign(note.text, _WITNESS, _COSIGN_TIME).line().encode(), b"\x01" + f"{size}\n".encode())


def _witness_policy(data: bytes, c: Corpus) -> object:
    """As a verifier reads a tlog-policy file and holds a cosigned checkpoint against it."""
    note = SignedNote.parse(c.notes[0])
    cosigned = note.with_signatures([cosign(note.text, _WITNESS, _COSIGN_TIME).note_signature()])
    return WitnessPolicy.parse(data).check(cosigned)


def _witness_policy_seeds(c: Corpus) -> tuple[bytes, ...]:
    vkey = CosignerKey.of(_WITNESS).vkey()
    other = CosignerKey.of(key_for("witness.test/other", "witness")).vkey()
    return (
        f"witness w1 {vkey}\nquorum w1\n".encode(),
        f"# a comment\nwitness w1 {vkey} https://w1.example\nwitness w2 {other}\n".encode()
        + b"group g any w1 w2\nquorum g\n",
        b"quorum none\n",
    )


def _cosigner_vkey(data: bytes, c: Corpus) -> object:
    text = _text(data)
    return None if text is None else CosignerKey.from_vkey(text)


TARGETS: tuple[Target, ...] = (
    Target("event", "ledger/codec.py, ledger/events.py", _event, lambda c: c.events),
    Target("event-json", "ledger/eventjson.py", _event_json, lambda c: c.event_json, json=True),
    Target("header", "ledger/block.py", _header, lambda c: c.headers),
    Target("certified-block", "ledger/block.py (catch-up)", _certified_block, lambda c: c.blocks),
    Target("note", "ledger/note.py", _note, lambda c: c.notes),
    Target("bundle", "ledger/bundle.py", _bundle, lambda c: c.bundles, json=True),
    Target("tlog-proof", "ledger/tlogproof.py", _tlog_proof, lambda c: c.tlog_proofs),
    Target("consensus-message", "ledger/votes.py (peer frames)", _message, lambda c: c.messages),
    Target(
        "consensus-machine",
        "consensus/machine.py (peer frames)",
        _consensus_machine,
        lambda c: _machine_seeds(),
        refusals=REFUSALS,
        structured=moved_messages,
    ),
    Target("evidence", "ledger/votes.py", _evidence, lambda c: c.evidence),
    Target("handshake", "node/peers.py", _handshake, lambda c: c.handshakes),
    Target("api-json-body", "node/api/events.py", _api_json_body, lambda c: c.json_bodies, json=True),
    Target("api-msgpack-body", "node/api/events.py", _api_msgpack_body, lambda c: c.msgpack_bodies),
    Target("genesis", "ledger/genesis.py", _genesis, lambda c: c.genesis, json=True),
    Target("config", "node/config.py", _config, lambda c: c.configs),
    Target(
        "achievement-definition",
        "ledger/achievement.py, ledger/stacking.py",
        _definition,
        lambda c: _definition_seeds()[:2],
        json=True,
    ),
    Target("recognition", "ledger/recognition.py", _recognition, lambda c: _definition_seeds()[2:], json=True),
    Target("record", "ledger/record.py", _record, _record_seeds, json=True),
    Target(
        "add-checkpoint",
        "ledger/witness.py (POST /add-checkpoint)",
        _add_checkpoint,
        _add_checkpoint_seeds,
        refusals=(),
    ),
    Target("witness-answer", "ledger/witness.py (a witness's answer)", _witness_answer, _witness_answer_seeds),
    Target("witness-policy", "ledger/witnesspolicy.py", _witness_policy, _witness_policy_seeds),
    Target(
        "cosigner-vkey", "ledger/cosignature.py", _cosigner_vkey, lambda c: (CosignerKey.of(_WITNESS).vkey().encode(),)
    ),
)

BY_NAME = {t.name: t for t in TARGETS}
