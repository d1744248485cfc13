from __future__ import annotations

from pathlib import Path

import pytest

from credledger.ledger.errors import ConfigError
from credledger.node.config import NodeConfig, StoreConfig, load_config
from credledger.node.server import MIN_READERS, Node
from tests.factories import make_network

MINIMAL = """
member_id = "uni-a.example"
data_dir = "data"
genesis = "genesis.json"
node_key = "keys/node.key"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_minimal_file_gets_defaults_and_paths_resolve_against_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), env={})
    assert config.member_id == "uni-a.example"
    assert config.data_dir == tmp_path / "data"
    assert config.api.port == 8700
    assert config.role == "validator"
    assert config.p2p.peers == ()


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    env = {
        "CREDLEDGER_API_PORT": "9100",
        "CREDLEDGER_P2P_PEERS": "http://127.0.0.1:1, http://127.0.0.1:2",
        "CREDLEDGER_ROLE": "replica",
        "CREDLEDGER_DATA_DIR": "/var/lib/credledger",
    }
    config = load_config(write(tmp_path, MINIMAL), env=env)
    assert config.api.port == 9100
    assert config.p2p.peers == ("http://127.0.0.1:1", "http://127.0.0.1:2")
    assert config.role == "replica"
    assert config.data_dir == Path("/var/lib/credledger")


def test_environment_alone_is_enough() -> None:
    env = {
        "CREDLEDGER_MEMBER_ID": "a",
        "CREDLEDGER_DATA_DIR": "/d",
        "CREDLEDGER_GENESIS": "/g.json",
        "CREDLEDGER_NODE_KEY": "/k",
    }
    assert load_config(None, env=env).genesis == Path("/g.json")


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (MINIMAL + "colour = 1\n", {}, "unknown setting 'colour'"),
        (MINIMAL + "[api]\nport = 'x'\n", {}, "api.port: expected a non-negative integer"),
        (MINIMAL + "role = 'boss'\n", {}, "role: expected one of"),
        (MINIMAL + "[api]\nbogus = 1\n", {}, "unknown setting api.'bogus'"),
        ('member_id = "a"\n', {}, "missing required setting 'data_dir'"),
        (MINIMAL + "[api\n", {}, "node.toml"),
        (MINIMAL, {"CREDLEDGER_API_PORT": "eighty"}, "CREDLEDGER_API_PORT='eighty': expected an integer"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_config(write(tmp_path, text), env=env)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_a_reader_table_too_small_to_keep_slots_for_consensus_is_refused(tmp_path: Path) -> None:
    network = make_network(4)
    config = NodeConfig(
        member_id="m0.test",
        data_dir=tmp_path / "data",
        genesis=tmp_path / "genesis.json",
        node_key=tmp_path / "node.key",
        store=StoreConfig(max_readers=MIN_READERS - 1),
    )
    with pytest.raises(ConfigError, match=rf"\[store\] max_readers is {MIN_READERS - 1}: at least {MIN_READERS}"):
        Node(config, network.genesis, network["m0.test"].node)
    assert not (tmp_path / "data").exists()


def test_state_history_blocks_is_read_from_the_store_table_and_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "\n[store]\nstate_history_blocks = 100\n")
    assert load_config(path, env={}).store.state_history_blocks == 100
    assert load_config(path, env={"CREDLEDGER_STORE_STATE_HISTORY_BLOCKS": "7"}).store.state_history_blocks == 7
    assert load_config(write(tmp_path, MINIMAL), env={}).store.state_history_blocks == 0  # keep every height


def test_a_negative_state_history_is_refused_before_the_data_dir_is_touched(tmp_path: Path) -> None:
    network = make_network(4)
    config = NodeConfig(
        member_id="m0.test",
        data_dir=tmp_path / "data",
        genesis=tmp_path / "genesis.json",
        node_key=tmp_path / "node.key",
        store=StoreConfig(state_history_blocks=-1),
    )
    with pytest.raises(ConfigError, match=r"\[store\] state_history_blocks is -1: expected 0"):
        Node(config, network.genesis, network["m0.test"].node)
    assert not (tmp_path / "data").exists()
