"""A node rigged to present a forked checkpoint: a child process for tests/integration/test_witness_fork.py.

It holds a real validator key of a test network (one with the power to certify alone, as a colluding
super-majority would), and signs checkpoints of a log that is not the network's: one of the same size and height as
the honest checkpoint it is told of, and one three entries longer. It presents them to a witness as a log submits
(C2SP tlog-witness `POST /add-checkpoint`): first as a log that does not know what the witness holds (old size 0),
then from the size the witness names, then the longer fork with a consistency proof of its own log. It prints the
witness's answers and the forked note as one JSON line, then serves the forked checkpoint at `/v1/checkpoint` and
`/checkpoint`, as a node would to the verifiers it lies to, until it is stopped.

    python -m tests.integration.forked_node KEY_FILE ORIGIN HEIGHT SIZE WITNESS_URL PORT
"""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from credledger.ledger.keys import SigningKey
from credledger.ledger.merkle import consistency_path, leaf_hash, root_from_leaf_hashes
from credledger.ledger.note import Checkpoint, SignedNote, sign_note
from credledger.ledger.witness import add_checkpoint_body

#: How many entries the longer fork has beyond the honest size.
LONGER_BY = 3
TIMEOUT_S = 10.0


def forked_note(key: SigningKey, origin: str, height: int, size: int, leaves: list[bytes]) -> SignedNote:
    """A checkpoint of the forked log's first `size` leaves, certified by `key` alone."""
    header_hash = hashlib.sha256(b"a forked header at height %d" % height).digest()
    body = Checkpoint(origin, size, root_from_leaf_hashes(leaves[:size]), height, 0, header_hash).body()
    return SignedNote(body, (sign_note(body, key),))


def present(witness_url: str, body: bytes) -> dict[str, Any]:
    """POST an add-checkpoint body to the witness; its answer as status, content type and text."""
    request = urllib.request.Request(witness_url.rstrip("/") + "/add-checkpoint", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            status, kind, data = response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as error:
        status, kind, data = error.code, error.headers.get("Content-Type"), error.read()
    return {"status": status, "content_type": kind, "body": data.decode("utf-8", errors="replace")}


def serve(note: str, port: int) -> None:
    """Answer `GET /v1/checkpoint` and `GET /checkpoint` with the forked note; anything else is 404."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path in ("/v1/checkpoint", "/checkpoint")
            data = (note if found else "not served by the forked node\n").encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main(argv: list[str]) -> None:
    key_file, origin, height, size, witness_url, port = argv
    key = SigningKey.from_skey(Path(key_file).read_text())
    n = int(size)
    leaves = [leaf_hash(b"forked entry %d" % i) for i in range(n + LONGER_BY)]
    same_size = forked_note(key, origin, int(height), n, leaves)
    longer = forked_note(key, origin, int(height) + 1, n + LONGER_BY, leaves)
    answers = {
        "unknown_size": present(witness_url, add_checkpoint_body(0, [], same_size)),
        "same_size": present(witness_url, add_checkpoint_body(n, [], same_size)),
        "longer": present(witness_url, add_checkpoint_body(n, consistency_path(leaves, n), longer)),
    }
    print(json.dumps({"answers": answers, "note": same_size.format()}), flush=True)
    serve(same_size.format(), int(port))


if __name__ == "__main__":
    main(sys.argv[1:])
