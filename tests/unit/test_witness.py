"""tlog-witness add-checkpoint: every decision path of the witness, and the submitting log's side."""

from __future__ import annotations

import base64
import threading

import pytest

from credledger.ledger.cosignature import Cosignature, CosignerKey, cosign, require_cosignatures
from credledger.ledger.errors import DecodeError
from credledger.ledger.merkle import EMPTY_ROOT, b64, consistency_path, leaf_hash, root_from_leaf_hashes
from credledger.ledger.note import SignedNote, sign_note
from credledger.ledger.treehead import TreeHead
from credledger.ledger.witness import (
    MAX_PROOF_LINES,
    AddCheckpointRequest,
    Cosigned,
    LogRecord,
    Refused,
    Resubmit,
    WitnessedLog,
    WitnessRefused,
    add_checkpoint,
    add_checkpoint_body,
    read_witness_answer,
)
from tests.factories import key_for

ORIGIN = "example.com/log"
LOG_KEYS = [key_for(ORIGIN, "log"), key_for(ORIGIN, "log second key")]
WITNESS = key_for("witness.example/w1", "witness")
WITNESS_KEY = CosignerKey.of(WITNESS)
LOGS = {ORIGIN: WitnessedLog(ORIGIN, (LOG_KEYS[0].public,))}
LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(40)]
NOW = 1_767_225_600


class DictState:
    """The witness's record in a dict, with compare-and-set under a lock."""

    def __init__(self, records: dict[str, LogRecord] | None = None) -> None:
        self.records = dict(records or {})
        self.lock = threading.Lock()

    def get(self, origin: str) -> LogRecord | None:
        return self.records.get(origin)

    def compare_and_set(self, origin: str, expected: LogRecord | None, new: LogRecord) -> bool:
        with self.lock:
            if self.records.get(origin) != expected:
                return False
            self.records[origin] = new
            return True


def _checkpoint(size: int, *, extension: str | None = None, keys: list[int] | None = None) -> SignedNote:
    head = TreeHead(ORIGIN, size, root_from_leaf_hashes(LEAVES[:size]), (extension,) if extension else ())
    return SignedNote(head.body(), tuple(sign_note(head.body(), LOG_KEYS[k]) for k in keys or [0]))


def _request(old: int, size: int, *, extension: str | None = None, keys: list[int] | None = None) -> bytes:
    proof = consistency_path(LEAVES[:size], old) if 0 < old <= size else []
    return add_checkpoint_body(old, proof, _checkpoint(size, extension=extension, keys=keys))


def _submit(body: bytes, state: DictState, logs: dict[str, WitnessedLog] = LOGS) -> Cosigned | Refused:
    return add_checkpoint(body, logs, state, [WITNESS], NOW)


def _refusal(answer: Cosigned | Refused) -> tuple[int, str]:
    assert isinstance(answer, Refused), answer
    return answer.status, answer.detail


# --- The request body --------------------------------------------------------------------------------------


def test_the_request_body_is_old_size_proof_lines_blank_line_and_note() -> None:
    note = _checkpoint(8)
    proof = consistency_path(LEAVES[:8], 5)
    body = add_checkpoint_body(5, proof, note)
    lines = [base64.b64encode(h).decode() + "\n" for h in proof]
    assert body == ("old 5\n" + "".join(lines) + "\n" + note.format()).encode()
    assert AddCheckpointRequest.parse(body) == AddCheckpointRequest(5, tuple(proof), note)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"old 5\n", "no blank line"),
        (b"old 05\n\n", "without leading zeros"),
        (b"new 5\n\n", "expected 'old <size>'"),
        (b"old 5\nnot-base64!\n\n", "proof line 1 is not base64"),
        (b"old 5\nAAAA\n\n", "32-byte hash"),
        (b"old 5\n" + b"A" * 42 + b"B=\n\n", "32-byte hash in canonical"),
        (b"old 99999999999999999999\n\n", "expected 'old <size>'"),
        (b"old 5\n\xc3\xa9\n\n", "must be ASCII"),
        (b"old 0\n\nno signatures\n", "note:"),
        (b"x" * 70_000, "exceeds the limit"),
    ],
)
def test_malformed_request_bodies_are_refused_by_the_parser(body: bytes, complaint: str) -> None:
    with pytest.raises(DecodeError, match=complaint):
        AddCheckpointRequest.parse(body)


