"""Credential digest benchmark: CPU time of `ledger.digest.document_digest` (iterative RFC 8785) on JSON files.

Three documents: a typical Open Badges credential (~1 KB), a large one (`--items` achievements, several MB) and
one nested 5,000 arrays deep. Beside each, for comparison, the C `json` parser plus the `rfc8785` package on the
same document where it can (it cannot take the deep one: it recurses). Times are `time.process_time` medians.

Run ``python -m bench digest`` or ``python -m bench digest --items 100000 --rounds 5``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence

import rfc8785

from credledger.ledger.digest import document_digest


def _median_ms(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.process_time()
        action()
        times.append(time.process_time() - started)
    return statistics.median(times) * 1000


def _documents(items: int) -> dict[str, bytes]:
    badge = {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        ],
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": "https://uni.example", "type": ["Profile"], "name": "Universit\u00e9 A"},
        "validFrom": "2026-06-30T00:00:00Z",
        "credentialSubject": {"type": ["AchievementSubject"], "achievement": {"name": "Marine Biology", "credits": 30}},
    }
    large = {**badge, "results": [{"name": f"module {i}", "score": i * 1.5, "tags": ["a", "b"]} for i in range(items)]}
    return {
        "badge": json.dumps(badge, indent=2).encode(),
        "large": json.dumps(large, indent=2).encode(),
        "deep": b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench digest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=40_000, help="achievement results in the large document")
    parser.add_argument("--rounds", type=int, default=3, help="rounds for the large and deep documents")
    args = parser.parse_args(argv)
    print(f"{'document':<8} {'bytes':>10} {'credledger ms':>14} {'json+rfc8785 ms':>16}")
    for name, data in _documents(args.items).items():
        rounds = 1000 if name == "badge" else args.rounds
        ours = _median_ms(lambda data=data: document_digest(data), rounds)
        try:
            theirs = f"{_median_ms(lambda data=data: rfc8785.dumps(json.loads(data)), rounds):16.3f}"
        except RecursionError:
            theirs = f"{'recursion limit':>16}"
        print(f"{name:<8} {len(data):>10} {ours:14.3f} {theirs}")
    return 0
