"""Data Integrity benchmark: median CPU time to sign and to verify one ``eddsa-rdfc-2022`` credential.

The credential is an Open Badges 3.0 badge (the 1EdTech example achievement, issued by a did:web member, with
revocation and suspension status entries), canonicalized with RDFC-1.0 against the shipped contexts. Each
round signs it (`ledger.vc.proof.sign_credential`) or verifies it through the member's DID document
(`verify_credential`), timed with `time.process_time` (CPU, not wall). Reported beside them: the part of one
operation that is canonicalization (two RDFC-1.0 runs: proof configuration and document), and one Ed25519
signature and verification.

Every round works on a credential no earlier round saw (its ``id`` and its proof's ``created`` differ), so the
canonical forms the loader remembers (`ledger.vc.canon.MAX_CANONICAL_FORMS`) never answer: the figures are those
of a new credential. The verified credentials were signed through another loader, for the same reason.

Run ``python -m bench vc`` or ``python -m bench vc --rounds 500``.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from credledger.ledger.keys import SigningKey, verify_signature
from credledger.ledger.vc.canon import canonicalize
from credledger.ledger.vc.did import IssuerKey, KeyStatus, did_document, did_document_resolver, verification_method_id
from credledger.ledger.vc.loader import CREDENTIALS_V2, OB_V3P0, DocumentLoader, shipped_loader
from credledger.ledger.vc.proof import sign_credential, verify_credential
from credledger.ledger.vc.statuslist import status_entries

DID = "did:web:uni.bench"
T0 = 1_767_225_600_000


def _badge() -> dict[str, Any]:
    return {
        "@context": [CREDENTIALS_V2, OB_V3P0],
        "id": "urn:uuid:2f1e0c8a-4b9e-4f7a-9d43-8b1c2e0a7f55",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": DID, "type": ["Profile"], "name": "University of Benchmarks"},
        "validFrom": "2026-01-01T00:00:00Z",
        "name": "Teamwork Badge",
        "credentialSubject": {
            "id": "did:example:ebfeb1f712ebc6f1c276e12ec21",
            "type": ["AchievementSubject"],
            "achievement": {
                "id": "https://uni.bench/achievements/teamwork",
                "type": ["Achievement"],
                "criteria": {"narrative": "Nominated by peers and recognized upon review."},
                "description": "Recognizes the capacity to collaborate within a group environment.",
                "name": "Teamwork",
            },
        },
        "credentialStatus": status_entries(
            {p: f"https://uni.bench/status/1/{p}" for p in ("revocation", "suspension")}, 94567
        ),
    }


def _median_ms(rounds: int, work: Callable[[int], object]) -> tuple[float, float]:
    times = []
    for round_number in range(rounds):
        started = time.process_time()
        work(round_number)
        times.append(time.process_time() - started)
    return statistics.median(times) * 1000, statistics.quantiles(times, n=10)[-1] * 1000


def _nth(badge: dict[str, Any], n: int) -> dict[str, Any]:
    """The badge with an id of its own (round `n`)."""
    return {**badge, "id": f"urn:uuid:2f1e0c8a-4b9e-4f7a-9d43-{n:012d}"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench vc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    key = SigningKey("uni.bench", hashlib.sha256(b"bench/vc/issuer").digest())
    method = verification_method_id(DID, key.key_id)
    resolver = did_document_resolver([did_document(DID, [IssuerKey(key.key_id, key.public.raw, KeyStatus.VALID)])])
    badge = _badge()
    rounds = args.rounds
    verify_credential(sign_credential(badge, key, method, T0), resolver)  # warm the contexts; check a round trip
    other = DocumentLoader(shipped_loader().documents)
    signed = [sign_credential(_nth(badge, rounds + n), key, method, T0 + n * 1000, other) for n in range(rounds)]
    sign_ms, sign_p90 = _median_ms(rounds, lambda n: sign_credential(_nth(badge, n), key, method, T0 + n * 1000))
    verify_ms, verify_p90 = _median_ms(rounds, lambda n: verify_credential(signed[n], resolver))
    config = {k: v for k, v in signed[0]["proof"].items() if k != "proofValue"} | {"@context": badge["@context"]}

    def canonicalize_new(n: int) -> None:
        canonicalize({**config, "created": f"2027-01-01T00:00:{n % 60:02d}Z", "nonce": str(n)})
        canonicalize(_nth(badge, 2 * rounds + n))

    canon_ms, _ = _median_ms(rounds, canonicalize_new)
    message = b"x" * 64
    signature = key.sign(b"", message)
    ed_sign_ms, _ = _median_ms(rounds, lambda _: key.sign(b"", message))
    ed_verify_ms, _ = _median_ms(rounds, lambda _: verify_signature(key.public.raw, message, signature))
    quads = canonicalize(badge).count("\n")
    print(f"credledger vc: eddsa-rdfc-2022 on an Open Badges 3.0 badge ({quads} quads), {args.rounds:,} rounds")
    print(f"  sign_credential,   CPU ms: median {sign_ms:8.3f}   p90 {sign_p90:8.3f}")
    print(f"  verify_credential, CPU ms: median {verify_ms:8.3f}   p90 {verify_p90:8.3f}")
    print(f"  of which two RDFC-1.0 canonicalizations, median      {canon_ms:8.3f} ms")
    print(f"  one Ed25519 sign / verify, median                    {ed_sign_ms:8.3f} / {ed_verify_ms:.3f} ms")
    return 0
