"""Long fuzzing runs, with a seed and a budget, outside the test suite.

    python -m tests.fuzz decoders --runs 100000 --seed 1 [--engine atheris|hypothesis] [--target NAME ...]
    python -m tests.fuzz api --examples 2000 --seed 1
    python -m tests.fuzz peers --frames 20000 --seed 1
    python -m tests.fuzz all --runs 80000 --examples 2000 --seed 1 --out fuzz-report.json

`decoders` runs each target of tests/fuzz/targets.py for `--runs` inputs (atheris, coverage-guided, one process
per target with libFuzzer's per-input timeout and memory limit; or Hypothesis). `api` starts a one-validator
network of real node processes on 127.0.0.1 and runs schemathesis against it with up to `--examples` generated
requests per operation and mode. `peers` starts three of four validators and has a fake peer holding the
fourth's node key send `--frames` mutated frames to one of them (tests/fuzz/peer.py). Every run prints, and with
`--out` writes as JSON, the inputs tried per target, the 5xx count and every finding; the exit status is 1 if
anything was found. Crash inputs are kept under `--work`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.conftest import PROJECT_ROOT
from tests.fuzz.corpus import corpus
from tests.fuzz.targets import BY_NAME, TARGETS, Target, check

#: libFuzzer limits for each atheris input: seconds, and resident memory of the process.
INPUT_TIMEOUT_S = 10
RSS_LIMIT_MB = 1024
_DONE = re.compile(r"Done (\d+) runs in")
_PROGRESS = re.compile(r"^#(\d+)\s", re.MULTILINE)


def run_atheris(target: Target, runs: int, seed: int, work: Path) -> dict[str, Any]:
    """Fuzz one target in its own process; return the runs done and the finding (if any)."""
    seeds = work / target.name / "corpus"
    seeds.mkdir(parents=True, exist_ok=True)
    for index, seed_bytes in enumerate(target.seeds(corpus())):
        (seeds / f"seed-{index}").write_bytes(seed_bytes)
    artifacts = work / target.name / "crashes"
    artifacts.mkdir(exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "tests.fuzz.atheris_harness",
        target.name,
        f"-runs={runs}",
        f"-seed={seed}",
        f"-timeout={INPUT_TIMEOUT_S}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-artifact_prefix={artifacts}/",
        "-print_final_stats=1",
        str(seeds),
    ]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
    log = done.stderr
    (work / target.name / "log.txt").write_text(log)
    match = _DONE.search(log)
    progress = _PROGRESS.findall(log)
    tried = int(match.group(1)) if match else int(progress[-1]) if progress else 0
    finding = None
    if done.returncode != 0:
        crash = next(iter(sorted(artifacts.iterdir())), None)
        tail = log[log.find("=== Uncaught Python exception") :] if "Uncaught Python exception" in log else log[-3000:]
        finding = {"exit": done.returncode, "input": str(crash) if crash else None, "report": tail[:3000]}
    return {"engine": "atheris", "inputs": tried, "finding": finding}


def run_hypothesis(target: Target, runs: int, seed: int) -> dict[str, Any]:
    """Fuzz one target in this process with Hypothesis (shrinks a finding to a small input)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as with_seed

    from tests.fuzz.mutations import hostile

    count = [0]

    @with_seed(seed)
    @settings(
        max_examples=runs,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=hostile(target.seeds(corpus()), json_seeds=target.json, structured=target.structured))
    def fuzz(data: bytes) -> None:
        count[0] += 1
        check(target, data)

    try:
        fuzz()
    except Exception as exc:  # a finding: report it with the shrunk input Hypothesis printed
        return {"engine": "hypothesis", "inputs": count[0], "finding": {"report": f"{type(exc).__name__}: {exc}"}}
    return {"engine": "hypothesis", "inputs": count[0], "finding": None}


