"""Credentials credledger signs, checked by Digital Bazaar's reference JavaScript libraries (tests/js), and back.

`make test` installs tests/js from its lockfile (`npm ci`); the Node script gets every document it may load in
one JSON file, so neither side touches the network.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
from collections.abc import Set
from pathlib import Path
from typing import Any

import pytest

from credledger.ledger.keys import SigningKey
from credledger.ledger.vc.did import IssuerKey, KeyStatus, did_document, did_document_resolver, verification_method_id
from credledger.ledger.vc.errors import ProofError
from credledger.ledger.vc.loader import OB_V3P0, shipped_loader
from credledger.ledger.vc.multikey import did_key, did_key_verification_method, encode_public_key, multibase_base58btc
from credledger.ledger.vc.proof import sign_credential, verify_credential
from credledger.ledger.vc.statuslist import Bitstring, status_entries, status_list_credential
from tests.conftest import PROJECT_ROOT, VECTORS

JS_DIR = PROJECT_ROOT / "tests" / "js"
SCRIPT = JS_DIR / "verify.mjs"
DID = "did:web:uni.example"
LISTS = {purpose: f"https://uni.example/status/1/{purpose}" for purpose in ("revocation", "suspension")}
T_2026 = 1_767_225_600_000
T_2100 = 4_102_444_800_000
#: multicodec ed25519-priv, the prefix of a Multikey secretKeyMultibase.
ED25519_PRIV_HEADER = b"\x80\x26"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None or not (JS_DIR / "node_modules" / "@digitalbazaar" / "vc").is_dir():
        pytest.fail("the reference verifiers are not installed: run `make test` (it runs npm ci in tests/js)")
    return found


def _issuer_key(n: int = 1) -> SigningKey:
    return SigningKey("uni.example", hashlib.sha256(f"js interop issuer {n}".encode()).digest())


def _method(key: SigningKey) -> str:
    return verification_method_id(DID, key.key_id)


def _did_document() -> dict[str, Any]:
    keys = [IssuerKey(k.key_id, k.public.raw, KeyStatus.VALID) for k in (_issuer_key(1), _issuer_key(2))]
    return did_document(DID, keys)


def _badge(index: int) -> dict[str, Any]:
    badge = {k: v for k, v in json.loads((VECTORS / "ob-v3p0" / "signed.json").read_text()).items() if k != "proof"}
    badge["@context"] = ["https://www.w3.org/ns/credentials/v2", OB_V3P0]
    badge["issuer"] = {**badge["issuer"], "id": DID}
    badge["credentialStatus"] = status_entries(LISTS, index)
    return badge


def _status_lists(revoked: Set[int], suspended: Set[int]) -> dict[str, Any]:
    bits = {"revocation": revoked, "suspension": suspended}
    return {
        url: sign_credential(
            status_list_credential(DID, url, purpose, Bitstring.of(bits[purpose]), T_2026, valid_until_ms=T_2100),
            _issuer_key(),
            _method(_issuer_key()),
            T_2026,
        )
        for purpose, url in LISTS.items()
    }


def _documents(tmp_path: Path, revoked: Set[int] = frozenset(), suspended: Set[int] = frozenset()) -> Path:
    documents = {**shipped_loader().documents, DID: _did_document(), **_status_lists(revoked, suspended)}
    path = tmp_path / "documents.json"
    path.write_text(json.dumps(documents))
    return path


def _run(node: str, *args: Path) -> subprocess.CompletedProcess[str]:
    command = [node, str(SCRIPT), *map(str, args)]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, cwd=JS_DIR)


def _js_verify(node: str, tmp_path: Path, documents: Path, credential: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "credential.json"
    path.write_text(json.dumps(credential))
    done = _run(node, Path("verify"), documents, path)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_a_badge_signed_by_credledger_verifies_in_digitalbazaar_vc_with_its_status(node: str, tmp_path: Path) -> None:
    signed = sign_credential(_badge(94567), _issuer_key(), _method(_issuer_key()), T_2026)
    code, result = _js_verify(node, tmp_path, _documents(tmp_path), signed)
    assert (code, result["verified"], result["errors"]) == (0, True, [])
    assert sorted((s["purpose"], s["status"]) for s in result["status"]) == [
        ("revocation", False),
        ("suspension", False),
    ]


def test_a_revoked_badge_reads_as_revoked_in_the_reference_status_checker(node: str, tmp_path: Path) -> None:
    signed = sign_credential(_badge(94567), _issuer_key(), _method(_issuer_key()), T_2026)
    _, result = _js_verify(node, tmp_path, _documents(tmp_path, revoked={94567}), signed)
    assert sorted((s["purpose"], s["status"]) for s in result["status"]) == [
        ("revocation", True),
        ("suspension", False),
    ]


def test_a_badge_signed_by_a_second_issuer_key_verifies_through_the_did_document(node: str, tmp_path: Path) -> None:
    signed = sign_credential(_badge(7), _issuer_key(2), _method(_issuer_key(2)), T_2026)
    code, result = _js_verify(node, tmp_path, _documents(tmp_path), signed)
    assert (code, result["verified"]) == (0, True)


def test_a_tampered_badge_fails_in_digitalbazaar_vc(node: str, tmp_path: Path) -> None:
    signed = sign_credential(_badge(94567), _issuer_key(), _method(_issuer_key()), T_2026)
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["achievement"]["name"] = "Leadership"
    code, result = _js_verify(node, tmp_path, _documents(tmp_path), tampered)
    assert (code, result["verified"]) == (1, False)
    assert any("Invalid signature" in error for error in result["errors"]), result["errors"]


def test_a_badge_signed_in_javascript_verifies_in_credledger(node: str, tmp_path: Path) -> None:
    key = _issuer_key()
    key_file = tmp_path / "key.json"
    key_file.write_text(
        json.dumps(
            {
                "id": _method(key),
                "controller": DID,
                "publicKeyMultibase": encode_public_key(key.public.raw),
                "secretKeyMultibase": multibase_base58btc(ED25519_PRIV_HEADER + key.seed()),
                "created": "2026-01-01T00:00:00Z",
            }
        )
    )
    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(json.dumps(_badge(12)))
    done = _run(node, Path("sign"), _documents(tmp_path), unsigned, key_file)
    assert done.returncode == 0, done.stderr
    signed = json.loads(done.stdout)
    assert signed["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    verified = verify_credential(signed, did_document_resolver([_did_document()]))
    assert verified.verification_method == _method(key)
    assert signed == sign_credential(_badge(12), key, _method(key), T_2026)  # Ed25519 is deterministic
    signed["name"] = "Changed"
    with pytest.raises(ProofError) as raised:
        verify_credential(signed, did_document_resolver([_did_document()]))
    assert raised.value.check == "signature"


def _did_key_badge() -> dict[str, Any]:
    key = _issuer_key(3)
    badge = {k: v for k, v in _badge(0).items() if k != "credentialStatus"}
    badge["issuer"] = {**badge["issuer"], "id": did_key(key.public.raw)}
    return sign_credential(badge, key, did_key_verification_method(key.public.raw), T_2026)


def _verifier_core(node: str, tmp_path: Path, credential: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "credential.json"
    path.write_text(json.dumps(credential))
    done = _run(node, Path("verifier-core"), path)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_a_did_key_badge_signed_by_credledger_passes_the_dcc_verifier_core_signature_check(
    node: str, tmp_path: Path
) -> None:
    code, result = _verifier_core(node, tmp_path, _did_key_badge())
    assert (code, result["verified"]) == (0, True)
    assert {"id": "valid_signature", "valid": True} in result["log"]


def test_a_tampered_did_key_badge_fails_the_dcc_verifier_core(node: str, tmp_path: Path) -> None:
    tampered = _did_key_badge()
    tampered["name"] = "Changed"
    code, result = _verifier_core(node, tmp_path, tampered)
    assert (code, result["verified"]) == (1, False)
    assert [e["name"] for e in result["errors"]] == ["invalid_signature"]
