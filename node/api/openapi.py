"""The OpenAPI 3.1 document of the node API, served at `/openapi.json`.

Built as a Python structure rather than kept as a file, so event payload schemas follow the event records
(`ledger.events`) field by field. A test holds the documented paths equal to the routes `node.api.app` registers and
checks real answers against the schemas here.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Annotated, Any

from credledger.ledger.bundle import FORMAT as BUNDLE_FORMAT
from credledger.ledger.codec import U63, Range
from credledger.ledger.eventjson import PAYLOAD_KINDS
from credledger.ledger.events import Reason
from credledger.ledger.limits import MAX_COMPONENTS, MAX_ISSUER_KEYS, MAX_ORIGIN, MAX_SIGNATURES, MEMBER_ID_PATTERN
from credledger.ledger.record import FORMAT as RECORD_FORMAT
from credledger.ledger.record import MAX_RECORD_CREDENTIALS
from credledger.ledger.tiles import MAX_PATH_LENGTH
from credledger.ledger.witness import SIZE_CONTENT_TYPE
from credledger.node.api.catalogue import DEFAULT_PAGE, MAX_PAGE
from credledger.node.api.catalogue import PROOF_FORMAT as ACHIEVEMENT_PROOF_FORMAT
from credledger.node.api.reads import MAX_ENTRIES

Schema = dict[str, Any]

HEX32: Schema = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "32 bytes in lowercase hex"}
HEX_KEY_ID: Schema = {"type": "string", "pattern": "^[0-9a-f]{8}$", "description": "C2SP key id, lowercase hex"}
BASE64: Schema = {"type": "string", "pattern": "^[A-Za-z0-9+/]*={0,2}$", "description": "standard base64"}
VKEY: Schema = {
    "type": "string",
    "pattern": r"^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]+={0,2}$",
    "description": "C2SP verifier key <name>+<hex key id>+<base64(0x01 || Ed25519 key)>, named by the member id",
}
COUNT: Schema = {"type": "integer", "minimum": 0}
TEXT: Schema = {"type": "string"}
NOTE: Schema = {"type": "string", "description": "C2SP signed note: a checkpoint with validator signature lines"}

#: JSON schemas of the bytes fields of payloads and signatures, by field name (see `ledger.eventjson`).
_BYTES_FIELD_SCHEMAS: dict[str, Schema] = {
    "digest": HEX32,
    "components": {"type": "array", "items": HEX32, "maxItems": MAX_COMPONENTS},
    "key_id": HEX_KEY_ID,
    "node_key": VKEY,
    "issuer_keys": {"type": "array", "items": VKEY, "minItems": 1, "maxItems": MAX_ISSUER_KEYS},
    "public_key": VKEY,
    "sig": {**BASE64, "description": "64-byte Ed25519 signature, standard base64"},
    "definition": {**BASE64, "description": "RFC 8785 canonical JSON of an achievement definition, standard base64"},
    "evidence": {
        **BASE64,
        "description": "canonical encoding (msgpack) of two conflicting signed consensus statements, standard base64",
    },
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Schema], *, optional: tuple[str, ...] = (), closed: bool = True) -> Schema:
    """An object schema: every property required unless listed in `optional`."""
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def array(items: Schema, **bounds: int) -> Schema:
    return {"type": "array", "items": items, **bounds}


def _field_schema(name: str, hint: Any) -> Schema:
    if name in _BYTES_FIELD_SCHEMAS:
        return _BYTES_FIELD_SCHEMAS[name]
    tp, *extras = typing.get_args(hint) if typing.get_origin(hint) is Annotated else (hint,)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = next(a for a in typing.get_args(tp) if a is not type(None))
        if (typing.get_args(inner)[0] if typing.get_origin(inner) is Annotated else inner) is str:
            return {"type": ["string", "null"]}
        return {"type": ["integer", "null"], "minimum": 0}
    if tp is int:
        bound = next((e for e in extras if isinstance(e, Range)), U63)
        return {"type": "integer", "minimum": bound.min, "maximum": bound.max}
    if tp is str:
        return TEXT
    raise TypeError(f"payload field {name}: no schema for {tp!r}")  # a new field type: extend this function


def _catalogue_schemas() -> dict[str, Schema]:
    achievement = obj(
        {
            "member": TEXT,
            "id": TEXT,
            "version": COUNT,
            "published_height": COUNT,
            "published_ms": COUNT,
            "published_index": COUNT,
            "retired_height": {"type": ["integer", "null"], "minimum": 0},
            "definition": {"type": "object", "description": "the Open Badges 3.0-shaped definition, as published"},
        }
    )
    return {
        "Record": obj(
            {
                "format": {"const": RECORD_FORMAT},
                "origin": TEXT,
                "genesis": HEX32,
                "checkpoint": NOTE,
                "header": BASE64,
                "validators": array(obj({"header": BASE64, "certificate": NOTE, "next": BASE64})),
                "credentials": array(
                    obj(
                        {
                            "digest": HEX32,
                            "credential": ref("StateEntry"),
                            "events": array(obj({"index": COUNT, "event": BASE64, "proof": array(BASE64)}), maxItems=2),
                            "issuer": nullable(obj({"member": ref("StateEntry"), "key": ref("StateEntry")})),
                            "achievement": nullable(ref("StateEntry")),
                        }
                    ),
                    minItems=1,
                    maxItems=MAX_RECORD_CREDENTIALS,
                ),
            }
        ),
        "Achievement": achievement,
        "Pathways": obj(
            {
                "height": COUNT,
                "as_of_ms": COUNT,
                "credentials": array(
                    obj(
                        {
                            "digest": HEX32,
                            "status": {"enum": ["valid", "revoked", "suspended", "expired", "unknown"]},
                            "issuer": nullable(TEXT),
                            "issued_ms": {"type": ["integer", "null"], "minimum": 0},
                            "achievement": nullable(obj({"member": TEXT, "id": TEXT, "version": COUNT})),
                        }
                    )
                ),
                "pathways": array(
                    obj(
                        {
                            "achievement": {"type": "string", "description": "MEMBER/ID"},
                            "name": TEXT,
                            "complete": {"type": "boolean"},
                            "missing": array(TEXT),
                        }
                    )
                ),
            }
        ),
        "Recognitions": obj(
            {
                "height": COUNT,
                "recognitions": array(
                    obj(
                        {
                            "member": TEXT,
                            "id": TEXT,
                            "published_height": COUNT,
                            "withdrawn_height": {"type": ["integer", "null"], "minimum": 0},
                            "definition": {"type": "object", "description": "the recognition, as published"},
                        }
                    )
                ),
            }
        ),
        "AchievementPage": obj(
            {
                "height": COUNT,
                "achievements": array(ref("Achievement"), maxItems=MAX_PAGE),
                "next_after": nullable(TEXT),
            }
        ),
        "AchievementProof": obj(
            {
                "height": COUNT,
                "achievement": ref("Achievement"),
                "versions": array(ref("Achievement")),
                "proof": obj(
                    {
                        "format": {"const": ACHIEVEMENT_PROOF_FORMAT},
                        "origin": TEXT,
                        "genesis": HEX32,
                        "checkpoint": NOTE,
                        "header": BASE64,
                        "validators": array(obj({"header": BASE64, "certificate": NOTE, "next": BASE64})),
                        "current": ref("StateEntry"),
                        "versions": array(ref("StateEntry")),
                    }
                ),
            }
        ),
    }


def _strip(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _payload_schemas() -> dict[str, Schema]:
    schemas = {}
    for tag, cls in PAYLOAD_KINDS.items():
        hints = typing.get_type_hints(cls, include_extras=True)
        properties: dict[str, Schema] = {"kind": {"const": tag}}
        properties.update({f.name: _field_schema(f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.init})
        defaulted = tuple(f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING)
        schema = obj(properties, optional=defaulted)
        schema["title"] = tag
        schema["description"] = (cls.__doc__ or "").strip()
        schemas["Payload_" + tag.replace(".", "_")] = schema
    return schemas


def _schemas() -> dict[str, Schema]:
    payloads = _payload_schemas()
    state_entry = obj(
        {
            "value": nullable(BASE64),
            "proof": obj(
                {"leaf": nullable(obj({"key": BASE64, "value_hash": BASE64})), "siblings": array(BASE64, maxItems=256)}
            ),
        }
    )
    issuer_key = obj(
        {
            "key_id": HEX_KEY_ID,
            "vkey": VKEY,
            "valid_from": COUNT,
            "retired_at": {"type": ["integer", "null"], "minimum": 0},
            "compromised_since": {"type": ["integer", "null"], "minimum": 0},
        }
    )
    return {
        **payloads,
        "Problem": {
            **obj(
                {
                    "type": {"type": "string", "description": "urn:credledger:problem:<code>"},
                    "title": TEXT,
                    "status": {"type": "integer"},
                    "detail": TEXT,
                    "rule": {"type": "string", "description": "the ledger rule an event broke (DESIGN §3)"},
                    "id": HEX32,
                    "ids": array(HEX32),
                    "pending": array(HEX32),
                    "results": array(ref("SubmitResult")),
                    "forwarded_to": {"type": "string", "description": "the validator a replica forwarded to"},
                    "tried": array(TEXT),
                    "oldest_height": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "the oldest height whose state the node keeps (410 state-pruned)",
                    },
                },
                optional=("rule", "id", "ids", "pending", "results", "forwarded_to", "tried", "oldest_height"),
                closed=False,
            ),
            "description": "RFC 9457 problem details; `rule`, `id`, `ids`, `pending`, `results`, `forwarded_to` "
            "(a replica's answer from a validator) and `tried` (validators a replica could not reach) where relevant",
        },
        "Payload": {"oneOf": [ref(name) for name in payloads], "description": "What an event does, by `kind`"},
        "Signature": obj({"member": TEXT, "key_id": HEX_KEY_ID, "sig": _BYTES_FIELD_SCHEMAS["sig"]}),
        "Event": obj(
            {
                "origin": TEXT,
                "time_ms": COUNT,
                "payload": ref("Payload"),
                "signatures": array(ref("Signature"), minItems=1, maxItems=MAX_SIGNATURES),
            }
        ),
        "EncodedEvent": obj({"encoded": {**BASE64, "description": "the event's canonical msgpack encoding"}}),
        "EventInput": {"oneOf": [ref("EncodedEvent"), ref("Event")]},
        "Submission": {
            "oneOf": [
                obj({"event": ref("EventInput")}),
                obj({"events": array(ref("EventInput"), minItems=1)}),
            ]
        },
        "SubmitResult": obj(
            {
                "id": HEX32,
                "status": {"enum": ["pending", "committed", "refused"]},
                "index": COUNT,
                "height": COUNT,
                "problem": ref("Problem"),
            },
            optional=("index", "height", "problem"),
        ),
        "SubmitResponse": obj(
            {
                "results": array(ref("SubmitResult")),
                "checkpoint": {**NOTE, "description": "with ?wait=commit: the note of the block committing the last"},
                "forwarded_to": {
                    "type": "string",
                    "description": "from a read replica: the validator that took the events and gave this answer",
                },
            },
            optional=("checkpoint", "forwarded_to"),
        ),
        "EventInfo": obj(
            {
                "id": HEX32,
                "status": {"enum": ["pending", "committed"]},
                "index": {"type": ["integer", "null"], "minimum": 0},
                "height": {"type": ["integer", "null"], "minimum": 0},
                "leaf_hash": BASE64,
                "event": ref("Event"),
                "encoded": BASE64,
            }
        ),
        "StateEntry": state_entry,
        "Bundle": obj(
            {
                "format": {"const": BUNDLE_FORMAT},
                "origin": TEXT,
                "genesis": HEX32,
                "digest": HEX32,
                "checkpoint": NOTE,
                "header": BASE64,
                "validators": array(obj({"header": BASE64, "certificate": NOTE, "next": BASE64})),
                "credential": ref("StateEntry"),
                "events": array(obj({"index": COUNT, "event": BASE64, "proof": array(BASE64)}), maxItems=2),
                "issuer": nullable(obj({"member": ref("StateEntry"), "key": ref("StateEntry")})),
            }
        ),
        "InclusionProof": obj(
            {"index": COUNT, "size": COUNT, "leaf_hash": BASE64, "root": BASE64, "proof": array(BASE64)}
        ),
        "ConsistencyProof": obj(
            {"from": COUNT, "to": COUNT, "from_root": BASE64, "to_root": BASE64, "proof": array(BASE64)}
        ),
        "Header": obj(
            {
                "origin": TEXT,
                "height": COUNT,
                "round": COUNT,
                "time_ms": COUNT,
                "prev_hash": BASE64,
                "proposer": TEXT,
                "log_size": COUNT,
                "log_root": BASE64,
                "state_root": BASE64,
                "event_count": COUNT,
                "validators_hash": BASE64,
                "next_validators_hash": BASE64,
            }
        ),
        "Block": obj(
            {
                "height": COUNT,
                "hash": BASE64,
                "header": ref("Header"),
                "header_encoded": BASE64,
                "certificate": NOTE,
                "events": array(BASE64),
            }
        ),
        "Entries": obj(
            {
                "start": COUNT,
                "end": COUNT,
                "size": COUNT,
                "entries": array(obj({"index": COUNT, "id": HEX32, "encoded": BASE64}), maxItems=MAX_ENTRIES),
            }
        ),
        "IssuerKey": issuer_key,
        "Member": obj(
            {
                "id": TEXT,
                "name": TEXT,
                "power": COUNT,
                "active": {"type": "boolean"},
                "since": COUNT,
                "node_key": VKEY,
                "issuer_keys": array(ref("IssuerKey")),
                "did": TEXT,
            }
        ),
        "Members": obj({"height": COUNT, "members": array(ref("Member"))}),
        "CheckpointSummary": obj(
            {
                "height": COUNT,
                "round": COUNT,
                "size": COUNT,
                "root": BASE64,
                "header_hash": BASE64,
                "time_ms": COUNT,
                "signers": array(TEXT),
            }
        ),
        "Status": obj(
            {
                "version": TEXT,
                "origin": TEXT,
                "genesis": HEX32,
                "member": TEXT,
                "role": {"enum": ["validator", "replica"]},
                "height": COUNT,
                "log": obj({"size": COUNT, "root": BASE64}),
                "checkpoint": nullable(ref("CheckpointSummary")),
                "mempool": obj({"events": COUNT, "bytes": COUNT}),
                "round": {"type": ["integer", "null"], "minimum": 0, "description": "consensus round, if running"},
                "peers": {"type": ["integer", "null"], "minimum": 0, "description": "connected peers, if any"},
                "syncing": {"type": "boolean", "description": "catching up with the network"},
                "commit": obj(
                    {
                        "ok": {"type": "boolean", "description": "the network commits, as far as this node sees"},
                        "reason": {
                            "type": ["string", "null"],
                            "description": "why it does not: 'catch-up failing: ...', 'behind: catching up from "
                            "height H, peers' height K', or 'no block for N s; height H round R: proposal ..., "
                            "prevotes for X of Y power, ... need more than 2/3 (Q); peers unreachable: ...'",
                        },
                    }
                ),
                "sync": obj(
                    {
                        "peer_height": {
                            "type": ["integer", "null"],
                            "minimum": 0,
                            "description": "highest height a reachable peer reported",
                        },
                        "failure": {
                            "type": ["string", "null"],
                            "description": "why catching up fails (the node serves stale answers meanwhile)",
                        },
                    }
                ),
                "limits": obj(
                    {
                        "batch_events": {"type": "integer", "minimum": 1, "description": "most events per POST"},
                        "body_bytes": {"type": "integer", "minimum": 1, "description": "largest request body"},
                        "block_events": {"type": "integer", "minimum": 1, "description": "most events per block"},
                        "commit_wait_ms": {"type": "integer", "minimum": 0, "description": "longest ?wait=commit"},
                    }
                ),
            }
        ),
        "Health": obj({"status": {"const": "ok"}}),
        "Ready": obj({"status": {"const": "ready"}, "height": COUNT}),
    }


# --- paths --------------------------------------------------------------------------------------------------------


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> Schema:
    return {"description": description, "content": {"application/problem+json": {"schema": ref("Problem")}}}


def _param(name: str, where: str, description: str, schema: Schema, *, required: bool = True) -> Schema:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


def _get(summary: str, responses: dict[str, Schema], parameters: list[Schema] | None = None) -> Schema:
    operation: Schema = {"summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


_BAD = _problem("A malformed parameter")
_NOT_READY = _problem("No block has been committed yet")


def _paths() -> dict[str, Schema]:
    reasons = ", ".join(f"{r.value} {r.name.lower().replace('_', '-')}" for r in Reason)
    submit = {
        "summary": "Submit one event or a batch",
        "description": (
            "The whole body is parsed first (anything malformed refuses the request and admits nothing); then each "
            "event is admitted in order. 202 when all were admitted. A single refused event gets its own problem "
            "(with `rule`); a batch with any refusal gets a 422 `batch-refused` problem whose `results` say per "
            "event 'pending' or 'refused' -- the admitted ones stay admitted. With `wait=commit` the answer waits "
            "for all events to commit (200, with index, height and the checkpoint note), or gives up after the "
            f"node's commit wait with a 504 problem listing the ids. Revoke and suspend reason codes: {reasons}."
        ),
        "parameters": [
            _param(
                "wait", "query", "`commit`: answer once every event is committed", {"enum": ["commit"]}, required=False
            )
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ref("Submission")},
                "application/msgpack": {
                    "schema": {"description": "a bin holding one canonical event encoding, or an array of bins"}
                },
            },
        },
        "responses": {
            "200": _json(ref("SubmitResponse"), "With wait=commit: every event is committed"),
            "202": _json(ref("SubmitResponse"), "Every event was admitted and is pending"),
            "400": _problem("Malformed body: not JSON or msgpack, wrong field types, non-canonical encoding"),
            "403": _problem("A single event signed by someone not allowed to make it"),
            "408": _problem("The body did not arrive within the node's body deadline (`body_timeout_ms`)"),
            "409": _problem("A single event already pending, or dropped before it committed"),
            "413": _problem("Body or batch too large"),
            "415": _problem("Content-Type is neither application/json nor application/msgpack"),
            "422": _problem("A single event breaks a ledger rule, or a batch had refusals (see `results`)"),
            "502": _problem("On a read replica: no validator it follows took the events (`tried` names them)"),
            "503": _problem(
                "The mempool is full, too many requests wait for commits, the store's reader slots run low, or a "
                "read replica knows no validator"
            ),
            "504": _problem("With wait=commit: not committed in time (the events stay pending)"),
        },
    }
    hex_id = _param("id", "path", "event id: SHA-256 of the domain and the signed bytes", HEX32)
    return {
        "/v1/events": {"post": submit},
        "/v1/record": {
            "post": {
                "summary": "A learner's record: many credentials' proofs under one certified checkpoint",
                "description": "Every credential named in the body, each with what its credledger-proof/v1 bundle "
                "holds and the state proof of the achievement version its issue names, sharing one checkpoint, "
                "header and validator-set chain. Verify it offline with `credledger verify record.json`.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": obj({"digests": array(HEX32, minItems=1, maxItems=MAX_RECORD_CREDENTIALS)})
                        }
                    },
                },
                "responses": {
                    "200": _json(ref("Record"), "The record"),
                    "400": _BAD,
                    "413": _problem("The body is too large"),
                    "503": _NOT_READY,
                },
            }
        },
        "/v1/pathway": {
            "post": {
                "summary": "Which published awards a learner's credentials complete, and what the others miss",
                "description": "Name the credentials by digests, by a credledger-record/v1, or by their documents or "
                "credledger-proof/v1 bundles (documents must name one subject); `toward` (MEMBER/ID) keeps one "
                "award. Evaluated over this node's state at its latest height: advice, not proof.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "digests": array(HEX32, minItems=1, maxItems=MAX_RECORD_CREDENTIALS),
                                    "record": ref("Record"),
                                    "credentials": array(
                                        {"type": "object"}, minItems=1, maxItems=MAX_RECORD_CREDENTIALS
                                    ),
                                    "toward": {"type": "string", "description": "MEMBER/ID: only this award"},
                                },
                                "oneOf": [{"required": [form]} for form in ("digests", "record", "credentials")],
                                "additionalProperties": False,
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(ref("Pathways"), "Each credential's standing, then the awards, complete first"),
                    "400": _BAD,
                    "404": _problem("toward names no award rule in force"),
                    "413": _problem("The body is too large (send digests rather than a large record)"),
                    "503": _NOT_READY,
                },
            }
        },
        "/v1/events/{id}": _get(
            "A committed or pending event",
            {
                "200": _json(ref("EventInfo"), "The event"),
                "400": _BAD,
                "404": _problem("No such event committed or pending"),
            },
            [hex_id],
        ),
        "/v1/credentials/{digest}": _get(
            "The credledger-proof/v1 bundle for a credential (it proves absence too)",
            {
                "200": _json(ref("Bundle"), "A self-contained proof bundle"),
                "400": _BAD,
                "404": _problem("No block at that height"),
                "410": _problem(
                    "The node no longer keeps the state as of that height (`[store] state_history_blocks`); "
                    "`oldest_height` names the oldest it keeps"
                ),
                "503": _NOT_READY,
            },
            [
                _param("digest", "path", "credential digest (SHA-256 of its JCS form or bytes)", HEX32),
                _param("height", "query", "the block to prove as of (default: the latest)", COUNT, required=False),
            ],
        ),
        "/v1/checkpoint": _get(
            "The latest commit certificate",
            {
                "200": {"description": "A C2SP checkpoint note", "content": {"text/plain": {"schema": NOTE}}},
                "503": _NOT_READY,
            },
        ),
        "/v1/proof/inclusion": _get(
            "RFC 9162 inclusion proof of a log entry",
            {"200": _json(ref("InclusionProof"), "The proof and the root it leads to"), "400": _BAD},
            [
                _param("index", "query", "log index of the entry", COUNT),
                _param("size", "query", "tree size (default: the whole log)", COUNT, required=False),
            ],
        ),
        "/v1/proof/consistency": _get(
            "RFC 9162 consistency proof between two tree sizes",
            {"200": _json(ref("ConsistencyProof"), "The proof and both roots"), "400": _BAD},
            [
                _param("from", "query", "the smaller tree size (at least 1)", COUNT),
                _param("to", "query", "the larger tree size (default: the whole log)", COUNT, required=False),
            ],
        ),
        "/v1/blocks/{height}": _get(
            "A certified block",
            {
                "200": {
                    "description": "The block, its header and certificate",
                    "content": {
                        "application/json": {"schema": ref("Block")},
                        "application/msgpack": {
                            "schema": {"description": "canonical encoding of ledger.block.CertifiedBlock"}
                        },
                    },
                },
                "400": _BAD,
                "404": _problem("No block at that height"),
            },
            [_param("height", "path", "block height (from 1)", COUNT)],
        ),
        "/v1/entries": _get(
            f"Log entries [start, end), at most {MAX_ENTRIES}",
            {"200": _json(ref("Entries"), "The encoded events"), "400": _BAD},
            [
                _param("start", "query", "first index (default 0)", COUNT, required=False),
                _param("end", "query", f"end index, exclusive (default: up to {MAX_ENTRIES})", COUNT, required=False),
            ],
        ),
        "/v1/members": _get(
            "Every member, active or removed, with its node key and issuer keys",
            {"200": _json(ref("Members"), "The members as of the latest block")},
        ),
        "/v1/achievements": _get(
            "The catalogue: the current version of every achievement matching the filters, by member and id",
            {"200": _json(ref("AchievementPage"), "One page of achievements"), "400": _BAD},
            [
                _param("member", "query", "only this member's achievements", TEXT, required=False),
                _param(
                    "type",
                    "query",
                    "only this achievementType (MicroCredential, Certificate, ...)",
                    TEXT,
                    required=False,
                ),
                _param("skill", "query", "an alignment's targetUrl, or words of its targetName", TEXT, required=False),
                _param("level", "query", "only this level value", COUNT, required=False),
                _param("framework", "query", "only levels in this framework (EQF, AQF, ...)", TEXT, required=False),
                _param("text", "query", "words in the id, name, description or field of study", TEXT, required=False),
                _param("after", "query", "MEMBER/ID: the next_after of the previous page", TEXT, required=False),
                _param("limit", "query", f"page size, 1..{MAX_PAGE} (default {DEFAULT_PAGE})", COUNT, required=False),
            ],
        ),
        "/v1/achievements/{member}/{id}": _get(
            "One achievement: its current version, every version, and a state proof of them all",
            {
                "200": _json(ref("AchievementProof"), "The achievement and its proof"),
                "404": _problem("The member published no achievement with this id"),
                "503": _NOT_READY,
            },
            [
                _param("member", "path", "the publishing member's id", TEXT),
                _param("id", "path", "the achievement id", TEXT),
            ],
        ),
        "/v1/recognitions": _get(
            "The recognitions one member holds in force",
            {"200": _json(ref("Recognitions"), "The recognitions, by id"), "400": _BAD},
            [_param("member", "query", "the recognising member's id", TEXT)],
        ),
        "/v1/status": _get("This node and its chain", {"200": _json(ref("Status"), "The status")}),
        "/healthz": _get("Liveness", {"200": _json(ref("Health"), "The process is alive")}),
        "/readyz": _get(
            "Readiness",
            {
                "200": _json(ref("Ready"), "The store is open and the node keeps up with its peers"),
                "503": _problem("The store is not usable, or catching up with the peers fails"),
            },
        ),
        "/metrics": _get(
            "Prometheus metrics",
            {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": TEXT}}}},
        ),
        "/checkpoint": _get(
            "The latest commit certificate, where C2SP tlog-tiles clients look for it (as /v1/checkpoint)",
            {
                "200": {"description": "A C2SP checkpoint note", "content": {"text/plain": {"schema": NOTE}}},
                "503": _NOT_READY,
            },
        ),
        "/tile/{tile}": _get(
            "A C2SP tlog-tiles tile or entry bundle of the log",
            {
                "200": {
                    "description": (
                        "A tile (32-byte hashes of tree level 8·L, concatenated) or an entry bundle (each event's "
                        "canonical bytes after a big-endian uint16 length). Full ones are cached as immutable."
                    ),
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                },
                "400": _problem("A malformed tile path"),
                "404": _problem("A tile the log does not have (yet)"),
            },
            [
                _param(
                    "tile",
                    "path",
                    "the rest of the tile path: <L>/<N>[.p/<W>] or entries/<N>[.p/<W>], N as 3-digit elements, all "
                    "but the last prefixed with x (tlog-tiles §Merkle Tree)",
                    {"type": "string", "maxLength": MAX_PATH_LENGTH},
                )
            ],
        ),
        "/add-checkpoint": {
            "post": {
                "summary": "C2SP tlog-witness: cosign a checkpoint of a log this node witnesses",
                "description": (
                    "The body is `old <size>`, up to 63 base64 consistency-proof lines, a blank line and the signed "
                    "checkpoint note. The checkpoint is cosigned (tlog-cosignature v1) only if its log's keys sign "
                    "it and it is consistent with the last checkpoint this witness cosigned for that log, which is "
                    "kept durably: the witness never cosigns two checkpoints of one size, nor goes back."
                ),
                "requestBody": {"required": True, "content": {"text/plain": {"schema": TEXT}}},
                "responses": {
                    "200": {
                        "description": "The witness's cosignature lines",
                        "content": {"text/plain": {"schema": TEXT}},
                    },
                    "400": _problem("A malformed body, or an old size larger than the checkpoint's"),
                    "403": _problem("The checkpoint lacks the log's quorum of valid signatures"),
                    "404": _problem("A log this node does not witness, or a node that witnesses none"),
                    "408": _problem("The body did not arrive in time"),
                    "409": {
                        "description": (
                            "The old size is not the one the witness holds: its size, to resubmit from; or a "
                            "checkpoint of the size it holds with another root (a fork): a problem naming both roots"
                        ),
                        "content": {
                            SIZE_CONTENT_TYPE: {"schema": {"type": "string", "pattern": "^[0-9]+\\n$"}},
                            "application/problem+json": {"schema": ref("Problem")},
                        },
                    },
                    "413": _problem("A body larger than the add-checkpoint limit"),
                    "422": _problem("The consistency proof does not verify against the witness's record"),
                },
            }
        },
        "/witnessed-checkpoint": _get(
            "The checkpoint this witness last cosigned for a log it witnesses",
            {
                "200": {
                    "description": (
                        "The checkpoint note as cosigned: the log's valid signatures and this witness's "
                        "tlog-cosignature v1 lines"
                    ),
                    "content": {"text/plain": {"schema": NOTE}},
                },
                "400": _problem("No origin, or one that is not a printable line"),
                "404": _problem("A log this node does not witness, nothing cosigned yet, or no [witness] config"),
            },
            [_param("origin", "query", "the log's origin line", {"type": "string", "maxLength": MAX_ORIGIN})],
        ),
        "/openapi.json": _get(
            "This document",
            {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
        ),
    }


#: VC-API ``options`` this node honours; any other is a 400 problem (``mandatoryPointers``: no selective disclosure).
_ISSUE_OPTIONS = obj(
    {"credentialId": {"type": "string", "minLength": 1, "maxLength": 2048}}, optional=("credentialId",)
)
_VERIFY_OPTIONS = obj(
    {
        "checks": array({"enum": ["registry", "proof", "status"]}, minItems=1),
        "challenge": {"type": "string", "minLength": 1, "maxLength": 2048},
        "domain": {"type": "string", "minLength": 1, "maxLength": 2048},
    },
    optional=("checks", "challenge", "domain"),
)


def _post(summary: str, body: Schema, responses: dict[str, Schema], *, auth: bool = False) -> Schema:
    answers = {**responses, "400": _problem("A malformed body, or a credential that cannot be issued or verified")}
    if auth:
        answers["401"] = _problem("No Authorization: Bearer header, or not the node's token")
        answers["403"] = _problem("The node has no VC-API token or holds no issuer key")
        answers["422"] = _problem("The ledger refused the event")
    operation = {"summary": summary, "requestBody": _json(body, "The request"), "responses": answers}
    return {"post": operation}


def _standard_paths() -> dict[str, Schema]:
    """What standard VC verifiers fetch (DESIGN §13): DID documents and the known-issuer registry."""
    cached = "With ETag and Cache-Control; If-None-Match with the current ETag answers 304 without a body"
    did_document = _json(ref("DidDocument"), f"A DID Core 1.0 document. {cached}")
    member = _param("member", "path", "member id", {"type": "string", "pattern": MEMBER_ID_PATTERN.pattern})
    return {
        "/v1/members/{member}/did.json": _get(
            "A member's DID document: every issuer key it ever registered except those marked compromised",
            {
                "200": did_document,
                "304": {"description": "Not modified"},
                "400": _BAD,
                "404": _problem("Not a member"),
            },
            [member],
        ),
        "/.well-known/did.json": _get(
            "This node's institution's DID document (did:web of the host serving it)",
            {"200": did_document, "304": {"description": "Not modified"}},
        ),
        "/v1/members/{member}/status/{list}/{purpose}": _get(
            "A member's latest committed, signed BitstringStatusListCredential, byte-identical on every node",
            {
                "200": _json(
                    {"type": "object", "description": "W3C Bitstring Status List v1.0 credential (VC 2.0)"},
                    f"The list credential; the Credledger-Height header names the block that certified it. {cached}",
                ),
                "304": {"description": "Not modified"},
                "400": _BAD,
                "404": _problem("The member has published no such list"),
            },
            [
                member,
                _param("list", "path", "status list number", COUNT),
                _param("purpose", "path", "status purpose", {"enum": ["revocation", "suspension"]}),
            ],
        ),
        "/v1/members/{member}/status": _get(
            "How many entries of each of a member's status lists are taken",
            {
                "200": _json(
                    obj(
                        {
                            "member": TEXT,
                            "height": COUNT,
                            "entries": COUNT,
                            "lists": array(obj({"list": COUNT, "used": COUNT})),
                        }
                    ),
                    "The lists, from 0",
                ),
                "400": _BAD,
                "404": _problem("Not a member"),
            },
            [member],
        ),
        "/credentials/issue": _post(
            "VC-API: sign an unsigned credential for this node's member and register it (bearer token)",
            obj({"credential": {"type": "object"}, "options": _ISSUE_OPTIONS}, optional=("options",), closed=False),
            {"201": _json(obj({"verifiableCredential": {"type": "object"}}), "The signed credential")},
            auth=True,
        ),
        "/credentials/status": _post(
            "VC-API: revoke, suspend or reinstate a credential this node issued, by its id (bearer token)",
            obj({"credentialId": TEXT, "credentialStatus": array({"type": "object"})}, closed=False),
            {"200": _json(obj({"credentialId": TEXT, "change": TEXT, "event": HEX32}), "The status event admitted")},
            auth=True,
        ),
        "/credentials/verify": _post(
            "VC-API: verify a signed credential's proof, status and issuer membership",
            obj(
                {"verifiableCredential": {"type": "object"}, "options": _VERIFY_OPTIONS},
                optional=("options",),
                closed=False,
            ),
            {
                "200": _json(
                    obj(
                        {
                            "verified": {"type": "boolean"},
                            "checks": array(TEXT),
                            "warnings": array(TEXT),
                            "errors": array(obj({"check": TEXT, "detail": TEXT})),
                        }
                    ),
                    "The verification report, each check named",
                )
            },
        ),
        "/v1/registry.json": _get(
            "The active members as a known-issuer registry (DCC 'dcc-legacy' format: DID -> name, url)",
            {"200": _json(ref("IssuerRegistry"), f"The registry. {cached}"), "304": {"description": "Not modified"}},
        ),
    }


def _standard_schemas() -> dict[str, Schema]:
    method = obj({"id": TEXT, "type": {"const": "Multikey"}, "controller": TEXT, "publicKeyMultibase": TEXT})
    return {
        "DidDocument": obj(
            {
                "@context": array(TEXT),
                "id": TEXT,
                "verificationMethod": array(method),
                "assertionMethod": array(TEXT),
            }
        ),
        "IssuerRegistry": obj(
            {
                "meta": obj({"type": {"const": "dcc-legacy"}, "name": TEXT}),
                "registry": {
                    "type": "object",
                    "additionalProperties": obj({"name": TEXT, "url": TEXT, "id": TEXT}, optional=("url",)),
                },
            }
        ),
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once; callers must not modify it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "credledger node API",
            "version": "1",
            "description": (
                "A credledger node: submit credential events, fetch offline-verifiable proof bundles, follow the "
                "log. Digests and ids are lowercase hex; Merkle hashes and encodings standard base64. Every error "
                "is an RFC 9457 application/problem+json document. Unknown routes answer 404, wrong methods 405, "
                "and any route may answer 500 with a generic problem."
            ),
        },
        "paths": {**_paths(), **_standard_paths()},
        "components": {"schemas": {**_schemas(), **_standard_schemas(), **_catalogue_schemas()}},
    }
