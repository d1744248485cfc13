"""Node processes under what outsiders do to them: floods of refused events with a small LMDB reader table, a
validator restarted while blocks of the largest size commit, and a network that loses its quorum -- each node
stays up, catches up, and says what is wrong."""

from __future__ import annotations

import base64
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from credledger.ledger.events import Event, Issue, Revoke, UnsignedEvent, sign_event
from credledger.ledger.keys import SigningKey
from tests.factories import digest
from tests.integration.cluster import Cluster, Load, Node, now_ms, poll, running

#: Fewer LMDB reader slots than the events of one refused batch.
SMALL_READER_TABLE = "\n[store]\nmax_readers = 48\n"


def post_raw(
    node: Node, events: list[Any], *, path: str = "/v1/events", timeout: float = 60.0
) -> tuple[int, dict[str, Any]]:
    """POST events (one as {"event": ...}, several as {"events": [...]}); the status and the JSON answer."""
    items = [{"encoded": base64.b64encode(e.encode()).decode()} for e in events]
    body = json.dumps({"event": items[0]} if len(items) == 1 else {"events": items}).encode()
    request = urllib.request.Request(
        f"{node.url}{path}", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def committed_on(net: Cluster, node: Node, event: Event | None) -> bool:
    return event is not None and net.event_status(node, event.id) == "committed"


def test_parallel_batches_of_a_thousand_refused_events_leave_a_validator_committing(tmp_path: Path) -> None:
    net = Cluster.create(tmp_path / "net", extra_config=SMALL_READER_TABLE)
    with running(net):
        net.wait_height(1)
        m0 = net.validators[0]
        outsider = SigningKey.generate("outsider.test")
        member = net.members["m0.test"]
        at = now_ms()
        batches = [
            [net.sign(Issue(digest(f"outsider {i}"), "m0.test", None, ()), outsider) for i in range(1000)],
            [net.sign(Revoke(digest(f"never issued {i}"), 0), member.issuer) for i in range(1000)],
            [
                sign_event(
                    UnsignedEvent("other.test/chain", at, Issue(digest(f"f{i}"), "m0.test", None, ())), member.issuer
                )
                for i in range(1000)
            ],
            [net.sign(Issue(digest(f"outsider b {i}"), "m0.test", None, ()), outsider) for i in range(1000)],
        ]
        height = net.height(m0)
        with ThreadPoolExecutor(len(batches)) as pool:
            answers = list(pool.map(lambda batch: post_raw(m0, batch), batches))
        for status, body in answers:
            assert status == 422, body
            assert body["detail"].startswith("1000 of 1000 events were refused")
        assert m0.running
        net.wait_height(height + 2)
        good = net.issue("m0.test", digest("after the flood"))
        assert net.submit(m0, good)["results"][0]["status"] == "committed"


def test_a_validator_restarted_while_full_blocks_commit_catches_up(tmp_path: Path) -> None:
    net = Cluster.create(tmp_path / "net")
    with running(net):
        net.wait_height(1)
        m0, _, _, m3 = net.validators
        most = net.genesis.params.max_block_events
        net.kill(m3)
        last = None
        for round_ in range(4):
            if round_ == 3:
                # Three full blocks behind, restarted while more are being committed: it must fetch them.
                poll("full blocks to commit", partial(committed_on, net, m0, last), timeout=90)
                net.start(m3, wait=False)
            for half in range(2):
                events = [net.issue("m0.test", digest(f"full {round_}/{half}/{i}")) for i in range(most // 2)]
                net.submit(m0, *events, wait=False)
                last = events[-1]
        assert last is not None
        poll("the last full batch to commit", partial(committed_on, net, m0, last), timeout=90)
        top = net.height(m0)
        sizes = [net.block(m0, h)["header"]["event_count"] for h in range(1, top + 1)]
        assert max(sizes) == most, sizes
        net.wait_ready(m3)
        net.wait_height(top, [m3], timeout=90)
        assert net.event_status(m3, last.id) == "committed"
        status = net.get(m3, "/v1/status")
        assert status["sync"]["failure"] is None
        assert net.metric(m3, "credledger_sync_failing") == 0


def test_status_says_why_a_network_without_quorum_cannot_commit(tmp_path: Path) -> None:
    net = Cluster.create(tmp_path / "net")
    with running(net):
        net.wait_height(1)
        m0, _, m2, m3 = net.validators
        assert net.get(m0, "/v1/status")["commit"] == {"ok": True, "reason": None}
        net.kill(m2, m3)

        def stalled() -> bool:
            return net.get(m0, "/v1/status")["commit"]["ok"] is False

        poll("m0 to report that the network cannot commit", stalled)
        reason = net.get(m0, "/v1/status")["commit"]["reason"]
        assert "of 4 power" in reason and "need more than 2/3 (3)" in reason, reason
        assert reason.endswith("peers unreachable: m2.test, m3.test"), reason
        net.start(m2)
        poll("m0 to report commits again", lambda: net.get(m0, "/v1/status")["commit"]["ok"] is True)


def test_a_read_replica_forwards_writes_to_the_validators_and_says_when_none_answers(tmp_path: Path) -> None:
    net = Cluster.create(tmp_path / "net")
    replica = net.add_node("m0.test", "replica", name="replica-m0")
    with running(net):
        net.wait_height(1, [replica])
        event = net.issue("m0.test", digest("written to the replica"))
        status, answer = post_raw(replica, [event], path="/v1/events?wait=commit")
        assert status == 200, answer
        assert answer["results"][0]["status"] == "committed"
        assert answer["forwarded_to"] in {n.url for n in net.validators}
        # Read your write: the replica answered once it held the block too.
        assert net.event_status(replica, event.id) == "committed"

        later = net.issue("m0.test", digest("written to the replica without waiting"))
        status, answer = post_raw(replica, [later])
        assert (status, answer["results"][0]["status"]) == (202, "pending")
        poll("the forwarded event to commit on the replica", partial(committed_on, net, replica, later))

        outsider = SigningKey.generate("outsider.test")
        refused = net.sign(Issue(digest("not a member's"), "m0.test", None, ()), outsider)
        status, answer = post_raw(replica, [refused])
        assert status == 403 and answer["type"] == "urn:credledger:problem:unauthorized", answer
        assert "forwarded_to" in answer

        net.kill(*net.validators)
        stranded = net.issue("m0.test", digest("no validator to take it"))
        status, answer = post_raw(replica, [stranded])
        assert status == 502 and answer["type"] == "urn:credledger:problem:forward-failed", answer
        for validator in net.validators:
            assert validator.url in answer["detail"]
        assert answer["tried"] == [n.url for n in net.validators]
        assert net.event_status(replica, stranded.id) is None


def acked_beyond(load: Load, count: int) -> bool:
    return load.acked() >= count


def test_writes_through_a_replica_while_validators_are_killed_lose_nothing_acknowledged(tmp_path: Path) -> None:
    net = Cluster.create(tmp_path / "net")
    replica = net.add_node("m1.test", "replica", name="replica-m1")
    with running(net):
        net.wait_height(1, [replica])
        m0, m1, _, m3 = net.validators
        with Load(net, threads=2, targets=[replica]) as load:
            poll("the first acknowledged events", lambda: load.acked() >= 8)
            for victim in (m0, m3, m1):
                acked = load.acked()
                net.kill(victim)
                poll(f"acknowledged events without {victim.id}", partial(acked_beyond, load, acked + 8))
                net.start(victim)
        top = max(net.height(n) for n in net.validators)
        net.wait_height(top, net.nodes)
        logs = {n.id if n.role == "validator" else "replica": net.log_ids(n) for n in net.nodes}
        shortest = min(len(ids) for ids in logs.values())
        assert len({tuple(ids[:shortest]) for ids in logs.values()}) == 1, "the nodes' logs differ"
        for name, ids in logs.items():
            missing = load.acknowledged - set(ids)
            assert not missing, f"{name} lacks {len(missing)} acknowledged events"
