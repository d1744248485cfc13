from __future__ import annotations

import dataclasses

import pytest

from credledger.ledger import codec
from credledger.ledger.block import (
    Block,
    Header,
    decode_header,
    sign_checkpoint,
    verify_certificate,
    verify_certified_header,
)
from credledger.ledger.errors import VerificationError
from credledger.ledger.keys import SigningKey
from credledger.ledger.note import SignedNote, sign_note
from credledger.ledger.validators import Validator, ValidatorSet


def make_validators(powers: list[int]) -> tuple[ValidatorSet, list[SigningKey]]:
    keys = [SigningKey.generate(f"v{i}") for i in range(len(powers))]
    vset = ValidatorSet.of([Validator(k.name, p, k.public.raw) for k, p in zip(keys, powers, strict=True)])
    return vset, keys


def make_header(vset: ValidatorSet) -> Header:
    return Header(
        origin="credledger.example/test",
        height=3,
        round=0,
        time_ms=1_700_000_000_000,
        prev_hash=b"\x01" * 32,
        proposer="v0",
        log_size=10,
        log_root=b"\x02" * 32,
        state_root=b"\x03" * 32,
        event_count=0,
        validators_hash=vset.hash(),
        next_validators_hash=vset.hash(),
    )


def certificate(header: Header, keys: list[SigningKey], decision_round: int = 1) -> SignedNote:
    body = header.checkpoint(decision_round).body()
    return SignedNote(body, tuple(sign_checkpoint(header, decision_round, k) for k in keys))


def test_header_round_trips_and_hash_is_domain_separated() -> None:
    vset, _ = make_validators([1])
    header = make_header(vset)
    assert decode_header(header.encode()) == header
    assert header.hash() != codec.encode(header)
    assert len(header.hash()) == 32


def test_block_rejects_event_count_mismatch() -> None:
    vset, _ = make_validators([1])
    with pytest.raises(ValueError, match="counts 0 events"):
        Block(make_header(vset), (b"x",))


def test_certificate_with_more_than_two_thirds_verifies() -> None:
    vset, keys = make_validators([1, 1, 1, 1])
    header = make_header(vset)
    checkpoint, power = verify_certificate(certificate(header, keys[:3]), vset)
    assert power == 3
    assert checkpoint.header_hash == header.hash()
    assert verify_certified_header(header, certificate(header, keys[:3]), vset).round == 1


def test_exactly_two_thirds_is_not_enough() -> None:
    vset, keys = make_validators([1, 1, 1])
    with pytest.raises(VerificationError, match="hold 2 of 3 voting power, need more than 2/3 \\(3\\)"):
        verify_certificate(certificate(make_header(vset), keys[:2]), vset)


def test_unequal_power_counts_power_not_heads() -> None:
    vset, keys = make_validators([10, 1, 1, 1])
    _, power = verify_certificate(certificate(make_header(vset), [keys[0]]), vset)
    assert power == 10
    with pytest.raises(VerificationError):
        verify_certificate(certificate(make_header(vset), keys[1:]), vset)


def test_duplicated_signer_is_counted_once() -> None:
    vset, keys = make_validators([1, 1, 1, 1])
    note = certificate(make_header(vset), [keys[0], keys[1]])
    doubled = SignedNote(note.text, note.signatures + note.signatures)
    with pytest.raises(VerificationError, match="hold 2 of 4"):
        verify_certificate(doubled, vset)


def test_signers_outside_the_set_are_ignored() -> None:
    vset, keys = make_validators([1, 1, 1, 1])
    header = make_header(vset)
    outsiders = [SigningKey.generate(f"x{i}") for i in range(5)]
    impostor = SigningKey.generate("v3")  # a validator's name with another key
    note = certificate(header, [keys[0], keys[1], *outsiders, impostor])
    with pytest.raises(VerificationError, match="hold 2 of 4"):
        verify_certificate(note, vset)


def test_forged_validator_signature_rejects_the_certificate() -> None:
    vset, keys = make_validators([1, 1, 1, 1])
    note = certificate(make_header(vset), keys)
    sig = note.signatures[0]
    forged = type(sig)(sig.name, sig.key_id, bytes(64))
    with pytest.raises(VerificationError, match="signature of validator v0 is invalid"):
        verify_certificate(SignedNote(note.text, (forged, *note.signatures[1:])), vset)


def test_certificate_for_another_header_is_rejected() -> None:
    vset, keys = make_validators([1, 1, 1, 1])
    header = make_header(vset)
    note = certificate(header, keys)
    tampered = dataclasses.replace(header, time_ms=header.time_ms + 1)
    with pytest.raises(VerificationError, match="certificate is for height 3"):
        verify_certified_header(tampered, note, vset)


def test_header_naming_another_validator_set_is_rejected() -> None:
    vset, keys = make_validators([1, 1, 1, 1])
    other_set, _ = make_validators([1])
    header = make_header(other_set)
    with pytest.raises(VerificationError, match="names validator set"):
        verify_certified_header(header, certificate(header, keys), vset)


def test_note_signature_is_the_checkpoint_signature() -> None:
    vset, keys = make_validators([1])
    header = make_header(vset)
    assert sign_checkpoint(header, 0, keys[0]) == sign_note(header.checkpoint(0).body(), keys[0])
