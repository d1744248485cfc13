"""`credledger init` and `credledger genesis` in temporary directories, and the dispatcher's exit codes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from credledger.cli.main import main
from credledger.ledger.cosignature import CosignerKey
from credledger.ledger.genesis import load_genesis
from credledger.ledger.keys import PublicKey, SigningKey
from credledger.node.api.witness import load_witness
from credledger.node.config import load_config


def init(tmp_path: Path, member_id: str, *extra: str) -> Path:
    directory = tmp_path / member_id
    code = main(["init", "--id", member_id, "--name", f"Institution {member_id}", "--dir", str(directory), *extra])
    assert code == 0
    return directory


def test_init_writes_secret_keys_a_loadable_config_and_the_public_member_file(tmp_path: Path) -> None:
    directory = init(tmp_path, "uni-a.example", "--power", "3", "--api-port", "8801", "--peer", "http://b:8700")
    for name in ("node.key", "issuer.key"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    node_key = SigningKey.from_skey((directory / "node.key").read_text())
    issuer_key = SigningKey.from_skey((directory / "issuer.key").read_text())
    assert node_key.name == issuer_key.name == "uni-a.example"
    member = json.loads((directory / "member.json").read_text())
    assert member == {
        "id": "uni-a.example",
        "name": "Institution uni-a.example",
        "power": 3,
        "node_key": node_key.public.vkey(),
        "issuer_keys": [issuer_key.public.vkey()],
        "did": "did:web:uni-a.example",
        "url": "http://127.0.0.1:8801",
    }
    config = load_config(directory / "node.toml", env={})
    assert (config.member_id, config.role, config.api.port) == ("uni-a.example", "validator", 8801)
    assert config.genesis == (directory / "genesis.json").resolve()
    assert config.p2p.peers == ("http://b:8700",)
    assert config.node_key == (directory / "node.key").resolve()
    assert "# " in (directory / "node.toml").read_text()  # commented for the person who edits it


def test_init_listens_where_told_and_publishes_the_url_others_reach_it_at(tmp_path: Path) -> None:
    public = ["--host", "0.0.0.0", "--public-url", "https://node.uni-a.example:8700/"]
    directory = init(tmp_path, "uni-a.example", *public)
    config = load_config(directory / "node.toml", env={})
    assert config.api.host == "0.0.0.0"
    assert json.loads((directory / "member.json").read_text())["url"] == "https://node.uni-a.example:8700"


def test_init_needs_a_public_url_for_a_node_listening_on_every_interface(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--id", "a.example", "--name", "A", "--dir", str(tmp_path / "a"), "--host", "0.0.0.0"]) == 2
    assert "give --public-url" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_init_points_node_toml_at_the_genesis_given_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    directory = init(tmp_path, "uni-a.example", "--genesis", "network/genesis.json")
    assert 'genesis = "../network/genesis.json"' in (directory / "node.toml").read_text()
    assert load_config(directory / "node.toml", env={}).genesis == tmp_path / "network" / "genesis.json"


def test_run_without_the_genesis_file_says_where_to_put_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = init(tmp_path, "uni-a.example")
    capsys.readouterr()
    assert main(["run", "--config", str(directory / "node.toml")]) == 2
    err = capsys.readouterr().err
    assert f"no genesis file at {(directory / 'genesis.json').resolve()}" in err
    assert "put the network's genesis.json there" in err
    assert not (directory / "data").exists()


def test_init_of_a_member_without_power_configures_a_replica(tmp_path: Path) -> None:
    directory = init(tmp_path, "college.example", "--power", "0")
    assert load_config(directory / "node.toml", env={}).role == "replica"


def test_init_never_overwrites_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = init(tmp_path, "uni-a.example")
    before = (directory / "node.key").read_text()
    assert main(["init", "--id", "uni-a.example", "--name", "A", "--dir", str(directory)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (directory / "node.key").read_text() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--id", "Bad Id", "--name", "X"], "member id 'Bad Id' must match"),
        (["--id", "ok", "--name", " "], "must be printable and not blank"),
        (["--id", "ok", "--name", "X", "--api-port", "70000"], "--api-port must be a TCP port"),
        (["--id", "ok", "--name", "X", "--peer", "b:8700"], "expected a base URL"),
        (["--id", "ok", "--name", "X", "--did", "did:example:1"], "expected a did:web DID"),
        (["--id", "a..b", "--name", "X"], "has no default did:web: give a DID"),
    ],
)
def test_init_refuses_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["init", "--dir", str(tmp_path / "x"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x" / "node.key").exists()


def test_init_writes_the_did_given(tmp_path: Path) -> None:
    directory = init(tmp_path, "uni-a.example", "--did", "did:web:credentials.uni-a.example")
    assert json.loads((directory / "member.json").read_text())["did"] == "did:web:credentials.uni-a.example"


def test_genesis_from_member_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = init(tmp_path, "uni-b.example"), init(tmp_path, "uni-a.example", "--power", "2")
    capsys.readouterr()
    output = tmp_path / "genesis.json"
    code = main(
        [
            "genesis",
            "--origin",
            "credledger.example/test",
            "--member",
            str(a / "member.json"),
            str(b / "member.json"),
            "--time",
            "2026-03-01T12:00:00Z",
            "--param",
            "heartbeat_ms=1000",
            "-o",
            str(output),
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    genesis = load_genesis(output)
    assert summary["hash"] == genesis.hash().hex()
    assert [m.member for m in genesis.members] == ["uni-a.example", "uni-b.example"]
    assert genesis.genesis_time_ms == 1_772_366_400_000
    assert genesis.params.heartbeat_ms == 1000
    vkey = json.loads((b / "member.json").read_text())["node_key"]
    assert genesis.members[0].node_key == PublicKey.from_vkey(vkey).raw and genesis.members[0].power == 2
    # The members' URLs are listed for the peers settings, and are no part of the genesis.
    assert summary["urls"] == {"uni-b.example": "http://127.0.0.1:8700", "uni-a.example": "http://127.0.0.1:8700"}
    assert "url" not in output.read_text()


@pytest.mark.parametrize(
    ("powers", "tolerated", "warned"),
    [
        ([1, 1, 1], 0, True),
        ([1, 1, 1, 1], 1, False),
        ([2, 1], 0, True),
        ([3, 1], 1, False),
        ([1] * 7, 2, False),
        ([1, 0], 0, True),
    ],
)
def test_genesis_says_how_many_faults_the_voting_set_tolerates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], powers: list[int], tolerated: int, warned: bool
) -> None:
    files = [str(init(tmp_path, f"m{i}.example", "--power", str(p)) / "member.json") for i, p in enumerate(powers)]
    capsys.readouterr()
    assert main(["genesis", "--origin", "x.example/t", "--member", *files, "-o", str(tmp_path / "g.json")]) == 0
    captured = capsys.readouterr()
    assert f"tolerates faulty validators holding up to {tolerated} of it" in captured.out
    assert ("warning: this network tolerates no faulty validator" in captured.err) == warned


def test_genesis_errors_name_the_member_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = init(tmp_path, "uni-a.example") / "member.json"
    broken = tmp_path / "broken.json"
    member = json.loads(good.read_text())
    member["id"] = "uni-b.example"  # keys named uni-a.example under another id
    broken.write_text(json.dumps(member))
    capsys.readouterr()
    args = ["genesis", "--origin", "o", "--member", str(good), "--member", str(broken), "-o", str(tmp_path / "g")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{broken}.node_key: the key is named 'uni-a.example'" in err


def test_genesis_refuses_a_member_file_nested_too_deeply_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["genesis", "--origin", "o", "--member", str(deep), "-o", str(tmp_path / "g.json")]) == 2
    assert f"member file {deep}: JSON nested too deeply" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--param", "heartbeat=5"], "expected NAME=VALUE with NAME one of"),
        (["--param", "heartbeat_ms=fast"], "expected a non-negative integer"),
        (["--param", "heartbeat_ms=1"], "heartbeat_ms: 1 is outside"),
        (["--time", "yesterday"], "--time: 'yesterday' is neither milliseconds nor an ISO 8601"),
        (["--origin", " padded"], "must be one printable line"),
    ],
)
def test_genesis_refuses_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    member = init(tmp_path, "uni-a.example") / "member.json"
    args = ["genesis", "--origin", "o", "--member", str(member), "-o", str(tmp_path / "g.json"), *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "g.json").exists()


def test_genesis_keeps_an_existing_file_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    member = init(tmp_path, "uni-a.example") / "member.json"
    output = tmp_path / "genesis.json"
    output.write_text("keep me")
    args = ["genesis", "--origin", "o", "--member", str(member), "-o", str(output)]
    assert main(args) == 2
    assert output.read_text() == "keep me"
    assert main([*args, "--force"]) == 0
    assert load_genesis(output).origin == "o"
    assert "genesis hash" in capsys.readouterr().out


def test_dispatcher_exit_codes_for_help_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "Exit codes" in capsys.readouterr().out
    assert main(["issue", "--help"]) == 0
    assert "--governance" not in capsys.readouterr().out  # an issue is signed by one issuer key
    assert main(["revoke", "--help"]) == 0
    assert "--governance" in capsys.readouterr().out
    assert main(["issue"]) == 2
    assert "--key is required" in capsys.readouterr().err
    assert main(["issue", "--key", "issuer.key"]) == 2  # CREDENTIAL is optional only because --batch can replace it
    assert "give CREDENTIAL (a file or a digest), or --batch DIR|FILE.jsonl" in capsys.readouterr().err
    assert main(["revoke", "--key", "issuer.key"]) == 2
    assert "required: CREDENTIAL" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_init_writes_a_witness_key_so_listing_a_log_is_all_witnessing_needs(tmp_path: Path) -> None:
    directory = init(tmp_path, "uni-a.example")
    key_file = directory / "witness.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    witness = SigningKey.from_skey(key_file.read_text())
    assert witness.name == "uni-a.example/witness"
    toml = (directory / "node.toml").read_text()
    assert CosignerKey.of(witness).vkey() in toml  # what the logs it witnesses list it by
    assert load_witness(load_config(directory / "node.toml", env={}).witness, tmp_path) is None  # no log yet
    other = SigningKey.generate("uni-b.example")
    (directory / "node.toml").write_text(
        toml + f'\n[[witness.logs]]\norigin = "credledger.test/b"\nvkeys = ["{other.public.vkey()}"]\n'
    )
    config = load_config(directory / "node.toml", env={})
    loaded = load_witness(config.witness, config.data_dir)
    assert loaded is not None and loaded.signer.skey() == witness.skey()
    assert list(loaded.logs) == ["credledger.test/b"]


def test_init_uses_the_witness_key_given_and_writes_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    given = SigningKey.generate("witness.example/w1")
    (tmp_path / "w1.key").write_text(given.skey() + "\n")
    directory = init(tmp_path, "uni-a.example", "--witness-key", str(tmp_path / "w1.key"))
    assert not (directory / "witness.key").exists()
    assert f"key = {json.dumps(str(tmp_path / 'w1.key'))}" in (directory / "node.toml").read_text()
    config = load_config(directory / "node.toml", env={})
    assert config.witness.key == (tmp_path / "w1.key").resolve()
    assert CosignerKey.of(given).vkey() in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (None, "--witness-key {path}: cannot read it (No such file or directory)"),
        ("uni-a.example+1a2b3c4d+AQ==", "--witness-key {path}: not a C2SP signer key"),
        ("x" * 5000, "--witness-key {path}: larger than 4096 bytes"),
    ],
)
def test_init_refuses_a_witness_key_it_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, complaint: str
) -> None:
    path = tmp_path / "w.key"
    if content is not None:
        path.write_text(content)
    code = main(["init", "--id", "a.example", "--name", "A", "--dir", str(tmp_path / "a"), "--witness-key", str(path)])
    assert code == 2
    assert complaint.format(path=path) in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
