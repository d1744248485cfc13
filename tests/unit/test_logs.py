"""The node's log format: its own lines and the standard library's (aiohttp, asyncio) come out alike."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from credledger.node.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_a_library_error_with_a_traceback_is_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    try:
        raise ConnectionResetError("peer went away")
    except ConnectionResetError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    (line,) = _lines(capsys)
    assert line["level"] == "error"
    assert line["logger"] == "aiohttp.server"
    assert line["event"] == "Error handling request"
    assert "ConnectionResetError: peer went away" in str(line["exception"])
    assert "timestamp" in line


def test_library_lines_below_warning_are_dropped_unless_at_debug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json")
    logging.getLogger("asyncio").info("poll took 0.2 s")
    logging.getLogger("asyncio").warning("Executing <Task> took 0.3 seconds")
    assert [line["event"] for line in _lines(capsys)] == ["Executing <Task> took 0.3 seconds"]
    configure_logging("debug", "json")
    logging.getLogger("asyncio").debug("Using selector: EpollSelector")
    (line,) = _lines(capsys)
    assert {k: v for k, v in line.items() if k != "timestamp"} == {
        "event": "Using selector: EpollSelector",
        "level": "debug",
        "logger": "asyncio",
    }


def test_the_nodes_own_lines_are_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", "json")
    structlog.get_logger("credledger.test").info("hidden")
    structlog.get_logger("credledger.test").warning("peer refused", peer="uni-a")
    (line,) = _lines(capsys)
    assert line["event"] == "peer refused" and line["peer"] == "uni-a" and line["level"] == "warning"


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log level must be one of"):
        configure_logging("loud")