def fuzz_decoders(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for target in [BY_NAME[name] for name in args.target] if args.target else TARGETS:
        started = time.monotonic()
        if args.engine == "atheris":
            result = run_atheris(target, args.runs, args.seed, work)
        else:
            result = run_hypothesis(target, args.runs, args.seed)
        result["seconds"] = round(time.monotonic() - started, 1)
        results[target.name] = result
        print(f"{target.name}: {result['inputs']} inputs, {'FINDING' if result['finding'] else 'ok'}", flush=True)
    return results


def fuzz_api_run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from tests.fuzz.api import fuzz_api, fuzz_node

    started = time.monotonic()
    with fuzz_node(work / "api-net") as node:
        report = fuzz_api(node.url, examples=args.examples, seed=args.seed)
    summary = report.summary()
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(f"api: {report.requests} requests, {report.server_errors} 5xx, {len(report.failures)} failures", flush=True)
    return summary


def fuzz_peers_run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import asyncio

    from tests.fuzz.peer import fuzz_peer
    from tests.integration.cluster import Cluster

    started = time.monotonic()
    cluster = Cluster.create(work / "peer-net")
    honest = cluster.validators[:3]
    try:
        cluster.start(*honest)
        cluster.wait_height(1)
        before = cluster.height(honest[0])
        report = asyncio.run(fuzz_peer(cluster, honest[0], args.frames, args.seed))
        cluster.wait_progress(3, honest)
        summary = {
            "frames": sum(report.sent.values()),
            "sent": report.sent,
            "received": report.received,
            "still_connected": report.still_connected,
            "heights_committed": cluster.height(honest[0]) - before,
            "target_running": honest[0].running,
            "refusals_counted": cluster.metric(honest[0], "credledger_peer_errors_total", reason="malformed"),
        }
    finally:
        cluster.close()
    summary["logged_errors"] = cluster.logged_errors()[:10]
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(f"peers: {summary['frames']} frames, {summary['heights_committed']} heights committed meanwhile", flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["decoders", "api", "peers", "all"])
    parser.add_argument("--runs", type=int, default=10_000, help="inputs per decoder target")
    parser.add_argument("--examples", type=int, default=200, help="generated requests per API operation and mode")
    parser.add_argument("--frames", type=int, default=2_000, help="mutated frames the fake peer sends")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engine", choices=["atheris", "hypothesis"], default="atheris")
    parser.add_argument("--target", action="append", choices=sorted(BY_NAME), help="only these decoder targets")
    parser.add_argument("--work", type=Path, help="directory for corpora, logs and crash inputs (default: temporary)")
    parser.add_argument("--out", type=Path, help="write the report here as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="credledger-fuzz-") as tmp:
        work = (args.work or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {"seed": args.seed, "command": " ".join(sys.argv)}
        if args.what in ("decoders", "all"):
            report["decoders"] = fuzz_decoders(args, work)
        if args.what in ("api", "all"):
            report["api"] = fuzz_api_run(args, work)
        if args.what in ("peers", "all"):
            report["peers"] = fuzz_peers_run(args, work)
        peers = report.get("peers", {})
        peer_failed = bool(peers) and (bool(peers["logged_errors"]) or not peers["target_running"])
        decoder_inputs = sum(r["inputs"] for r in report.get("decoders", {}).values())
        api_requests = report.get("api", {}).get("requests", 0)
        findings = [n for n, r in report.get("decoders", {}).items() if r["finding"]]
        report["totals"] = {
            "decoder_inputs": decoder_inputs,
            "api_requests": api_requests,
            "peer_frames": peers.get("frames", 0),
            "inputs": decoder_inputs + api_requests + peers.get("frames", 0),
            "server_errors": report.get("api", {}).get("server_errors", 0),
            "decoder_findings": findings,
            "api_failures": len(report.get("api", {}).get("failures", {})),
            "peer_failure": peer_failed,
        }
        text = json.dumps(report, indent=1)
        if args.out:
            args.out.write_text(text + "\n")
        print(json.dumps(report["totals"], indent=1))
    return 1 if findings or report["totals"]["api_failures"] or peer_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
