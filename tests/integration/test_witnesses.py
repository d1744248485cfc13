"""Two networks of real node processes witness each other (C2SP tlog-witness), and serve each other's cosignatures.

Network A's node lists network B's node as its outside witness and witnesses B's log in return (and the other way
round). Each network's `/v1/checkpoint` must come to carry the other's verified cosignature on a checkpoint that
includes the events just committed; then the witness of A restarts, and A's next checkpoint is cosigned again from
the size that witness kept on disk.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from credledger.ledger.cosignature import CosignerKey, verified_cosignatures
from credledger.ledger.keys import SigningKey
from credledger.ledger.note import SignedNote
from credledger.ledger.treehead import TreeHead
from tests.factories import digest, key_for
from tests.integration.cluster import Cluster, Node, poll

WAIT_S = 90.0


def witness_tables(witness_key: Path, other: Cluster, other_witness: SigningKey) -> str:
    """`[witness]` following `other`'s log, and `[witnesses]` naming `other`'s node as this network's witness."""
    vkeys = ", ".join(json.dumps(n.member.node.public.vkey()) for n in other.validators)
    return f"""
[witness]
key = "{witness_key}"

[[witness.logs]]
origin = "{other.genesis.origin}"
vkeys = [{vkeys}]
quorum = {len(other.validators)}

[witnesses]
quorum = 1
witness_interval_ms = 200

[[witnesses.witnesses]]
vkey = "{CosignerKey.of(other_witness).vkey()}"
url = "{other.validators[0].url}"
"""


@pytest.fixture
def networks(tmp_path: Path) -> Iterator[tuple[Cluster, Cluster, SigningKey, SigningKey]]:
    a = Cluster.create(tmp_path / "a", validators=1, origin="credledger.test/network-a")
    b = Cluster.create(tmp_path / "b", validators=1, origin="credledger.test/network-b")
    keys = key_for("witness.test/a", "witness"), key_for("witness.test/b", "witness")
    for cluster, own, other, other_key in ((a, keys[0], b, keys[1]), (b, keys[1], a, keys[0])):
        key_file = cluster.root / "witness.key"
        key_file.write_text(own.skey() + "\n")
        cluster.extra_config = witness_tables(key_file, other, other_key)
        cluster._write_configs()
    try:
        a.start()
        b.start()
        yield a, b, keys[0], keys[1]
    finally:
        a.close()
        b.close()
    errors = a.logged_errors() + b.logged_errors()
    assert not errors, "\n".join(errors[:10])


def checkpoint(node: Node) -> SignedNote:
    with urllib.request.urlopen(f"{node.url}/v1/checkpoint", timeout=10) as response:
        return SignedNote.parse(response.read())


def wait_cosigned(node: Node, witness: SigningKey, size: int) -> SignedNote:
    """Wait until `node` serves a checkpoint of at least `size` entries carrying `witness`'s valid cosignature."""
    found: list[SignedNote] = []

    def cosigned() -> bool:
        note = checkpoint(node)
        if TreeHead.parse(note.text).size >= size and verified_cosignatures(note, [CosignerKey.of(witness)]):
            found.append(note)
            return True
        return False

    poll(f"a checkpoint of size >= {size} cosigned by {witness.name}", cosigned, timeout=WAIT_S)
    return found[-1]


def test_two_networks_witness_each_other_and_a_restarted_witness_keeps_its_record(
    networks: tuple[Cluster, Cluster, SigningKey, SigningKey],
) -> None:
    a, b, witness_a, witness_b = networks
    (node_a,), (node_b,) = a.validators, b.validators
    done_a = a.submit(node_a, a.issue("m0.test", digest("on a")))
    done_b = b.submit(node_b, b.issue("m0.test", digest("on b")))
    size_a = TreeHead.parse(SignedNote.parse(done_a["checkpoint"]).text).size
    size_b = TreeHead.parse(SignedNote.parse(done_b["checkpoint"]).text).size
    note_a = wait_cosigned(node_a, witness_b, size_a)  # B witnessed A
    wait_cosigned(node_b, witness_a, size_b)  # A witnessed B
    assert TreeHead.parse(note_a.text).origin == "credledger.test/network-a"

    b.stop(node_b)  # A's witness restarts with what it recorded
    b.start(node_b)
    more = a.submit(node_a, *(a.issue("m0.test", digest(f"more on a {i}")) for i in range(3)))
    wait_cosigned(node_a, witness_b, TreeHead.parse(SignedNote.parse(more["checkpoint"]).text).size)
