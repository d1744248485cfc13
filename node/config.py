"""Node configuration: a TOML file, overridden by `CREDLEDGER_*` environment variables.

Every setting has a default, so a node needs only its member id, data directory, genesis file and key file.
An environment variable overrides the setting at the same path: `CREDLEDGER_API_PORT` sets `[api] port`,
`CREDLEDGER_DATA_DIR` sets `data_dir`, `CREDLEDGER_P2P_PEERS` sets `[p2p] peers` (comma-separated). Values
are parsed to the setting's type, and any unknown key or wrong type is a `ConfigError` naming it.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from credledger.ledger.errors import ConfigError
from credledger.ledger.storage import schema

ENV_PREFIX = "CREDLEDGER_"
#: Largest config file read (a real one is well under a kilobyte).
MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8700
    #: Largest request body accepted (bytes); larger bodies get 413.
    max_body_bytes: int = 4 * 1024 * 1024
    #: Largest batch of events in one POST.
    max_batch: int = 1000
    #: How long `?wait=commit` waits before answering 504 (milliseconds).
    commit_wait_ms: int = 30_000
    #: How long a request body may take to arrive once its headers have (milliseconds); slower bodies get 408.
    body_timeout_ms: int = 10_000
    #: How long an idle keep-alive connection stays open between requests (milliseconds).
    keepalive_timeout_ms: int = 15_000


@dataclass(frozen=True, slots=True)
class P2PConfig:
    #: Base URLs of the other validators (`http://host:port`); the peer websocket lives at `/v1/peer`.
    peers: tuple[str, ...] = ()
    #: Bound on messages queued for one peer; beyond it the oldest gossip is dropped (consensus re-sends).
    queue_size: int = 10_000
    #: Reconnect backoff bounds (milliseconds).
    backoff_min_ms: int = 100
    backoff_max_ms: int = 5_000
    #: How many certified blocks to ask for in one catch-up request.
    sync_batch: int = 64


@dataclass(frozen=True, slots=True)
class MempoolConfig:
    max_events: int = 100_000
    max_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoreConfig:
    #: Slots in LMDB's reader table: read transactions open at once, over every process reading the store. The
    #: API refuses requests (503) once fewer than `node.api.app.RESERVED_READ_SLOTS` are left, keeping them for
    #: consensus and catch-up.
    max_readers: int = schema.DEFAULT_MAX_READERS
    #: Blocks whose state the node keeps provable, counting the latest; older state-map versions are pruned (the
    #: log, events, headers and certificates are always kept). 0 keeps every version since genesis.
    state_history_blocks: int = 0


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"
    #: "auto" writes JSON when stderr is not a terminal and readable lines when it is.
    format: Literal["auto", "json", "console"] = "auto"


@dataclass(frozen=True, slots=True)
class CredentialsConfig:
    """Standard credentials (DESIGN §13). With `issuer_key` (the member's issuer key file), a validator signs and
    publishes its member's Bitstring Status Lists whenever a block changes them, and at least every
    `status_refresh_ms`; each list it signs is valid for `status_validity_ms`. With `issuer_key` and `api_token` too,
    the VC-API issues and changes the status of credentials for clients that present the token as a bearer token."""

    issuer_key: str = ""
    api_token: str = ""
    status_validity_ms: int = 86_400_000
    status_refresh_ms: int = 3_600_000


@dataclass(frozen=True, slots=True)
class WitnessedLogConfig:
    """A log this node witnesses (C2SP tlog-witness): its origin line, its note vkeys, and how many must sign."""

    origin: str
    vkeys: tuple[str, ...]
    quorum: int = 1


@dataclass(frozen=True, slots=True)
class WitnessConfig:
    """`[witness]`: the logs this node cosigns checkpoints of (`POST /add-checkpoint`), and its witness key file.

    The key file holds a signer key (as `credledger init` writes them) whose name is the witness's name; the
    witness's record of each log is kept in `data_dir/witness`.
    """

    key: Path = Path("witness.key")
    logs: tuple[WitnessedLogConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class WitnessEndpointConfig:
    """An outside witness this node submits checkpoints to: its cosigner vkey (type 0x04) and base URL."""

    vkey: str
    url: str


@dataclass(frozen=True, slots=True)
class WitnessesConfig:
    """`[witnesses]`: the outside witnesses this node submits each new checkpoint to (C2SP tlog-witness)."""

    witnesses: tuple[WitnessEndpointConfig, ...] = ()
    #: How many of them should cosign a checkpoint; fewer is logged as a warning.
    quorum: int = 1
    #: Submit the latest checkpoint at most this often (milliseconds).
    witness_interval_ms: int = 1_000
    #: How long one witness may take to answer (milliseconds).
    timeout_ms: int = 10_000


@dataclass(frozen=True, slots=True)
class NodeConfig:
    member_id: str
    data_dir: Path
    genesis: Path
    node_key: Path
    #: "validator" takes part in consensus; "replica" only follows the chain and serves reads.
    role: Literal["validator", "replica"] = "validator"
    api: ApiConfig = field(default_factory=ApiConfig)
    p2p: P2PConfig = field(default_factory=P2PConfig)
    mempool: MempoolConfig = field(default_factory=MempoolConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    log: LogConfig = field(default_factory=LogConfig)
    credentials: CredentialsConfig = field(default_factory=CredentialsConfig)
    witness: WitnessConfig = field(default_factory=WitnessConfig)
    witnesses: WitnessesConfig = field(default_factory=WitnessesConfig)


def load_config(path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> NodeConfig:
    """Read a config file (or none) and apply environment overrides. Relative paths resolve against the file."""
    env = os.environ if env is None else env
    if path is None:
        return parse_config(b"", Path.cwd(), env)
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {file} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {file}: cannot read it ({exc.strerror or exc})") from None
    try:
        return parse_config(data, file.resolve().parent, env)
    except ConfigError as exc:
        raise ConfigError(f"config file {file}: {exc}") from None


def parse_config(text: bytes | str, base: Path, env: Mapping[str, str]) -> NodeConfig:
    """Parse TOML config text, apply environment overrides, and resolve relative paths against `base`."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{len(text)} bytes exceeds the limit of {MAX_CONFIG_BYTES}")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"not UTF-8 (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(exc)) from None
    except RecursionError:
        raise ConfigError("arrays or tables nested too deeply") from None
    _apply_env(data, env, NodeConfig)
    config = _build(NodeConfig, data, "")
    assert isinstance(config, NodeConfig)
    return dataclasses.replace(
        config,
        data_dir=_resolve(base, config.data_dir),
        genesis=_resolve(base, config.genesis),
        node_key=_resolve(base, config.node_key),
        credentials=dataclasses.replace(
            config.credentials,
            issuer_key=str(_resolve(base, Path(config.credentials.issuer_key)))
            if config.credentials.issuer_key
            else "",
        ),
        witness=dataclasses.replace(config.witness, key=_resolve(base, config.witness.key)),
    )


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else (base / path).resolve()


