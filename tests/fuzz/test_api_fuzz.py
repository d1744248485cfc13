"""Schemathesis against a real node process: every operation of `/openapi.json`, its documented examples, its
coverage cases, and positive and negative generated requests.

The budget here is small so `make test` stays quick (about a thousand requests, 15 s); `python -m tests.fuzz api`
runs the same fuzzer for as long as asked.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.fuzz.api import fuzz_api, fuzz_node

#: Requests per operation and generation mode in the test suite.
EXAMPLES = 20
#: Fixed, so the suite sends the same requests every run (long runs choose their own).
SEED = 20261126


def test_every_api_operation_answers_fuzzed_requests_without_5xx_with_problems_and_without_state_change(
    tmp_path: Path,
) -> None:
    with fuzz_node(tmp_path / "net") as node:
        report = fuzz_api(node.url, examples=EXAMPLES, seed=SEED)
        with urllib.request.urlopen(f"{node.url}/openapi.json", timeout=10) as response:
            document = json.loads(response.read())
    documented = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
    # Schemathesis leaves out the operation that served it the schema, which it has just called.
    documented.discard("GET /openapi.json")
    assert report.failures == {} and report.errors == [], "\n".join(f"{k}: {v}" for k, v in report.failures.items())
    assert report.server_errors == 0
    # Every documented operation was called, and refused requests were among them.
    assert set(report.by_operation) == documented
    assert report.by_status[400] > 0 and report.requests >= len(documented) * 2