def test_more_than_63_proof_lines_are_refused() -> None:
    line = base64.b64encode(b"\x01" * 32) + b"\n"
    with pytest.raises(DecodeError, match="64 proof lines exceeds the limit of 63"):
        AddCheckpointRequest.parse(b"old 5\n" + line * (MAX_PROOF_LINES + 1) + b"\n" + _checkpoint(8).format().encode())


# --- The witness's decisions -------------------------------------------------------------------------------


def test_a_first_checkpoint_is_cosigned_and_recorded() -> None:
    state = DictState()
    answer = _submit(_request(0, 8), state)
    assert isinstance(answer, Cosigned)
    assert state.records[ORIGIN] == LogRecord(8, root_from_leaf_hashes(LEAVES[:8]))
    note = SignedNote.parse(_checkpoint(8).format().encode() + answer.body())
    assert require_cosignatures(note, [WITNESS_KEY], 1)[WITNESS.name].timestamp == NOW


def test_a_consistent_newer_checkpoint_is_cosigned_and_moves_the_record() -> None:
    state = DictState()
    _submit(_request(0, 8), state)
    assert isinstance(_submit(_request(8, 21), state), Cosigned)
    assert state.records[ORIGIN].size == 21


def test_a_stale_old_size_gets_409_with_the_known_size() -> None:
    state = DictState({ORIGIN: LogRecord(8, root_from_leaf_hashes(LEAVES[:8]))})
    answer = _submit(_request(5, 21), state)
    assert isinstance(answer, Refused)
    assert (answer.status, answer.known_size, answer.body()) == (409, 8, b"8\n")
    assert state.records[ORIGIN].size == 8


def test_an_old_size_of_zero_to_a_witness_that_knows_the_log_gets_409() -> None:
    state = DictState({ORIGIN: LogRecord(8, root_from_leaf_hashes(LEAVES[:8]))})
    answer = _submit(_request(0, 21), state)
    assert isinstance(answer, Refused) and answer.body() == b"8\n"


def test_an_unknown_origin_gets_404() -> None:
    assert _refusal(_submit(_request(0, 8), DictState(), {})) == (404, "unknown log origin 'example.com/log'")


def test_a_bad_log_signature_gets_403() -> None:
    note = _checkpoint(8)
    good = note.signatures[0]
    forged = SignedNote(note.text, (type(good)(good.name, good.key_id, bytes(64)),))
    status, detail = _refusal(_submit(add_checkpoint_body(0, [], forged), DictState()))
    assert status == 403 and "does not verify" in detail


def test_a_checkpoint_signed_only_by_unknown_keys_gets_403() -> None:
    status, detail = _refusal(_submit(_request(0, 8, keys=[1]), DictState()))
    assert (status, detail) == (403, "checkpoint of example.com/log carries 0 valid signatures from its keys, needs 1")


def test_a_log_quorum_of_two_keys_needs_both_signatures() -> None:
    logs = {ORIGIN: WitnessedLog(ORIGIN, tuple(k.public for k in LOG_KEYS), quorum=2)}
    assert _refusal(_submit(_request(0, 8), DictState(), logs))[0] == 403
    assert isinstance(_submit(_request(0, 8, keys=[0, 1]), DictState(), logs), Cosigned)


def test_a_bad_consistency_proof_gets_422_and_leaves_the_record() -> None:
    state = DictState({ORIGIN: LogRecord(8, root_from_leaf_hashes(LEAVES[:8]))})
    proof = consistency_path(LEAVES[:21], 8)
    proof[0] = bytes(32)
    status, detail = _refusal(_submit(add_checkpoint_body(8, proof, _checkpoint(21)), state))
    assert status == 422 and "consistency proof from 8 to 21" in detail
    assert state.records[ORIGIN].size == 8


def test_a_proof_from_old_size_zero_gets_422() -> None:
    body = b"old 0\n" + base64.b64encode(bytes(32)) + b"\n\n" + _checkpoint(8).format().encode()
    assert _refusal(_submit(body, DictState())) == (422, "old size 0 needs an empty proof, got 1 lines")