def _apply_env(data: dict[str, Any], env: Mapping[str, str], cls: type, prefix: str = ENV_PREFIX) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = prefix + f.name.upper()
        tp = hints[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            section = data.setdefault(f.name, {})
            if not isinstance(section, dict):
                raise ConfigError(f"[{f.name}] must be a table")
            _apply_env(section, env, tp, name + "_")
        elif name in env:
            data[f.name] = _from_env(env[name], tp, name)


def _from_env(text: str, tp: Any, name: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{name}={text!r}: expected an integer") from None
    if origin is tuple:
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown setting {where}{unknown[0]!r} (known: {', '.join(sorted(names))})")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        path = f"{where}{f.name}"
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"missing required setting {path!r}")
            continue
        values[f.name] = _convert(data[f.name], hints[f.name], path)
    return cls(**values)


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"[{path}] must be a table")
        return _build(tp, value, path + ".")
    if tp is Path:
        # A NUL cannot be in a file name; TOML's \u0000 would otherwise fail later, when the path is resolved.
        if not isinstance(value, str) or not value or "\x00" in value:
            raise ConfigError(f"{path}: expected a path string (non-empty, without NUL characters)")
        return Path(value)
    if tp is int:
        if type(value) is not int or value < 0:
            raise ConfigError(f"{path}: expected a non-negative integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if origin is tuple:
        return _convert_tuple(value, typing.get_args(tp)[0], path)
    raise ConfigError(f"{path}: unsupported setting type {tp!r}")


def _convert_tuple(value: Any, item: Any, path: str) -> tuple[Any, ...]:
    """A list of strings, or an array of tables when the items are settings of their own."""
    if isinstance(item, type) and dataclasses.is_dataclass(item):
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected an array of tables ([[{path}]])")
        return tuple(_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: expected a list of strings")
    return tuple(value)
