"""The OpenAPI 3.1 document of the node API, served at `/openapi.json`.

Built as a Python structure rather than kept as a file, so event payload schemas follow the event records
(`ledger.events`) field by field. A test holds the documented paths equal to the routes `node.api.app` registers and
checks real answers against the schemas here. The parts that belong to one area live beside it:
`openapi_standard` (W3C credentials), `openapi_catalogue` (achievements, records, pathways), `openapi_transparency`
(tiles and witnesses), all built from `openapi_parts`.
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
from credledger.ledger.limits import MAX_COMPONENTS, MAX_ISSUER_KEYS, MAX_SIGNATURES
from credledger.node.api.openapi_catalogue import catalogue_paths, catalogue_schemas
from credledger.node.api.openapi_parts import (
    BAD_PARAMETER,
    BASE64,
    COUNT,
    HEX32,
    HEX_KEY_ID,
    NOT_READY,
    NOTE,
    TEXT,
    VKEY,
    Schema,
    array,
    get_operation,
    json_content,
    nullable,
    obj,
    param,
    problem,
    ref,
)
from credledger.node.api.openapi_standard import standard_paths, standard_schemas
from credledger.node.api.openapi_transparency import transparency_paths
from credledger.node.api.reads import MAX_ENTRIES

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
            param(
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
            "200": json_content(ref("SubmitResponse"), "With wait=commit: every event is committed"),
            "202": json_content(ref("SubmitResponse"), "Every event was admitted and is pending"),
            "400": problem("Malformed body: not JSON or msgpack, wrong field types, non-canonical encoding"),
            "403": problem("A single event signed by someone not allowed to make it"),
            "408": problem("The body did not arrive within the node's body deadline (`body_timeout_ms`)"),
            "409": problem("A single event already pending, or dropped before it committed"),
            "413": problem("Body or batch too large"),
            "415": problem("Content-Type is neither application/json nor application/msgpack"),
            "422": problem("A single event breaks a ledger rule, or a batch had refusals (see `results`)"),
            "502": problem("On a read replica: no validator it follows took the events (`tried` names them)"),
            "503": problem(
                "The mempool is full, too many requests wait for commits, the store's reader slots run low, or a "
                "read replica knows no validator"
            ),
            "504": problem("With wait=commit: not committed in time (the events stay pending)"),
        },
    }
    hex_id = param("id", "path", "event id: SHA-256 of the domain and the signed bytes", HEX32)
    return {
        "/v1/events": {"post": submit},
        "/v1/events/{id}": get_operation(
            "A committed or pending event",
            {
                "200": json_content(ref("EventInfo"), "The event"),
                "400": BAD_PARAMETER,
                "404": problem("No such event committed or pending"),
            },
            [hex_id],
        ),
        "/v1/credentials/{digest}": get_operation(
            "The credledger-proof/v1 bundle for a credential (it proves absence too)",
            {
                "200": json_content(ref("Bundle"), "A self-contained proof bundle"),
                "400": BAD_PARAMETER,
                "404": problem("No block at that height"),
                "410": problem(
                    "The node no longer keeps the state as of that height (`[store] state_history_blocks`); "
                    "`oldest_height` names the oldest it keeps"
                ),
                "503": NOT_READY,
            },
            [
                param("digest", "path", "credential digest (SHA-256 of its JCS form or bytes)", HEX32),
                param("height", "query", "the block to prove as of (default: the latest)", COUNT, required=False),
            ],
        ),
        "/v1/checkpoint": get_operation(
            "The latest commit certificate",
            {
                "200": {"description": "A C2SP checkpoint note", "content": {"text/plain": {"schema": NOTE}}},
                "503": NOT_READY,
            },
        ),
        "/v1/proof/inclusion": get_operation(
            "RFC 9162 inclusion proof of a log entry",
            {"200": json_content(ref("InclusionProof"), "The proof and the root it leads to"), "400": BAD_PARAMETER},
            [
                param("index", "query", "log index of the entry", COUNT),
                param("size", "query", "tree size (default: the whole log)", COUNT, required=False),
            ],
        ),
        "/v1/proof/consistency": get_operation(
            "RFC 9162 consistency proof between two tree sizes",
            {"200": json_content(ref("ConsistencyProof"), "The proof and both roots"), "400": BAD_PARAMETER},
            [
                param("from", "query", "the smaller tree size (at least 1)", COUNT),
                param("to", "query", "the larger tree size (default: the whole log)", COUNT, required=False),
            ],
        ),
        "/v1/blocks/{height}": get_operation(
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
                "400": BAD_PARAMETER,
                "404": problem("No block at that height"),
            },
            [param("height", "path", "block height (from 1)", COUNT)],
        ),
        "/v1/entries": get_operation(
            f"Log entries [start, end), at most {MAX_ENTRIES}",
            {"200": json_content(ref("Entries"), "The encoded events"), "400": BAD_PARAMETER},
            [
                param("start", "query", "first index (default 0)", COUNT, required=False),
                param("end", "query", f"end index, exclusive (default: up to {MAX_ENTRIES})", COUNT, required=False),
            ],
        ),
        "/v1/members": get_operation(
            "Every member, active or removed, with its node key and issuer keys",
            {"200": json_content(ref("Members"), "The members as of the latest block")},
        ),
        "/v1/status": get_operation("This node and its chain", {"200": json_content(ref("Status"), "The status")}),
        "/healthz": get_operation("Liveness", {"200": json_content(ref("Health"), "The process is alive")}),
        "/readyz": get_operation(
            "Readiness",
            {
                "200": json_content(ref("Ready"), "The store is open and the node keeps up with its peers"),
                "503": problem("The store is not usable, or catching up with the peers fails"),
            },
        ),
        "/metrics": get_operation(
            "Prometheus metrics",
            {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": TEXT}}}},
        ),
        "/openapi.json": get_operation(
            "This document",
            {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
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
        "paths": {**_paths(), **catalogue_paths(), **transparency_paths(), **standard_paths()},
        "components": {"schemas": {**_schemas(), **standard_schemas(), **catalogue_schemas()}},
    }
