"""Shared fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def python_with_default_sigint(*args: str) -> list[str]:
    """The command line of `python ARGS` whose process takes SIGINT (Ctrl-C) as Python does by default, even when
    the tests run with SIGINT ignored (a non-interactive shell starts its background jobs so, and Python keeps an
    inherited ignore): a first interpreter restores SIGINT's default action and replaces itself with the second."""
    restore = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.executable, sys.argv[1:])"
    )
    return [sys.executable, "-c", restore, sys.executable, *args]


# Published test vectors kept in the repository (see tests/vectors/README.md).
VECTORS = PROJECT_ROOT / "tests" / "vectors"


@pytest.fixture
def vectors_dir() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"test vectors not found at {VECTORS}")
    return VECTORS
