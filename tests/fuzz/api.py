"""API fuzzing: every operation of a live node's `/openapi.json`, driven by the schemathesis engine.

Schemathesis reads the OpenAPI document and, for each operation, sends the documented examples, then its
*coverage* cases (boundary and just-out-of-bounds values for every parameter and field: empty strings, huge
numbers, non-ASCII text, wrong types, missing required fields), then Hypothesis-generated requests, positive ones
that follow the schema and negative ones that break it. Every request goes to a real node process over HTTP, and
every answer must pass these checks:

- **no 5xx** (schemathesis' `not_a_server_error`): whatever arrives, the node answers it;
- **conformance** (`status_code_conformance`, `content_type_conformance`, `response_schema_conformance`): the
  status code, content type and body are what the OpenAPI document says;
- **problem documents** (`credledger_problem`, here): every 4xx is `application/problem+json` whose `type`,
  `title` and `detail` are non-empty strings and whose `status` equals the HTTP status (RFC 9457);
- **refusals change nothing** (`credledger_refusal_changes_nothing`, here): after a refused request the
  checkpoint's log size and root, and the number of pending events, are what they were before it.

The engine goes on after a failure, so a long run reports every distinct failure (with a `curl` line that
reproduces it) and a count of requests by operation and status.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.engine import events, from_schema

from credledger.ledger.note import Checkpoint, SignedNote
from tests.integration.cluster import Cluster, Node, running

PROBLEM = "application/problem+json"
#: Per-request timeout; a `?wait=commit` request the fuzzer sends waits for its events at most this long.
REQUEST_TIMEOUT_S = 20.0
#: Schemathesis' phases this fuzzer runs (stateful needs links the API does not declare).
PHASES = ["examples", "coverage", "fuzzing"]
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "credledger_problem",
    "credledger_refusal_changes_nothing",
]


@dataclass
class ApiReport:
    """What a run sent and what it found."""

    requests: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    #: One entry per (check, operation): the failure's message and a `curl` line that reproduces it.
    failures: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.by_status.items() if status >= 500)

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "server_errors": self.server_errors,
            "statuses": {str(k): v for k, v in sorted(self.by_status.items())},
            "operations": dict(sorted(self.by_operation.items())),
            "failures": self.failures,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class LedgerState:
    """What a refused request must leave as it was."""

    log_size: int
    log_root: bytes
    pending: int


def ledger_state(base_url: str) -> LedgerState:
    """The node's committed log head (from its checkpoint) and the number of events in its mempool."""
    with urllib.request.urlopen(f"{base_url}/v1/checkpoint", timeout=REQUEST_TIMEOUT_S) as response:
        checkpoint = Checkpoint.parse(SignedNote.parse(response.read()).text)
    with urllib.request.urlopen(f"{base_url}/v1/status", timeout=REQUEST_TIMEOUT_S) as response:
        status = json.loads(response.read())
    return LedgerState(checkpoint.size, checkpoint.root, int(status["mempool"]["events"]))


def problem_issue(status: int, content_type: str, body: bytes) -> str | None:  # noqa: PLR0911 - one per check
    """Why an error answer is not a valid RFC 9457 problem document (None if it is one)."""
    if not content_type.startswith(PROBLEM):
        return f"{status} answered as {content_type or 'no content type'}, not {PROBLEM}"
    try:
        document = json.loads(body)
    except ValueError:
        return f"{status} problem body is not JSON: {body[:200]!r}"
    if not isinstance(document, dict):
        return f"{status} problem body is not an object"
    missing = [name for name in ("type", "title", "status", "detail") if name not in document]
    if missing:
        return f"{status} problem lacks {', '.join(missing)}: {document}"
    if document["status"] != status:
        return f"problem status {document['status']} differs from the HTTP status {status}"
    if not all(isinstance(document[name], str) and document[name] for name in ("type", "title", "detail")):
        return f"problem type, title and detail must be non-empty strings: {document}"
    return None


class _Run:
    """The state the custom checks share during one run (the engine calls them one response at a time)."""

    report: ApiReport | None = None
    base_url = ""
    before: LedgerState | None = None


@schemathesis.check
def credledger_problem(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """Every 4xx answer is an RFC 9457 problem document (and the response is counted)."""
    report = _Run.report
    if report is not None:
        report.requests += 1
        report.by_operation[case.operation.label] += 1
        report.by_status[response.status_code] += 1
    if 400 <= response.status_code < 500:
        content_type = ";".join(response.headers.get("content-type", []))
        issue = problem_issue(response.status_code, content_type, response.content or b"")
        if issue is not None:
            raise AssertionError(issue)
    return None


@schemathesis.check
def credledger_refusal_changes_nothing(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """After a refused request the log head and the mempool are as they were before it."""
    if _Run.report is None:
        return None
    after = ledger_state(_Run.base_url)
    before, _Run.before = _Run.before, after
    if response.status_code >= 400 and before is not None and after != before:
        raise AssertionError(f"a refused request changed the ledger: before {before}, after {after}")
    return None


def fuzz_api(base_url: str, *, examples: int, seed: int | None) -> ApiReport:
    """Run every phase against every operation, up to `examples` generated requests per operation and mode."""
    report = ApiReport()
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=REQUEST_TIMEOUT_S)
    config = schema.config
    config.update(base_url=base_url, continue_on_failure=True, request_timeout=REQUEST_TIMEOUT_S)
    config.generation.update(max_examples=examples, modes=["positive", "negative"], database="none")
    config.phases.update(phases=PHASES)
    config.checks.update(included_check_names=CHECKS)
    if seed is not None:
        config.seed = seed
    _Run.report, _Run.base_url, _Run.before = report, base_url, ledger_state(base_url)
    try:
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                _collect(event, report)
            elif isinstance(event, events.NonFatalError | events.FatalError):
                report.errors.append(str(getattr(event, "info", event))[:500])
    finally:
        _Run.report = None
    return report


def _collect(event: events.ScenarioFinished, report: ApiReport) -> None:
    for checks in event.recorder.checks.values():
        for check in checks:
            info = check.failure_info
            key = f"{check.name} {event.label}"
            if info is not None and key not in report.failures:
                report.failures[key] = f"{info.failure.title}: {info.failure.message}"[:400] + f"\n  {info.code_sample}"


@contextmanager
def fuzz_node(root: Path) -> Iterator[Node]:
    """A one-validator network: a real node process on 127.0.0.1 over a real LMDB store, killed on the way out
    (and a node that logged an error fails the run)."""
    cluster = Cluster.create(root, validators=1)
    with running(cluster):
        cluster.wait_height(1)
        yield cluster.nodes[0]
