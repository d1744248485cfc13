"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Published test vectors kept in the repository (see tests/vectors/README.md).
VECTORS = PROJECT_ROOT / "tests" / "vectors"


@pytest.fixture
def vectors_dir() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"test vectors not found at {VECTORS}")
    return VECTORS
