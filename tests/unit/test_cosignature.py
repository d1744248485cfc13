"""tlog-cosignature v1: key ids, vkeys, signing and verifying cosignatures, and witness quorums."""

from __future__ import annotations

import base64
import hashlib

import pytest

from credledger.ledger.block import Header, sign_checkpoint, verify_certificate
from credledger.ledger.cosignature import (
    COSIGNATURE_TYPE,
    Cosignature,
    CosignerKey,
    QuorumNotMet,
    cosign,
    cosigner_key_id,
    require_cosignatures,
    signed_message,
    verified_cosignatures,
    verify_cosignature,
)
from credledger.ledger.errors import BadSignature, DecodeError, VerificationError
from credledger.ledger.keys import KEY_ID_SIZE
from credledger.ledger.note import NoteSignature, SignedNote, open_note, sign_note
from credledger.ledger.validators import Validator, ValidatorSet
from tests.factories import key_for

BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
LOG = key_for("example.com/behind-the-sofa", "log")
WITNESSES = [key_for(f"witness.example/w{i}", "witness") for i in range(3)]
NOW = 1_767_225_600


def _note(*cosigners: int) -> SignedNote:
    lines = [sign_note(BODY, LOG), *(cosign(BODY, WITNESSES[i], NOW + i).note_signature() for i in cosigners)]
    return SignedNote(BODY, tuple(lines))


def test_the_key_id_hashes_name_newline_type_0x04_and_the_key() -> None:
    raw = WITNESSES[0].public.raw
    expected = hashlib.sha256(b"witness.example/w0\n\x04" + raw).digest()[:KEY_ID_SIZE]
    assert cosigner_key_id("witness.example/w0", raw) == expected
    assert expected != WITNESSES[0].key_id  # the same key as a note signer (type 0x01) has another id


def test_the_signed_message_is_header_time_line_and_body() -> None:
    assert signed_message(BODY, 1679315147) == ("cosignature/v1\ntime 1679315147\n" + BODY).encode()


def test_a_cosignature_verifies_and_carries_its_timestamp() -> None:
    cosignature = cosign(BODY, WITNESSES[0], NOW)
    key = CosignerKey.of(WITNESSES[0])
    assert verify_cosignature(BODY, cosignature.note_signature(), key) == cosignature
    assert cosignature.timestamp == NOW
    assert len(base64.b64decode(cosignature.line().split(" ")[2])) == 4 + 8 + 64


def test_a_cosignature_line_round_trips_through_a_note() -> None:
    note = SignedNote.parse(_note(0).format())
    decoded = Cosignature.from_note_signature(note.signatures[1])
    assert decoded == cosign(BODY, WITNESSES[0], NOW)


def test_a_published_cosignature_decodes_to_its_timestamp() -> None:
    # transparency-dev/formats note/note_cosigv1_test.go: this signature carries time 1727964367.
    blob = base64.b64decode(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
    )
    decoded = Cosignature.from_note_signature(NoteSignature("w", blob[:4], blob[4:]))
    assert (decoded.key_id.hex(), decoded.timestamp) == ("646846b9", 1727964367)


def test_a_published_cosigner_vkey_parses_and_round_trips() -> None:
    # transparency-dev/formats note/note_cosigv1_test.go: a native Ed25519 cosignature v1 verifier key.
    text = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    key = CosignerKey.from_vkey(text)
    assert (key.name, key.key_id.hex(), key.vkey()) == ("remora.n621.de", "da77ade7", text)


def test_a_note_signer_vkey_is_not_a_cosigner_vkey() -> None:
    with pytest.raises(DecodeError, match="expected signature type 0x04"):
        CosignerKey.from_vkey(LOG.public.vkey())


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("name+00000000", "must be <name>"),
        ("name+zz+BOvN", "bad hex key id"),
        ("remora.n621.de+00000000+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2", "does not match the key"),
        ("name+00000000+BAE=", "32-byte Ed25519 key"),
    ],
)
def test_malformed_cosigner_vkeys_are_refused(text: str, complaint: str) -> None:
    with pytest.raises(DecodeError, match=complaint):
        CosignerKey.from_vkey(text)


def test_a_cosigner_vkey_round_trips() -> None:
    key = CosignerKey.of(WITNESSES[1])
    assert CosignerKey.from_vkey(key.vkey()) == key
    assert base64.b64decode(key.vkey().split("+", 2)[2])[0] == COSIGNATURE_TYPE


