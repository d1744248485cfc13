"""How the commands turn a credential file into a digest: RFC 8785 for JSON, the file's bytes otherwise or with
`--raw`, a usage error (exit 2) for JSON that RFC 8785 refuses -- and they say on stderr which digest they used."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from credledger.cli.common import UsageError, digest_argument
from credledger.cli.main import main
from credledger.ledger.genesis import genesis_json
from tests.factories import make_network

LONE_SURROGATE = b'{"\\ud83d": 1}'


def test_a_json_file_gets_its_rfc_8785_digest_and_the_command_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credential = tmp_path / "badge.json"
    credential.write_bytes(b'{ "b": 2, "a": 1.0 }\n')
    expected = hashlib.sha256(b'{"a":1,"b":2}').hexdigest()
    assert digest_argument(str(credential)).hex() == expected
    assert capsys.readouterr().err == f"digest (RFC 8785 JSON) {expected}  {credential}\n"


def test_raw_hashes_a_json_file_as_bytes_and_the_command_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credential = tmp_path / "badge.json"
    credential.write_bytes(b'{ "b": 2, "a": 1.0 }\n')
    expected = hashlib.sha256(credential.read_bytes()).hexdigest()
    assert digest_argument(str(credential), raw=True).hex() == expected
    assert capsys.readouterr().err == f"digest (SHA-256 of the file's bytes) {expected}  {credential}\n"


def test_a_digest_given_as_hex_is_taken_as_it_is_without_a_digest_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert digest_argument("AB" * 32) == bytes.fromhex("ab" * 32)
    assert capsys.readouterr().err == ""


def test_json_that_rfc_8785_refuses_is_a_usage_error_naming_what_and_suggesting_raw(tmp_path: Path) -> None:
    credential = tmp_path / "odd.json"
    credential.write_bytes(b'{"n": 1e400}')
    with pytest.raises(UsageError, match=r"the number 1e400 at /n is beyond the range .*; to hash the file's bytes"):
        digest_argument(str(credential))


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _command(kind: str, credential: Path, tmp_path: Path) -> list[str]:
    network = make_network(1)
    node = _closed_port_url()
    if kind in ("proof", "verify"):
        genesis = tmp_path / "genesis.json"
        genesis.write_text(genesis_json(network.genesis))
        extra = ["-o", str(tmp_path / "out.json")] if kind == "proof" else ["--genesis", str(genesis)]
        return [kind, str(credential), *extra, "--node", node, "--timeout", "2"]
    key = tmp_path / "issuer.key"
    key.write_text(network[network.ids[0]].issuer.skey() + "\n")
    return [kind, str(credential), "--key", str(key), "--origin", "o", "--node", node, "--timeout", "2"]


@pytest.mark.parametrize("kind", ["issue", "revoke", "suspend", "reinstate", "proof", "verify"])
def test_every_command_refuses_a_lone_surrogate_with_a_message_and_accepts_raw(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credential = tmp_path / "surrogate.json"
    credential.write_bytes(LONE_SURROGATE)
    assert main(_command(kind, credential, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "a member name in the top-level object holds a lone surrogate (\\ud83d)" in err
    assert "Traceback" not in err

    assert main([*_command(kind, credential, tmp_path), "--raw"]) == 3  # past the digest, the node is not there
    expected = hashlib.sha256(LONE_SURROGATE).hexdigest()
    assert f"digest (SHA-256 of the file's bytes) {expected}" in capsys.readouterr().err
