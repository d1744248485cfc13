from __future__ import annotations

import base64

import pytest

from credledger.ledger.errors import BadSignature, DecodeError, VerificationError
from credledger.ledger.keys import PublicKey, SigningKey
from credledger.ledger.note import Checkpoint, NoteSignature, SignedNote, open_note, sign_note

# The signed-note example shared by the Go, Rust, JavaScript and PHP implementations of C2SP signed notes.
NEUMANN_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
NEUMANN_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
NEUMANN_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
NEUMANN_SIG = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
NEUMANN_NOTE = NEUMANN_TEXT + "\n\u2014 PeterNeumann " + NEUMANN_SIG + "\n"

# The example in C2SP signed-note.md: text with an inner blank line, separated by the *last* blank line.
QUASIMODO_NOTE = (
    "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n"
    "\u2014 quasimodo.example/salvatore "
    "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)


def neumann_signing_key() -> SigningKey:
    blob = base64.b64decode(NEUMANN_SKEY.split("+", 4)[4])
    assert blob[0] == 0x01
    return SigningKey("PeterNeumann", blob[1:])


def test_reference_note_verifies_with_its_published_vkey() -> None:
    note = SignedNote.parse(NEUMANN_NOTE)
    assert note.text == NEUMANN_TEXT
    assert open_note(note, [PublicKey.from_vkey(NEUMANN_VKEY)]) == [PublicKey.from_vkey(NEUMANN_VKEY)]


def test_signing_reproduces_the_reference_note_byte_for_byte() -> None:
    key = neumann_signing_key()
    assert key.public.vkey() == NEUMANN_VKEY
    note = SignedNote(NEUMANN_TEXT, (sign_note(NEUMANN_TEXT, key),))
    assert note.format() == NEUMANN_NOTE


def test_c2sp_example_parses_with_inner_blank_line_in_text() -> None:
    note = SignedNote.parse(QUASIMODO_NOTE)
    assert note.text.endswith("ed è subito sera.\n")
    assert "\n\n" in note.text
    (sig,) = note.signatures
    assert sig.name == "quasimodo.example/salvatore"
    assert len(sig.signature) == 64
    assert note.format() == QUASIMODO_NOTE


def test_tampered_text_is_rejected() -> None:
    note = SignedNote.parse(NEUMANN_NOTE.replace("cryptography", "cryptographY"))
    with pytest.raises(BadSignature):
        open_note(note, [PublicKey.from_vkey(NEUMANN_VKEY)])


def test_unknown_signers_are_ignored_but_one_known_is_required() -> None:
    other = SigningKey.generate("someone.example")
    note = SignedNote(NEUMANN_TEXT, (sign_note(NEUMANN_TEXT, other),))
    with pytest.raises(VerificationError, match="no signature from a known key"):
        open_note(note, [PublicKey.from_vkey(NEUMANN_VKEY)])
    both = SignedNote.parse(NEUMANN_NOTE).with_signatures(note.signatures)
    assert len(open_note(both, [PublicKey.from_vkey(NEUMANN_VKEY)])) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("text\n", "no blank line"),
        ("text\n\n", "no signature lines"),
        ("text\n\n\u2014 a AAAAAAAA", "does not end in a newline"),
        ("text\n\n- a AAAAAAAAAA==\n", "em dash"),
        ("text\n\n\u2014 a+b AAAAAAAAAA==\n", "malformed signature line"),
        ("text\n\n\u2014 a !!!\n", "expected standard base64"),
        ("text\n\n\u2014 a AAAA\n", "only 3 bytes"),
        ("te\x07xt\n\n\u2014 a AAAAAAAAAA==\n", "control character"),
    ],
)
def test_malformed_notes_are_rejected(text: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        SignedNote.parse(text)


def test_invalid_utf8_and_oversize_notes_are_rejected() -> None:
    with pytest.raises(DecodeError, match="UTF-8"):
        SignedNote.parse(b"\xff\n\n\xe2\x80\x94 a AAAAAAAAAA==\n")
    with pytest.raises(DecodeError, match="limit"):
        SignedNote.parse(b"a" * 100, max_bytes=10)


def sample_checkpoint() -> Checkpoint:
    return Checkpoint("credledger.example/devnet", 42, b"\x01" * 32, 7, 2, b"\x02" * 32)


def test_checkpoint_body_has_the_c2sp_shape_and_round_trips() -> None:
    cp = sample_checkpoint()
    lines = cp.body().splitlines()
    assert lines[0] == "credledger.example/devnet"
    assert lines[1] == "42"
    assert base64.b64decode(lines[2]) == b"\x01" * 32
    assert lines[3].startswith("credledger 7 2 ")
    assert Checkpoint.parse(cp.body()) == cp


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.replace("\n42\n", "\n042\n"), "leading zeros"),
        (lambda b: b.replace("\n42\n", "\n-1\n"), "decimal"),
        (lambda b: b.replace("credledger 7", "other 7"), "expected 'credledger"),
        (lambda b: b[:-1], "end with a newline"),
        (lambda b: b + "extra\n", "expected 4 lines"),
        (lambda b: b.replace(base64.b64encode(b"\x01" * 32).decode(), "AAAA"), "32 bytes"),
    ],
)
def test_malformed_checkpoints_are_rejected(mutate: object, message: str) -> None:
    body = sample_checkpoint().body()
    assert callable(mutate)
    with pytest.raises(DecodeError, match=message):
        Checkpoint.parse(mutate(body))


def test_signature_line_round_trip() -> None:
    sig = NoteSignature("v1", b"\x00\x01\x02\x03", b"\x05" * 64)
    parsed = SignedNote.parse("t\n\n" + sig.line())
    assert parsed.signatures == (sig,)