def test_every_single_bit_change_to_a_cosigned_note_is_refused() -> None:
    key = CosignerKey.of(WITNESSES[0])
    data = _note(0).format().encode()
    for bit in range(len(data) * 8):
        changed = bytearray(data)
        changed[bit // 8] ^= 1 << (bit % 8)
        try:
            note = SignedNote.parse(bytes(changed))
            require_cosignatures(note, [key], 1)
            open_note(note, [LOG.public])
        except (DecodeError, VerificationError):
            continue
        pytest.fail(f"flipping bit {bit} left a valid cosigned checkpoint")


def test_a_timestamp_past_2_to_the_63_is_refused() -> None:
    cosignature = cosign(BODY, WITNESSES[0], NOW)
    line = NoteSignature(cosignature.name, cosignature.key_id, b"\x80" + b"\x00" * 7 + cosignature.signature)
    with pytest.raises(DecodeError, match="exceeds 2"):
        Cosignature.from_note_signature(line)


def test_the_quorum_error_names_the_missing_witnesses() -> None:
    keys = [CosignerKey.of(w) for w in WITNESSES]
    with pytest.raises(QuorumNotMet, match="carries 1 of the 2 required") as caught:
        require_cosignatures(_note(1), keys, 2)
    assert caught.value.missing == ("witness.example/w0", "witness.example/w2")


def test_a_quorum_of_cosignatures_is_returned_by_witness_name() -> None:
    keys = [CosignerKey.of(w) for w in WITNESSES]
    found = require_cosignatures(_note(0, 2), keys, 2)
    assert {name: c.timestamp for name, c in found.items()} == {
        "witness.example/w0": NOW,
        "witness.example/w2": NOW + 2,
    }


def test_unknown_signature_lines_are_ignored() -> None:
    stranger = key_for("witness.example/w0", "another key with the same name")
    note = _note(0).with_signatures([cosign(BODY, stranger, NOW).note_signature()])
    assert list(verified_cosignatures(note, [CosignerKey.of(WITNESSES[0])])) == ["witness.example/w0"]


def test_a_known_witness_with_a_bad_line_rejects_the_note() -> None:
    good = cosign(BODY, WITNESSES[0], NOW)
    forged = Cosignature(good.name, good.key_id, NOW + 1, good.signature)
    note = SignedNote(BODY, (sign_note(BODY, LOG), forged.note_signature()))
    with pytest.raises(BadSignature, match=r"cosignature of witness\.example/w0"):
        verified_cosignatures(note, [CosignerKey.of(WITNESSES[0])])


def test_a_cosignature_from_the_future_can_be_refused() -> None:
    with pytest.raises(VerificationError, match="after the latest accepted"):
        require_cosignatures(_note(0), [CosignerKey.of(WITNESSES[0])], 1, not_after=NOW - 1)


def test_a_cosignature_is_not_a_note_signature_of_the_same_key() -> None:
    # The same Ed25519 key and name as a log key (type 0x01): the line's key id differs, so it is ignored.
    note = SignedNote(BODY, (cosign(BODY, LOG, NOW).note_signature(),))
    with pytest.raises(VerificationError, match="no signature from a known key"):
        open_note(note, [LOG.public])


def test_a_commit_certificate_still_verifies_with_cosignature_lines_added() -> None:
    keys = [key_for(f"v{i}.test", "node") for i in range(4)]
    validators = ValidatorSet.of([Validator(k.name, 1, k.public.raw) for k in keys])
    header = Header(
        origin="credledger.test/cosigned",
        height=3,
        round=0,
        time_ms=1_767_225_612_000,
        prev_hash=b"\x11" * 32,
        proposer="v0.test",
        log_size=10,
        log_root=b"\x22" * 32,
        state_root=b"\x33" * 32,
        event_count=1,
        validators_hash=validators.hash(),
        next_validators_hash=validators.hash(),
    )
    body = header.checkpoint(0).body()
    # A witness named like a validator, cosigning with that validator's own key: still not a validator line.
    extra = [cosign(body, keys[3], NOW).note_signature(), cosign(body, WITNESSES[0], NOW).note_signature()]
    note = SignedNote(body, tuple(sign_checkpoint(header, 0, k) for k in keys[:3])).with_signatures(extra)
    checkpoint, power = verify_certificate(SignedNote.parse(note.format()), validators)
    assert (checkpoint.height, power) == (3, 3)
    assert list(verified_cosignatures(note, [CosignerKey.of(WITNESSES[0])])) == ["witness.example/w0"]
