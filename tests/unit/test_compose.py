"""docker-compose.yml, the Dockerfile and config/ agree with each other and with the code that reads them.

No Docker engine runs here, so these tests read the files: every service runs a devnet institution from its own
node.toml with its own volume and port; peers are the other services; the genesis the configs name is the one
compose mounts, and its members' keys are the key files beside each config. The example config and genesis load
with the real loaders.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from credledger.cli.devnet import DEFAULT_BASE_PORT, DEVNET_PARAMS, INSTITUTIONS
from credledger.ledger.genesis import Genesis, load_genesis
from credledger.ledger.keys import PublicKey, SigningKey
from credledger.node.config import ApiConfig, LogConfig, MempoolConfig, NodeConfig, P2PConfig, load_config
from tests.conftest import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DEVNET = PROJECT_ROOT / "config" / "devnet"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def dockerfile() -> dict[str, list[str]]:
    """Dockerfile instructions by keyword, continuation lines joined (the last of a kind wins in Docker)."""
    instructions: dict[str, list[str]] = {}
    logical = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        logical += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            keyword, _, rest = logical.strip().partition(" ")
            instructions.setdefault(keyword.upper(), []).append(rest.strip())
            logical = ""
    return instructions


@dataclasses.dataclass(frozen=True)
class Service:
    """What one compose service runs, resolved to paths inside its container and in the repository."""

    name: str
    config_path: PurePosixPath  # inside the container
    config_file: Path  # in the repository
    host_port: int
    container_port: int
    mounts: dict[PurePosixPath, Path]  # container directory -> repository directory (bind mounts)
    volumes: dict[PurePosixPath, str]  # container directory -> named volume
    raw: dict[str, Any]

    def in_repo(self, container_path: PurePosixPath) -> Path:
        """The repository file a container path shows, through this service's bind mounts."""
        for target, source in self.mounts.items():
            if container_path.is_relative_to(target):
                return source / container_path.relative_to(target)
        raise AssertionError(f"{self.name}: {container_path} is not inside any bind mount")


def services(compose: dict[str, Any], dockerfile: dict[str, list[str]]) -> list[Service]:
    out = []
    for name, spec in compose["services"].items():
        command = spec.get("command") or json_list(dockerfile["CMD"][-1])
        assert command[:2] == ["run", "--config"] and len(command) == 3, f"{name} runs {command}"
        mounts: dict[PurePosixPath, Path] = {}
        volumes: dict[PurePosixPath, str] = {}
        for entry in spec["volumes"]:
            source, target, *mode = entry.split(":")
            if source.startswith("."):
                assert mode == ["ro"], f"{name}: configuration and keys are mounted read-only"
                mounts[PurePosixPath(target)] = (PROJECT_ROOT / source).resolve()
            else:
                volumes[PurePosixPath(target)] = source
        (port,) = spec["ports"]
        host, host_port, container_port = port.split(":")
        assert host == "127.0.0.1", f"{name} publishes its API beyond the host's loopback"
        config_path = PurePosixPath(command[2])
        service = Service(name, config_path, Path(), int(host_port), int(container_port), mounts, volumes, spec)
        out.append(dataclasses.replace(service, config_file=service.in_repo(config_path)))
    return out


def json_list(text: str) -> list[str]:
    """A Dockerfile exec-form list (["a", "b"])."""
    assert text.startswith("[") and text.endswith("]"), f"not exec form: {text}"
    return [item.strip().strip('"') for item in text[1:-1].split(",")]


def node_toml(service: Service) -> dict[str, Any]:
    return tomllib.loads(service.config_file.read_text())


def container_path(service: Service, value: str) -> PurePosixPath:
    """A path setting as the node resolves it inside the container (relative to its config file)."""
    path = PurePosixPath(value)
    return path if path.is_absolute() else PurePosixPath(*_normalise(service.config_path.parent / path))


def _normalise(path: PurePosixPath) -> list[str]:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return parts


@pytest.fixture(scope="module")
def all_services(compose: dict[str, Any], dockerfile: dict[str, list[str]]) -> list[Service]:
    return services(compose, dockerfile)


@pytest.fixture(scope="module")
def genesis() -> Genesis:
    return load_genesis(DEVNET / "genesis.json")


# --- compose and the node configs ---------------------------------------------------------------------------------


def test_every_devnet_institution_has_one_service_and_every_service_one_institution(
    all_services: list[Service], genesis: Genesis
) -> None:
    members = {m.member for m in genesis.members}
    configured = {node_toml(s)["member_id"] for s in all_services}
    assert configured == members
    assert len(all_services) == len(members) == 4
    directories = {p.name for p in DEVNET.iterdir() if p.is_dir()}
    assert directories == members


def test_each_service_listens_where_compose_publishes_it_on_a_port_of_its_own(all_services: list[Service]) -> None:
    for service in all_services:
        api = node_toml(service)["api"]
        assert api["host"] == "0.0.0.0", f"{service.name} must listen beyond the container's loopback"
        assert api["port"] == service.container_port
    host_ports = [s.host_port for s in all_services]
    assert len(set(host_ports)) == len(host_ports)


def test_compose_publishes_on_host_ports_the_local_devnet_leaves_free(all_services: list[Service]) -> None:
    devnet_ports = range(DEFAULT_BASE_PORT, DEFAULT_BASE_PORT + len(INSTITUTIONS))
    host_ports = {s.host_port for s in all_services}
    assert host_ports.isdisjoint(devnet_ports)
    header = COMPOSE.read_text().split("services:")[0]
    for service in all_services:  # the ports the compose file's own comment announces are the ones it publishes
        assert str(service.host_port) in header
        assert f"127.0.0.1:{service.host_port}" in service.config_file.read_text()
    assert f"{DEFAULT_BASE_PORT}-{DEFAULT_BASE_PORT + len(INSTITUTIONS) - 1} of `make run`" in header


