"""The genesis file: the chain's name, start time, first members and network parameters (DESIGN §2).

The file is JSON; public keys in it are C2SP verifier keys whose name must be the member id::

    {
      "origin": "credledger.example/devnet",
      "genesis_time_ms": 1767225600000,
      "params": {"timeout_propose_ms": 3000, ..., "governance_window_ms": 604800000},
      "members": [
        {"id": "uni-a.example", "name": "University A", "power": 1,
         "node_key": "uni-a.example+1a2b3c4d+AT...", "issuer_keys": ["uni-a.example+5e6f7a8b+AW..."]}
      ]
    }

Parsing is strict: every field is required, unknown fields and repeated names are refused, and each refusal is
a `ConfigError` naming the field. The parsed `Genesis` is a codec record; its hash (over `domains.GENESIS` and
the canonical encoding, members sorted by id) identifies the network, so the member order in the file and its
formatting do not matter. Genesis members are the payloads of the `member.add` events that genesis in effect
applies at height 0: their issuer keys are valid from height 0.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from credledger.ledger import codec, domains
from credledger.ledger.codec import U63, Range, Size
from credledger.ledger.errors import ConfigError, DecodeError
from credledger.ledger.events import MemberAdd, Origin
from credledger.ledger.keys import PublicKey, key_id
from credledger.ledger.limits import (
    MAX_BLOCK_EVENTS,
    MAX_EVENT_BYTES,
    MAX_ISSUER_KEYS,
    MAX_MEMBER_ID,
    MAX_MEMBERS,
    MAX_NAME,
    MAX_ORIGIN,
    MAX_RECORD_BYTES,
    MAX_STATUS_EVENT_BYTES,
)
from credledger.ledger.membership_rules import admit_member
from credledger.ledger.state import StateOverlay
from credledger.ledger.validators import Validator, ValidatorSet, check_member_id
from credledger.ledger.vc.did import MAX_DID, default_did

#: Largest block a genesis may allow (bytes of encoded events): half the codec's record limit leaves room for the
#: header and framing of a block record.
MAX_BLOCK_BYTES = MAX_RECORD_BYTES // 2

TimeoutMs = Annotated[int, Range(1, 600_000)]
DeltaMs = Annotated[int, Range(0, 600_000)]


@dataclass(frozen=True, slots=True)
class Params:
    """Network parameters. Timeouts grow by their delta each round (Tendermint's timeout(r) = base + r·delta)."""

    timeout_propose_ms: TimeoutMs = 3_000
    timeout_propose_delta_ms: DeltaMs = 500
    timeout_prevote_ms: TimeoutMs = 1_000
    timeout_prevote_delta_ms: DeltaMs = 500
    timeout_precommit_ms: TimeoutMs = 1_000
    timeout_precommit_delta_ms: DeltaMs = 500
    #: A block is made at least this often, events or not, so a fresh checkpoint always exists.
    heartbeat_ms: Annotated[int, Range(100, 3_600_000)] = 5_000
    max_block_events: Annotated[int, Range(1, MAX_BLOCK_EVENTS)] = 2_000
    max_block_bytes: Annotated[int, Range(1024, MAX_BLOCK_BYTES)] = 4 * 1024 * 1024
    max_event_bytes: Annotated[int, Range(1024, MAX_EVENT_BYTES)] = MAX_EVENT_BYTES
    #: How far an event's time may be from the block's (and from a node's clock at admission).
    max_clock_skew_ms: Annotated[int, Range(1_000, 86_400_000)] = 300_000
    #: How old a governance-signed event may be: gathering signatures from more than 2/3 of the members takes
    #: longer than a clock skew. (Events from the future are held to `max_clock_skew_ms` all the same.)
    governance_window_ms: Annotated[int, Range(1_000, 30 * 86_400_000)] = 7 * 86_400_000

    def __post_init__(self) -> None:
        for name, bound in _int_bounds(Params).items():
            value = getattr(self, name)
            if type(value) is not int or not bound.min <= value <= bound.max:
                raise ValueError(f"{name}: {value!r} is not an integer in [{bound.min}, {bound.max}]")
        if self.max_block_bytes < self.max_event_bytes:
            raise ValueError(
                f"max_block_bytes ({self.max_block_bytes}) is less than max_event_bytes ({self.max_event_bytes})"
            )
        if self.max_block_bytes < MAX_STATUS_EVENT_BYTES:
            raise ValueError(
                f"max_block_bytes ({self.max_block_bytes}) is less than the largest status list event "
                f"({MAX_STATUS_EVENT_BYTES} bytes), so a member's status list could not be published"
            )
        if self.governance_window_ms < self.max_clock_skew_ms:
            raise ValueError(
                f"governance_window_ms ({self.governance_window_ms}) is less than max_clock_skew_ms "
                f"({self.max_clock_skew_ms})"
            )


@dataclass(frozen=True, slots=True)
class Genesis:
    """A network's starting point. Build with `Genesis.of` to have the members sorted."""

    origin: Origin
    genesis_time_ms: int
    members: Annotated[tuple[MemberAdd, ...], Size(1, MAX_MEMBERS)]
    params: Params

    def __post_init__(self) -> None:
        check_origin(self.origin)
        ids = [m.member for m in self.members]
        if not ids or len(ids) > MAX_MEMBERS:
            raise ValueError(f"genesis needs 1..{MAX_MEMBERS} members, got {len(ids)}")
        if ids != sorted(set(ids)):
            raise ValueError("genesis members must be sorted by id, each id once")
        if not any(m.power > 0 for m in self.members):
            raise ValueError("at least one genesis member needs voting power")
        node_keys = [m.node_key for m in self.members]
        if len(set(node_keys)) != len(node_keys):
            raise ValueError("two genesis members share a node key")
        dids = [m.did or default_did(m.member) for m in self.members]
        if len(set(dids)) != len(dids):
            raise ValueError("two genesis members share a DID")
        for member in self.members:
            key_ids = {key_id(member.member, k) for k in (member.node_key, *member.issuer_keys)}
            if len(key_ids) != 1 + len(member.issuer_keys):
                raise ValueError(f"two of {member.member}'s keys share a key id")

    @classmethod
    def of(cls, origin: str, genesis_time_ms: int, members: Iterable[MemberAdd], params: Params) -> Genesis:
        return cls(origin, genesis_time_ms, tuple(sorted(members, key=lambda m: m.member)), params)

    def hash(self) -> bytes:
        """SHA-256(domains.GENESIS || canonical encoding): the network's identity."""
        return hashlib.sha256(domains.GENESIS + codec.encode(self)).digest()

    def initial_state(self) -> dict[bytes, bytes]:
        """The state-map entries at height 0."""
        view = StateOverlay({})
        for member in self.members:
            admit_member(view, member, 0)
        return {key: value for key, value in view.changes.items() if value is not None}

    def validator_set(self) -> ValidatorSet:
        """The validators of heights 1 and 2 (later sets follow from committed governance)."""
        return ValidatorSet.of([Validator(m.member, m.power, m.node_key) for m in self.members if m.power > 0])


def check_origin(origin: str) -> None:
    """Raise ValueError unless `origin` can head a checkpoint note: one printable line, no outer spaces."""
    if not origin or origin != origin.strip() or not origin.isprintable():
        raise ValueError(f"origin {origin!r} must be one printable line without leading or trailing spaces")
    if len(origin.encode()) > MAX_ORIGIN:
        raise ValueError(f"origin is longer than {MAX_ORIGIN} bytes")


# --- JSON ---------------------------------------------------------------------------------------------------------


def load_genesis(path: str | Path) -> Genesis:
    """Read and parse a genesis file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"genesis file {path}: cannot read it ({exc})") from None
    return parse_genesis(text)


def write_genesis(genesis: Genesis, path: str | Path) -> None:
    """Write `genesis` as a JSON file that `load_genesis` reads back to an equal value."""
    Path(path).write_text(genesis_json(genesis), encoding="utf-8")


def genesis_json(genesis: Genesis) -> str:
    document = {
        "origin": genesis.origin,
        "genesis_time_ms": genesis.genesis_time_ms,
        "params": {f.name: getattr(genesis.params, f.name) for f in dataclasses.fields(Params)},
        "members": [
            {
                "id": m.member,
                "name": m.name,
                "power": m.power,
                "node_key": PublicKey(m.member, m.node_key).vkey(),
                "issuer_keys": [PublicKey(m.member, k).vkey() for k in m.issuer_keys],
                **({} if m.did is None else {"did": m.did}),
            }
            for m in genesis.members
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def parse_genesis(text: str | bytes) -> Genesis:
    """Parse genesis JSON, raising ConfigError that names the offending field."""
    try:
        document = json.loads(text, object_pairs_hook=_refuse_repeated_names)
    except ValueError as exc:
        raise ConfigError(f"genesis: not valid JSON ({exc})") from None
    except RecursionError:
        raise ConfigError("genesis: not valid JSON (nested too deeply)") from None
    top = _object(document, "genesis", ("origin", "genesis_time_ms", "params", "members"))
    origin = _str(top, "origin", "genesis", MAX_ORIGIN)
    try:
        check_origin(origin)
    except ValueError as exc:
        raise ConfigError(f"genesis.origin: {exc}") from None
    genesis_time_ms = _int(top, "genesis_time_ms", "genesis", U63)
    params = _params(top["params"])
    raw_members = top["members"]
    if not isinstance(raw_members, list) or not 1 <= len(raw_members) <= MAX_MEMBERS:
        raise ConfigError(f"genesis.members: expected a list of 1..{MAX_MEMBERS} members")
    members = [_member(raw, f"genesis.members[{i}]") for i, raw in enumerate(raw_members)]
    try:
        return Genesis.of(origin, genesis_time_ms, members, params)
    except ValueError as exc:
        raise ConfigError(f"genesis.members: {exc}") from None


def _params(raw: Any) -> Params:
    names = tuple(f.name for f in dataclasses.fields(Params))
    obj = _object(raw, "genesis.params", names)
    bounds = _int_bounds(Params)
    values = {name: _int(obj, name, "genesis.params", bounds[name]) for name in names}
    try:
        return Params(**values)
    except ValueError as exc:
        raise ConfigError(f"genesis.params: {exc}") from None


def _member(raw: Any, where: str) -> MemberAdd:
    obj = _object(raw, where, ("id", "name", "power", "node_key", "issuer_keys"), optional=("did",))
    member_id = _str(obj, "id", where, MAX_MEMBER_ID)
    try:
        check_member_id(member_id)
    except ValueError as exc:
        raise ConfigError(f"{where}.id: {exc}") from None
    name = _str(obj, "name", where, MAX_NAME)
    power = _int(obj, "power", where, _int_bounds(MemberAdd)["power"])
    node_key = _vkey(obj["node_key"], f"{where}.node_key", member_id)
    raw_keys = obj["issuer_keys"]
    if not isinstance(raw_keys, list) or not 1 <= len(raw_keys) <= MAX_ISSUER_KEYS:
        raise ConfigError(f"{where}.issuer_keys: expected a list of 1..{MAX_ISSUER_KEYS} verifier keys")
    issuer_keys = tuple(_vkey(k, f"{where}.issuer_keys[{i}]", member_id) for i, k in enumerate(raw_keys))
    did = _str(obj, "did", where, MAX_DID) if "did" in obj else None
    try:
        return MemberAdd(member_id, name, power, node_key, issuer_keys, did)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _vkey(raw: Any, where: str, member_id: str) -> bytes:
    if not isinstance(raw, str):
        raise ConfigError(f"{where}: expected a verifier key string, got {_json_type(raw)}")
    try:
        key = PublicKey.from_vkey(raw)
    except DecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if key.name != member_id:
        raise ConfigError(f"{where}: the key is named {key.name!r}; a member's keys are named by its id {member_id!r}")
    return key.raw


def _object(raw: Any, where: str, fields: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected an object, got {_json_type(raw)}")
    missing = [f for f in fields if f not in raw]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(raw) - set(fields) - set(optional))
    if unknown:
        raise ConfigError(f"{where}: unknown field {', '.join(unknown)}")
    return raw


def _str(obj: dict[str, Any], field: str, where: str, max_bytes: int) -> str:
    value = obj[field]
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{field}: expected a string, got {_json_type(value)}")
    if not 1 <= len(value.encode()) <= max_bytes:
        raise ConfigError(f"{where}.{field}: expected 1..{max_bytes} UTF-8 bytes, got {len(value.encode())}")
    return value


def _int(obj: dict[str, Any], field: str, where: str, bound: Range) -> int:
    value = obj[field]
    if type(value) is not int:  # bool is an int subclass, and true is not a number
        raise ConfigError(f"{where}.{field}: expected an integer, got {_json_type(value)}")
    if not bound.min <= value <= bound.max:
        raise ConfigError(f"{where}.{field}: {value} is outside [{bound.min}, {bound.max}]")
    return value


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", float: "a fraction"}
    return "null" if value is None else names.get(type(value), "an integer")


def _refuse_repeated_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"field {name!r} appears twice in one object")
        result[name] = value
    return result


@functools.cache
def _int_bounds(cls: type) -> dict[str, Range]:
    """The declared Range of each int field of a record (U63 where none is declared)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    bounds: dict[str, Range] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if typing.get_origin(hint) is Annotated:
            base, *extras = typing.get_args(hint)
            if base is int:
                bounds[f.name] = next((e for e in extras if isinstance(e, Range)), U63)
        elif hint is int:
            bounds[f.name] = U63
    return bounds
