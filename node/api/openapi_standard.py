"""The W3C credential parts of the OpenAPI document: DID documents, status lists, the registry, VC-API (DESIGN §13)."""

from __future__ import annotations

from credledger.ledger.limits import MEMBER_ID_PATTERN
from credledger.node.api.openapi_parts import (
    BAD_PARAMETER,
    COUNT,
    HEX32,
    TEXT,
    Schema,
    array,
    get_operation,
    json_content,
    obj,
    param,
    problem,
    ref,
)

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
    answers = {**responses, "400": problem("A malformed body, or a credential that cannot be issued or verified")}
    if auth:
        answers["401"] = problem("No Authorization: Bearer header, or not the node's token")
        answers["403"] = problem("The node has no VC-API token or holds no issuer key")
        answers["422"] = problem("The ledger refused the event")
    operation = {"summary": summary, "requestBody": json_content(body, "The request"), "responses": answers}
    return {"post": operation}


def standard_paths() -> dict[str, Schema]:
    """What standard VC verifiers fetch (DESIGN §13): DID documents and the known-issuer registry."""
    cached = "With ETag and Cache-Control; If-None-Match with the current ETag answers 304 without a body"
    did_document = json_content(ref("DidDocument"), f"A DID Core 1.0 document. {cached}")
    member = param("member", "path", "member id", {"type": "string", "pattern": MEMBER_ID_PATTERN.pattern})
    return {
        "/v1/members/{member}/did.json": get_operation(
            "A member's DID document: every issuer key it ever registered except those marked compromised",
            {
                "200": did_document,
                "304": {"description": "Not modified"},
                "400": BAD_PARAMETER,
                "404": problem("Not a member"),
            },
            [member],
        ),
        "/.well-known/did.json": get_operation(
            "This node's institution's DID document (did:web of the host serving it)",
            {"200": did_document, "304": {"description": "Not modified"}},
        ),
        "/v1/members/{member}/status/{list}/{purpose}": get_operation(
            "A member's latest committed, signed BitstringStatusListCredential, byte-identical on every node",
            {
                "200": json_content(
                    {"type": "object", "description": "W3C Bitstring Status List v1.0 credential (VC 2.0)"},
                    f"The list credential; the Credledger-Height header names the block that certified it. {cached}",
                ),
                "304": {"description": "Not modified"},
                "400": BAD_PARAMETER,
                "404": problem("The member has published no such list"),
            },
            [
                member,
                param("list", "path", "status list number", COUNT),
                param("purpose", "path", "status purpose", {"enum": ["revocation", "suspension"]}),
            ],
        ),
        "/v1/members/{member}/status": get_operation(
            "How many entries of each of a member's status lists are taken",
            {
                "200": json_content(
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
                "400": BAD_PARAMETER,
                "404": problem("Not a member"),
            },
            [member],
        ),
        "/credentials/issue": _post(
            "VC-API: sign an unsigned credential for this node's member and register it (bearer token)",
            obj({"credential": {"type": "object"}, "options": _ISSUE_OPTIONS}, optional=("options",), closed=False),
            {"201": json_content(obj({"verifiableCredential": {"type": "object"}}), "The signed credential")},
            auth=True,
        ),
        "/credentials/status": _post(
            "VC-API: revoke, suspend or reinstate a credential this node issued, by its id (bearer token)",
            obj({"credentialId": TEXT, "credentialStatus": array({"type": "object"})}, closed=False),
            {
                "200": json_content(
                    obj({"credentialId": TEXT, "change": TEXT, "event": HEX32}), "The status event admitted"
                )
            },
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
                "200": json_content(
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
        "/v1/registry.json": get_operation(
            "The active members as a known-issuer registry (DCC 'dcc-legacy' format: DID -> name, url)",
            {
                "200": json_content(ref("IssuerRegistry"), f"The registry. {cached}"),
                "304": {"description": "Not modified"},
            },
        ),
    }


def standard_schemas() -> dict[str, Schema]:
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
