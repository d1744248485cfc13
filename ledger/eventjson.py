"""The JSON form of events, block headers and state records, as the API shows them (DESIGN §9).

An event in JSON names every field of its canonical encoding, so a client that cannot produce msgpack can still
submit one, and a reader can see what an encoded event says::

    {
      "origin": "credledger.example/devnet",
      "time_ms": 1767225600000,
      "payload": {"kind": "issue", "digest": "<64 hex>", "issuer": "uni-a.example", "expires_ms": null,
                  "components": []},
      "signatures": [{"member": "uni-a.example", "key_id": "<8 hex>", "sig": "<base64>"}]
    }

Field spellings: credential digests and key ids are lowercase hex (as ids are everywhere in the API), public keys
are C2SP verifier keys named by the member the payload is about (as in the genesis file), and signatures are
standard base64. Every field is required (an absent optional value is ``null``; a field added later with a null
default, such as an issue's ``achievement``, is left out when absent), unknown fields are refused,
and `event_from_json` rebuilds the exact canonical event (same bytes, same id) or raises a `DecodeError` whose
message starts with the JSON path of the offending field.

Headers and records are only ever written (`header_to_json`, ...): clients that need their bytes get the
canonical encoding alongside.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any

from credledger.ledger import codec, encoding
from credledger.ledger.block import Header
from credledger.ledger.errors import DecodeError
from credledger.ledger.events import (
    Event,
    Payload,
    Signature,
)
from credledger.ledger.keys import PublicKey
from credledger.ledger.limits import MAX_ANY_EVENT_BYTES
from credledger.ledger.state import CredentialRecord, IssuerKeyRecord, MemberRecord

JSON = dict[str, Any]

#: Every payload kind, by the tag its JSON form names in "kind".
PAYLOAD_KINDS: dict[str, type[Payload]] = {cls.TAG: cls for cls in typing.get_args(Payload)}

_KIND_IN_PATH = re.compile(r"<[a-z.]+>")
#: JSON integers are held to the codec's default range, so every accepted value also packs into msgpack.
_MAX_INT = 2**63 - 1


# --- how each bytes field is spelled ------------------------------------------------------------------------------


class _Form:
    """A textual spelling of a bytes field: hex, base64, or a verifier key named by the payload's member."""

    def __init__(self, name: str, write: Callable[[bytes, str], str], read: Callable[[str, str, str], bytes]) -> None:
        self.name = name
        self.write = write
        #: read(text, member, where) -> bytes, raising DecodeError prefixed with `where`.
        self.read = read


def _read_hex(text: str, _member: str, where: str) -> bytes:
    return encoding.from_hex(text, where)


def _read_b64(text: str, _member: str, where: str) -> bytes:
    return encoding.from_base64(text, where)


def _read_vkey(text: str, member: str, where: str) -> bytes:
    try:
        key = PublicKey.from_vkey(text)
    except DecodeError as exc:
        raise DecodeError(f"{where}: {exc}") from None
    if key.name != member:
        raise DecodeError(
            f"{where}: the key is named {key.name!r}; keys in this payload are named by its member {member!r}"
        )
    return key.raw


HEX = _Form("hex", lambda raw, _m: raw.hex(), _read_hex)
BASE64 = _Form("base64", lambda raw, _m: base64.b64encode(raw).decode(), _read_b64)
VKEY = _Form("verifier key", lambda raw, member: PublicKey(member, raw).vkey(), _read_vkey)

#: The spelling of every bytes field of payloads and signatures, by field name.
_BYTES_FIELDS: dict[str, _Form] = {
    "digest": HEX,
    "components": HEX,
    "key_id": HEX,
    "sig": BASE64,
    "node_key": VKEY,
    "issuer_keys": VKEY,
    "public_key": VKEY,
    "definition": BASE64,
}


# --- events -------------------------------------------------------------------------------------------------------


def event_to_json(event: Event) -> JSON:
    """The JSON form of a signed event."""
    return {
        "origin": event.origin,
        "time_ms": event.time_ms,
        "payload": payload_to_json(event.payload),
        "signatures": [_record_to_json(sig, sig.member) for sig in event.signatures],
    }