def test_a_size_zero_checkpoint_must_have_the_empty_root() -> None:
    head = TreeHead(ORIGIN, 0, bytes(32))
    note = SignedNote(head.body(), (sign_note(head.body(), LOG_KEYS[0]),))
    status, detail = _refusal(_submit(add_checkpoint_body(0, [], note), DictState()))
    assert status == 409 and f"cosigned size 0 with root {b64(EMPTY_ROOT)}" in detail  # the empty tree's root
    empty = TreeHead(ORIGIN, 0, EMPTY_ROOT)
    good = SignedNote(empty.body(), (sign_note(empty.body(), LOG_KEYS[0]),))
    assert isinstance(_submit(add_checkpoint_body(0, [], good), DictState()), Cosigned)


def test_an_old_size_past_the_checkpoint_gets_400() -> None:
    body = b"old 9\n\n" + _checkpoint(8).format().encode()
    assert _refusal(_submit(body, DictState())) == (400, "old size 9 is larger than the checkpoint size 8")


def test_a_malformed_body_gets_400() -> None:
    status, detail = _refusal(_submit(b"old 1\nnope\n\n", DictState()))
    assert status == 400 and "proof line 1" in detail


def test_a_checkpoint_that_is_not_a_checkpoint_gets_400() -> None:
    text = "only one line\n"
    note = SignedNote(text, (sign_note(text, LOG_KEYS[0]),))
    assert _refusal(_submit(add_checkpoint_body(0, [], note), DictState()))[0] == 400


def test_the_same_size_with_a_different_root_is_never_cosigned() -> None:
    state = DictState({ORIGIN: LogRecord(8, root_from_leaf_hashes(LEAVES[:8]))})
    other = [leaf_hash(b"forked")] * 8
    head = TreeHead(ORIGIN, 8, root_from_leaf_hashes(other))
    fork = SignedNote(head.body(), (sign_note(head.body(), LOG_KEYS[0]),))
    answer = _submit(add_checkpoint_body(8, [], fork), state)
    # tlog-witness: the old size matches the checkpoint size, the roots differ: 409 Conflict (not a size answer).
    assert isinstance(answer, Refused) and answer.known_size is None
    assert answer.status == 409 and "a fork of what the witness holds: it cosigned size 8 with root" in answer.detail
    assert state.records[ORIGIN] == LogRecord(8, root_from_leaf_hashes(LEAVES[:8]))


def test_the_same_tree_with_new_extension_lines_is_cosigned_again() -> None:
    state = DictState()
    _submit(_request(0, 8, extension="credledger 5 0 AAAA"), state)
    answer = _submit(_request(8, 8, extension="credledger 6 0 AAAA"), state)
    assert isinstance(answer, Cosigned)
    assert state.records[ORIGIN].size == 8


def test_the_record_never_moves_backwards() -> None:
    state = DictState()
    _submit(_request(0, 21), state)
    answers = [_submit(_request(old, 8), state) for old in (0, 8, 21)]
    assert [_refusal(a)[0] for a in answers] == [409, 409, 400]
    assert state.records[ORIGIN].size == 21


def test_a_record_moved_by_a_concurrent_request_is_checked_again() -> None:
    class Racing(DictState):
        """Another request records size 21 between this request's read and its compare-and-set."""

        def compare_and_set(self, origin: str, expected: LogRecord | None, new: LogRecord) -> bool:
            if origin not in self.records:
                self.records[origin] = LogRecord(21, root_from_leaf_hashes(LEAVES[:21]))
            return super().compare_and_set(origin, expected, new)

    state = Racing()
    answer = _submit(_request(0, 8), state)
    assert isinstance(answer, Refused) and (answer.status, answer.known_size) == (409, 21)
    assert state.records[ORIGIN].size == 21


def test_every_witness_key_cosigns() -> None:
    second = key_for("witness.example/w2", "witness")
    answer = add_checkpoint(_request(0, 8), LOGS, DictState(), [WITNESS, second], NOW)
    assert isinstance(answer, Cosigned)
    assert [c.name for c in answer.cosignatures] == ["witness.example/w1", "witness.example/w2"]