def test_each_service_keeps_its_ledger_in_a_volume_of_its_own(
    compose: dict[str, Any], all_services: list[Service]
) -> None:
    declared = set(compose["volumes"])
    used = []
    for service in all_services:
        data_dir = container_path(service, node_toml(service)["data_dir"])
        assert data_dir in service.volumes, f"{service.name}: data_dir {data_dir} is not on a volume"
        used.append(service.volumes[data_dir])
    assert len(set(used)) == len(used), "two services share a data volume"
    assert set(used) == declared


def test_peers_are_the_other_services_at_their_container_ports(all_services: list[Service]) -> None:
    by_name = {s.name: s for s in all_services}
    for service in all_services:
        peers = node_toml(service)["p2p"]["peers"]
        addresses = set()
        for url in peers:
            parts = urlsplit(url)
            assert parts.scheme == "http" and parts.path in ("", "/"), url
            assert parts.hostname in by_name, f"{service.name}: peer {url} is not a compose service"
            assert parts.port == by_name[parts.hostname].container_port
            addresses.add(parts.hostname)
        assert addresses == set(by_name) - {service.name}
        assert len(peers) == len(addresses)


def test_every_service_reads_the_one_genesis_and_holds_its_members_keys(
    all_services: list[Service], genesis: Genesis
) -> None:
    members = {m.member: m for m in genesis.members}
    for service in all_services:
        toml = node_toml(service)
        member = members[toml["member_id"]]
        assert service.in_repo(container_path(service, toml["genesis"])) == (DEVNET / "genesis.json").resolve()
        node_key = SigningKey.from_skey(service.in_repo(container_path(service, toml["node_key"])).read_text())
        assert node_key.name == member.member
        assert node_key.public.raw == member.node_key
        issuer = SigningKey.from_skey((service.config_file.parent / "issuer.key").read_text())
        assert issuer.public.raw in member.issuer_keys
        public = (service.config_file.parent / "member.json").read_text()
        assert PublicKey(member.member, member.node_key).vkey() in public
        assert toml["role"] == "validator" and member.power > 0


def test_the_devnet_configs_load_with_the_node_loader(all_services: list[Service]) -> None:
    for service in all_services:
        config = load_config(service.config_file, env={})
        assert config.member_id == node_toml(service)["member_id"]
        assert config.genesis == (DEVNET / "genesis.json").resolve()


def test_the_devnet_genesis_has_the_devnet_timeouts(genesis: Genesis) -> None:
    assert genesis.params == DEVNET_PARAMS
    assert genesis.origin == "credledger.example/docker-devnet"


def test_services_share_one_image_and_restart_and_stop_gracefully(compose: dict[str, Any]) -> None:
    specs = list(compose["services"].values())
    assert {s["image"] for s in specs} == {"credledger:dev"}
    assert all(s["build"] == "." for s in specs)
    assert all(s["restart"] == "unless-stopped" for s in specs)
    # The node commits a block in one synced transaction; SIGTERM lets it finish and close the store.
    assert all(int(re.sub(r"\D", "", s["stop_grace_period"])) >= 10 for s in specs)


# --- the Dockerfile -----------------------------------------------------------------------------------------------


def test_the_image_runs_credledger_on_the_port_and_volume_compose_uses(
    dockerfile: dict[str, list[str]], all_services: list[Service]
) -> None:
    assert dockerfile["FROM"] == ["python:3.11-slim"]
    assert json_list(dockerfile["ENTRYPOINT"][-1]) == ["credledger"]
    assert json_list(dockerfile["CMD"][-1])[:2] == ["run", "--config"]
    assert {int(p) for p in dockerfile["EXPOSE"]} == {s.container_port for s in all_services}
    assert dockerfile["VOLUME"] == [" ".join(sorted({str(d) for s in all_services for d in s.volumes}))]
    install = " ".join(dockerfile["RUN"])
    assert "pip install ." in install
    copied = {source for c in dockerfile["COPY"] for source in shlex.split(c)[:-1]}
    assert {"pyproject.toml", "README.md", "credledger", "ledger", "consensus", "node", "verifier", "cli"} <= copied
    assert dockerfile["USER"] != ["root"]
    health = dockerfile["HEALTHCHECK"][-1]
    assert f"127.0.0.1:{all_services[0].container_port}/readyz" in health


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = {line.strip() for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "data", "devnet"} <= ignored
    assert "README.md" not in ignored and "pyproject.toml" not in ignored


# --- the examples -------------------------------------------------------------------------------------------------


def test_the_example_node_config_loads_and_shows_every_setting_at_its_default() -> None:
    path = PROJECT_ROOT / "config" / "node.example.toml"
    config = load_config(path, env={})
    assert config.member_id == "uni-a.example"
    assert config.p2p.peers  # the one setting the example fills in beyond its default
    assert dataclasses.replace(config.p2p, peers=()) == P2PConfig()
    assert (config.api, config.mempool, config.log) == (ApiConfig(), MempoolConfig(), LogConfig())
    assert config.role == NodeConfig.__dataclass_fields__["role"].default
    text = path.read_text()
    for section in (ApiConfig, P2PConfig, MempoolConfig, LogConfig):
        for f in dataclasses.fields(section):
            assert re.search(rf"^{f.name} = ", text, re.MULTILINE), f"{f.name} is not in the example"


def test_the_example_genesis_is_a_valid_network() -> None:
    genesis = load_genesis(PROJECT_ROOT / "config" / "genesis.example.json")
    assert genesis.origin == "credledger.example/main"
    assert len(genesis.members) == 3
    assert all(m.power == 1 for m in genesis.members)