def payload_to_json(payload: Payload) -> JSON:
    """The JSON form of a payload: its "kind" and its fields."""
    member = str(getattr(payload, "member", ""))
    return {"kind": payload.TAG, **_record_to_json(payload, member)}


def event_from_json(data: Any, where: str = "event", *, max_bytes: int = MAX_ANY_EVENT_BYTES) -> Event:
    """Rebuild the canonical event a JSON form describes; DecodeError names the JSON path of what is wrong."""
    obj = _object(data, where, ("origin", "time_ms", "payload", "signatures"))
    origin = _str(obj["origin"], f"{where}.origin")
    time_ms = _int(obj["time_ms"], f"{where}.time_ms")
    payload = _payload(obj["payload"], f"{where}.payload")
    raw_sigs = _list(obj["signatures"], f"{where}.signatures")
    signatures = tuple(_signature(raw, f"{where}.signatures[{i}]") for i, raw in enumerate(raw_sigs))
    try:
        event = Event(origin, time_ms, payload, signatures)
    except ValueError as exc:
        raise DecodeError(f"{where}: {exc}") from None
    # The codec holds the declared bounds (string and list sizes, reason codes, ...): round-trip through it, so
    # the JSON form accepts exactly what the canonical form does.
    try:
        return codec.decode(Event, event.encode(), max_bytes=max_bytes)
    except DecodeError as exc:
        # The codec names fields by record path ("Event.payload<issue>.digest"): say it as the JSON path.
        message = str(exc)
        if message.startswith("Event."):
            message = where + _KIND_IN_PATH.sub("", message.removeprefix("Event"), count=1)
        else:
            message = f"{where}: {message}"
        raise DecodeError(message) from None


def _payload(data: Any, where: str) -> Payload:
    if not isinstance(data, dict):
        raise DecodeError(f"{where}: expected an object, got {json_type(data)}")
    kind = data.get("kind")
    cls = PAYLOAD_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise DecodeError(f"{where}.kind: expected one of {', '.join(sorted(PAYLOAD_KINDS))}, got {kind!r}")
    fields = [f for f in dataclasses.fields(cls) if f.init]
    # A field with a default (added to a kind later, such as a member's DID) may be left out and means its default.
    required = [f.name for f in fields if f.default is dataclasses.MISSING]
    optional = tuple(f.name for f in fields if f.default is not dataclasses.MISSING)
    obj = _object(data, where, ("kind", *required), optional)
    member = obj.get("member")
    values = _fields_from_json(cls, obj, where, member if isinstance(member, str) else "")
    try:
        payload: Payload = cls(**values)
    except ValueError as exc:
        raise DecodeError(f"{where}: {exc}") from None
    return payload


def _signature(data: Any, where: str) -> Signature:
    obj = _object(data, where, ("member", "key_id", "sig"))
    values = _fields_from_json(Signature, obj, where, "")
    return Signature(**values)


# --- generic field conversion -------------------------------------------------------------------------------------


def _record_to_json(record: object, member: str) -> JSON:
    out: JSON = {}
    for f in dataclasses.fields(record):  # type: ignore[arg-type]
        if not f.init:
            continue
        value = getattr(record, f.name)
        if value is None and f.default is None:
            continue  # a field added later, absent: left out as in the canonical encoding
        form = _BYTES_FIELDS.get(f.name)
        if dataclasses.is_dataclass(value):
            # A nested record (consensus evidence) travels as base64 of its canonical encoding.
            out[f.name] = base64.b64encode(codec.encode(value)).decode()
        elif isinstance(value, bytes):
            out[f.name] = (form or HEX).write(value, member)
        elif isinstance(value, tuple):
            out[f.name] = [(form or HEX).write(v, member) for v in value]
        else:
            out[f.name] = value
    return out


def _fields_from_json(cls: type, obj: JSON, where: str, member: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.init and f.name in obj:
            values[f.name] = _value(obj[f.name], hints[f.name], f"{where}.{f.name}", f.name, member)
    return values


def _value(raw: Any, hint: Any, where: str, name: str, member: str) -> Any:
    tp = _strip(hint)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if raw is None else _value(raw, inner[0], where, name, member)
    if tp is int:
        return _int(raw, where)
    if tp is str:
        return _str(raw, where)
    if tp is bytes:
        return _bytes(raw, where, name, member)
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)[0]
        return tuple(_value(v, item, f"{where}[{i}]", name, member) for i, v in enumerate(_list(raw, where)))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        try:
            return codec.decode(tp, encoding.from_base64(_str(raw, where), where))
        except DecodeError as exc:
            raise DecodeError(f"{where}: expected base64 of a canonical {tp.__name__} ({exc})") from None
    raise TypeError(f"no JSON form for {tp!r}")  # a new field type: extend this function