# --- The submitting side -----------------------------------------------------------------------------------


def test_a_200_answer_yields_the_witness_cosignature() -> None:
    note = _checkpoint(8)
    answer = _submit(_request(0, 8), DictState())
    assert isinstance(answer, Cosigned)
    cosignature = read_witness_answer(200, answer.body(), note, WITNESS_KEY)
    assert cosignature == answer.cosignatures[0]


def test_a_200_answer_ignores_other_keys_lines() -> None:
    note = _checkpoint(8)
    stranger = cosign(note.text, key_for("someone.else", "w"), NOW).line().encode()
    mine = cosign(note.text, WITNESS, NOW).line().encode()
    assert isinstance(read_witness_answer(200, stranger + mine, note, WITNESS_KEY), Cosignature)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"", "not note signature lines"),
        (b"garbage\n", "not note signature lines"),
        ("— someone.else AAAAAAAA\n".encode(), "no cosignature from witness.example/w1"),
    ],
)
def test_a_200_answer_without_a_valid_cosignature_is_refused(body: bytes, complaint: str) -> None:
    with pytest.raises(WitnessRefused, match=complaint):
        read_witness_answer(200, body, _checkpoint(8), WITNESS_KEY)


def test_a_200_answer_with_a_cosignature_on_another_checkpoint_is_refused() -> None:
    line = cosign(_checkpoint(9).text, WITNESS, NOW).line().encode()
    with pytest.raises(WitnessRefused, match="does not verify"):
        read_witness_answer(200, line, _checkpoint(8), WITNESS_KEY)


def test_a_409_answer_asks_to_resubmit_from_the_witness_size() -> None:
    answer = read_witness_answer(409, b"5\n", _checkpoint(8), WITNESS_KEY, content_type="text/x.tlog.size")
    assert answer == Resubmit(5)


@pytest.mark.parametrize(
    ("body", "content_type", "complaint"),
    [
        (b"5", None, "expected '<size>"),
        (b"05\n", None, "expected '<size>"),
        (b"9\n", None, "past this checkpoint's 8"),
        (b"5\n", "text/plain", "expected text/x.tlog.size"),
    ],
)
def test_a_bad_409_answer_is_refused(body: bytes, content_type: str | None, complaint: str) -> None:
    with pytest.raises(WitnessRefused, match=complaint):
        read_witness_answer(409, body, _checkpoint(8), WITNESS_KEY, content_type=content_type)


def test_a_409_problem_answer_is_a_refusal_carrying_its_detail() -> None:
    problem = b'{"type": "urn:credledger:problem:conflicting-checkpoint", "status": 409, "detail": "a fork"}'
    with pytest.raises(WitnessRefused, match=r"answered 409: a fork$"):
        read_witness_answer(409, problem, _checkpoint(8), WITNESS_KEY, content_type="application/problem+json")


@pytest.mark.parametrize("status", [400, 403, 404, 422, 500])
def test_other_answers_are_refusals_carrying_the_status(status: int) -> None:
    with pytest.raises(WitnessRefused, match=f"answered {status}: why") as caught:
        read_witness_answer(status, b"why", _checkpoint(8), WITNESS_KEY)
    assert caught.value.status == status


def test_a_log_catches_a_witness_up_after_a_409() -> None:
    state = DictState()
    _submit(_request(0, 8), state)
    note = _checkpoint(21)
    first = _submit(add_checkpoint_body(0, [], note), state)
    assert isinstance(first, Refused)
    resubmit = read_witness_answer(first.status, first.body(), note, WITNESS_KEY, content_type="text/x.tlog.size")
    assert isinstance(resubmit, Resubmit)
    proof = consistency_path(LEAVES[:21], resubmit.old_size)
    second = _submit(add_checkpoint_body(resubmit.old_size, proof, note), state)
    assert isinstance(second, Cosigned)
    assert isinstance(read_witness_answer(200, second.body(), note, WITNESS_KEY), Cosignature)


def test_a_request_cannot_carry_a_proof_from_size_zero() -> None:
    with pytest.raises(ValueError, match="cannot be sent"):
        add_checkpoint_body(0, [bytes(32)], _checkpoint(8))
