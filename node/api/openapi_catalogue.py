"""The catalogue, recognition, record and pathway parts of the OpenAPI document (DESIGN §14)."""

from __future__ import annotations

from credledger.ledger.record import FORMAT as RECORD_FORMAT
from credledger.ledger.record import MAX_RECORD_CREDENTIALS
from credledger.node.api.catalogue import DEFAULT_PAGE, MAX_PAGE
from credledger.node.api.catalogue import PROOF_FORMAT as ACHIEVEMENT_PROOF_FORMAT
from credledger.node.api.openapi_parts import (
    BAD_PARAMETER,
    BASE64,
    COUNT,
    HEX32,
    NOT_READY,
    NOTE,
    TEXT,
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


def _certified_head() -> dict[str, Schema]:
    """The fields a record and an achievement proof share: the chain they are certified by, up to the checkpoint."""
    return {
        "origin": TEXT,
        "genesis": HEX32,
        "checkpoint": NOTE,
        "header": BASE64,
        "validators": array(obj({"header": BASE64, "certificate": NOTE, "next": BASE64})),
    }


def catalogue_schemas() -> dict[str, Schema]:
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
                **_certified_head(),
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
                        **_certified_head(),
                        "current": ref("StateEntry"),
                        "versions": array(ref("StateEntry")),
                    }
                ),
            }
        ),
    }


def catalogue_paths() -> dict[str, Schema]:
    """The catalogue, recognitions, learners' records and pathways (DESIGN §14)."""
    return {
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
                    "200": json_content(ref("Record"), "The record"),
                    "400": BAD_PARAMETER,
                    "413": problem("The body is too large"),
                    "503": NOT_READY,
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
                    "200": json_content(ref("Pathways"), "Each credential's standing, then the awards, complete first"),
                    "400": BAD_PARAMETER,
                    "404": problem("toward names no award rule in force"),
                    "413": problem("The body is too large (send digests rather than a large record)"),
                    "503": NOT_READY,
                },
            }
        },
        "/v1/achievements": get_operation(
            "The catalogue: the current version of every achievement matching the filters, by member and id",
            {"200": json_content(ref("AchievementPage"), "One page of achievements"), "400": BAD_PARAMETER},
            [
                param("member", "query", "only this member's achievements", TEXT, required=False),
                param(
                    "type",
                    "query",
                    "only this achievementType (MicroCredential, Certificate, ...)",
                    TEXT,
                    required=False,
                ),
                param("skill", "query", "an alignment's targetUrl, or words of its targetName", TEXT, required=False),
                param("level", "query", "only this level value", COUNT, required=False),
                param("framework", "query", "only levels in this framework (EQF, AQF, ...)", TEXT, required=False),
                param("text", "query", "words in the id, name, description or field of study", TEXT, required=False),
                param("after", "query", "MEMBER/ID: the next_after of the previous page", TEXT, required=False),
                param("limit", "query", f"page size, 1..{MAX_PAGE} (default {DEFAULT_PAGE})", COUNT, required=False),
            ],
        ),
        "/v1/achievements/{member}/{id}": get_operation(
            "One achievement: its current version, every version, and a state proof of them all",
            {
                "200": json_content(ref("AchievementProof"), "The achievement and its proof"),
                "404": problem("The member published no achievement with this id"),
                "503": NOT_READY,
            },
            [
                param("member", "path", "the publishing member's id", TEXT),
                param("id", "path", "the achievement id", TEXT),
            ],
        ),
        "/v1/recognitions": get_operation(
            "The recognitions one member holds in force",
            {"200": json_content(ref("Recognitions"), "The recognitions, by id"), "400": BAD_PARAMETER},
            [param("member", "query", "the recognising member's id", TEXT)],
        ),
    }