def _strip(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _bytes(raw: Any, where: str, name: str, member: str) -> bytes:
    form = _BYTES_FIELDS.get(name, HEX)
    if not isinstance(raw, str):
        raise DecodeError(f"{where}: expected a {form.name} string, got {json_type(raw)}")
    return form.read(raw, member, where)


def _object(data: Any, where: str, fields: tuple[str, ...], optional: tuple[str, ...] = ()) -> JSON:
    if not isinstance(data, dict):
        raise DecodeError(f"{where}: expected an object, got {json_type(data)}")
    missing = [f for f in fields if f not in data]
    if missing:
        raise DecodeError(f"{where}: missing field {', '.join(missing)}")
    unknown = sorted(set(data) - set(fields) - set(optional))
    if unknown:
        raise DecodeError(f"{where}: unknown field {', '.join(unknown)}")
    return data


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise DecodeError(f"{where}: expected a list, got {json_type(raw)}")
    return raw


def _str(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise DecodeError(f"{where}: expected a string, got {json_type(raw)}")
    return raw


def _int(raw: Any, where: str) -> int:
    if type(raw) is not int:  # bool is an int subclass, and true is not a number
        raise DecodeError(f"{where}: expected an integer, got {json_type(raw)}")
    if not 0 <= raw <= _MAX_INT:
        raise DecodeError(f"{where}: {raw} is outside [0, {_MAX_INT}]")
    return raw


def json_type(value: Any) -> str:
    """How a JSON value's type reads in an error message ("an object", "a string", ...)."""
    if value is None:
        return "null"
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        float: "a fraction",
        int: "an integer",
    }
    return names.get(type(value), type(value).__name__)


# --- headers and records ------------------------------------------------------------------------------------------


def header_to_json(header: Header) -> JSON:
    """A block header's fields, Merkle and header hashes in base64 (as the checkpoint note spells them)."""
    b64 = BASE64.write
    return {
        "origin": header.origin,
        "height": header.height,
        "round": header.round,
        "time_ms": header.time_ms,
        "prev_hash": b64(header.prev_hash, ""),
        "proposer": header.proposer,
        "log_size": header.log_size,
        "log_root": b64(header.log_root, ""),
        "state_root": b64(header.state_root, ""),
        "event_count": header.event_count,
        "validators_hash": b64(header.validators_hash, ""),
        "next_validators_hash": b64(header.next_validators_hash, ""),
    }


def credential_to_json(record: CredentialRecord) -> JSON:
    """A credential's status record."""
    return {
        "issuer": record.issuer,
        "key_id": record.key_id.hex(),
        "issue_index": record.issue_index,
        "issued_height": record.issued_height,
        "issued_ms": record.issued_ms,
        "status": str(record.status),
        "expires_ms": record.expires_ms,
        "status_index": record.status_index,
        "status_height": record.status_height,
    }


def issuer_key_to_json(record: IssuerKeyRecord) -> JSON:
    """An issuer key with its verifier-key text and the heights that bound its validity."""
    return {
        "key_id": record.key_id.hex(),
        "vkey": PublicKey(record.member, record.public_key).vkey(),
        "valid_from": record.valid_from,
        "retired_at": record.retired_at,
        "compromised_since": record.compromised_since,
    }


def member_to_json(record: MemberRecord, keys: list[IssuerKeyRecord]) -> JSON:
    """A member institution with its node key and the issuer keys given (current and retired)."""
    return {
        "id": record.id,
        "name": record.name,
        "power": record.power,
        "active": record.active,
        "since": record.since,
        "node_key": PublicKey(record.id, record.node_key).vkey(),
        "issuer_keys": [issuer_key_to_json(k) for k in keys],
        "did": record.did,
    }
