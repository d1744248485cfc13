"""`credledger devnet` says why a node did not start, from that node's latest run, not from its log file's past."""

from __future__ import annotations

from pathlib import Path

import pytest

from credledger.cli.devnet import START_MARK, Member, last_words, start_node, stop_all, wait_ready


def test_the_reason_a_node_stopped_comes_from_its_latest_run(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text(
        f"{START_MARK} 2026-01-01T00:00:00Z\ncredledger: an old failure\n"
        f"{START_MARK} 2026-01-02T00:00:00Z\n" + '{"event": "node listening"}\nTraceback: something new\n'
    )
    assert last_words(log) == "Traceback: something new"
    log.write_text(log.read_text() + "credledger: cannot listen on 127.0.0.1:8701: the port is in use\n")
    assert last_words(log) == "credledger: cannot listen on 127.0.0.1:8701: the port is in use"
    assert last_words(tmp_path / "absent.log").startswith("(cannot read")


def test_a_node_that_fails_to_start_is_named_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    member = Member("m0.example", "M0", tmp_path / "m0.example", 1)
    member.directory.mkdir()
    (member.directory / "node.log").write_text("credledger: a failure of an earlier run\n")
    (member.directory / "node.toml").write_text(
        'member_id = "m0.example"\ndata_dir = "data"\ngenesis = "../genesis.json"\nnode_key = "node.key"\n'
    )
    processes = [(member, start_node(member))]
    try:
        assert wait_ready(processes) is False
    finally:
        stop_all(processes)
    err = capsys.readouterr().err
    assert "a node failed to start" in err and "m0.example (exit code 2;" in err
    assert f"credledger: no genesis file at {tmp_path / 'genesis.json'}" in err
    assert "earlier run" not in err
