"""The C2SP tlog-tiles and tlog-witness parts of the OpenAPI document."""

from __future__ import annotations

from credledger.ledger.limits import MAX_ORIGIN
from credledger.ledger.tiles import MAX_PATH_LENGTH
from credledger.ledger.witness import SIZE_CONTENT_TYPE
from credledger.node.api.openapi_parts import (
    NOT_READY,
    NOTE,
    TEXT,
    Schema,
    get_operation,
    param,
    problem,
    ref,
)


def transparency_paths() -> dict[str, Schema]:
    """C2SP tlog-tiles and tlog-witness: the checkpoint, tiles, add-checkpoint, and what a witness holds."""
    return {
        "/checkpoint": get_operation(
            "The latest commit certificate, where C2SP tlog-tiles clients look for it (as /v1/checkpoint)",
            {
                "200": {"description": "A C2SP checkpoint note", "content": {"text/plain": {"schema": NOTE}}},
                "503": NOT_READY,
            },
        ),
        "/tile/{tile}": get_operation(
            "A C2SP tlog-tiles tile or entry bundle of the log",
            {
                "200": {
                    "description": (
                        "A tile (32-byte hashes of tree level 8·L, concatenated) or an entry bundle (each event's "
                        "canonical bytes after a big-endian uint16 length). Full ones are cached as immutable."
                    ),
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                },
                "400": problem("A malformed tile path"),
                "404": problem("A tile the log does not have (yet)"),
            },
            [
                param(
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
                    "400": problem("A malformed body, or an old size larger than the checkpoint's"),
                    "403": problem("The checkpoint lacks the log's quorum of valid signatures"),
                    "404": problem("A log this node does not witness, or a node that witnesses none"),
                    "408": problem("The body did not arrive in time"),
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
                    "413": problem("A body larger than the add-checkpoint limit"),
                    "422": problem("The consistency proof does not verify against the witness's record"),
                },
            }
        },
        "/witnessed-checkpoint": get_operation(
            "The checkpoint this witness last cosigned for a log it witnesses",
            {
                "200": {
                    "description": (
                        "The checkpoint note as cosigned: the log's valid signatures and this witness's "
                        "tlog-cosignature v1 lines"
                    ),
                    "content": {"text/plain": {"schema": NOTE}},
                },
                "400": problem("No origin, or one that is not a printable line"),
                "404": problem("A log this node does not witness, nothing cosigned yet, or no [witness] config"),
            },
            [param("origin", "query", "the log's origin line", {"type": "string", "maxLength": MAX_ORIGIN})],
        ),
    }
