"""`credledger issue --batch DIR|FILE.jsonl`: issue thousands of credentials at once, resumably.

The work is `verifier.batch.BatchIssuer`'s (the same from Python); this module reads the options, draws the
progress bar, prints the summary and writes it to OUT/summary.json. Exit codes: 0 every credential issued and its
receipt written; 1 some were refused by the ledger or could not be read (each is named); 2 usage error; 3 the node
could not be reached (run the same command again: it resumes from the journal in OUT).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from credledger.verifier.client import NodeClient

from credledger.cli.common import EXIT_OK, EXIT_REFUSED, UsageError, load_signing_key, print_json, time_argument

#: With the node holding each request until commit (`api.commit_wait_ms`, 30 s by default), the client waits longer.
BATCH_TIMEOUT = 90.0
SUMMARY_FILE = "summary.json"


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `issue` that only bulk issuance takes."""
    group = parser.add_argument_group("bulk issuance (--batch)")
    group.add_argument(
        "--batch",
        type=Path,
        metavar="DIR|FILE.jsonl",
        help="issue every credential file in DIR, or every line of FILE.jsonl, and keep a receipt for each",
    )
    group.add_argument(
        "--out", type=Path, metavar="DIR", help="with --batch: where the journal and receipts go (default: INPUT.out)"
    )
    group.add_argument("--concurrency", type=int, default=4, metavar="N", help="with --batch: requests in flight")
    group.add_argument(
        "--batch-size", type=int, metavar="N", help="with --batch: events per request (default: the node's limit)"
    )
    group.add_argument(
        "--read-node",
        action="append",
        default=[],
        metavar="URL",
        help="with --batch: fetch receipts from this node too, in turn with --node (repeatable)",
    )
    group.add_argument("--genesis", metavar="FILE", help="with --batch: verify every receipt against this genesis")
    group.add_argument(
        "--stop-on-error", action="store_true", help="with --batch: send nothing if any file or line cannot be read"
    )
    group.add_argument(
        "--sign-workers",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="with --batch --sign: processes that sign (default: one per core)",
    )
    group.add_argument("--no-progress", action="store_true", help="with --batch: no progress bar")


def run_batch(args: argparse.Namespace) -> int:
    from credledger.verifier.batch import BadInput, BatchIssuer, Credential  # noqa: PLC0415
    from credledger.verifier.batchinput import read_batch  # noqa: PLC0415

    source: Path = args.batch
    _refuse_single_options(args)
    out: Path = args.out or source.with_name(source.name.removesuffix(".jsonl") + ".out")
    if source.is_dir() and out.resolve() == source.resolve():
        raise UsageError("--out must not be the input folder: the receipts would be read as credentials next time")
    if min(args.concurrency, args.sign_workers, args.batch_size or 1) < 1:
        raise UsageError("--concurrency, --batch-size and --sign-workers must be at least 1")
    try:
        # Read as they are issued, unless every input must be checked before anything is sent.
        credentials: Iterable[Credential | BadInput] = read_batch(source, raw=args.raw)
    except OSError as exc:
        raise UsageError(f"--batch {source}: cannot read it ({exc.strerror})") from None
    if args.stop_on_error:
        credentials = list(credentials)
        bad = [c for c in credentials if isinstance(c, BadInput)]
        if bad:
            for item in bad:
                print(f"{item.source}: {item.detail}", file=sys.stderr)
            raise UsageError(
                f"{len(bad)} of {len(credentials)} inputs cannot be read; nothing was sent (--stop-on-error)"
            )
    key = load_signing_key(args.key)
    client = _client(args.node, args.timeout or BATCH_TIMEOUT)
    status = client.status()
    origin = args.origin or str(status["origin"])
    limits = status.get("limits")
    batch_size = args.batch_size or int(limits.get("batch_events", 1000) if isinstance(limits, dict) else 1000)
    progress = _progress(source, args.no_progress)
    issuer = BatchIssuer(
        client,
        key,
        out,
        origin=origin,
        expires_ms=time_argument(args.expires, "--expires") if args.expires else None,
        achievement=_achievement(args.achievement),
        raw=args.raw,
        signer=_signer(client, key, args.sign_workers) if args.sign else None,
        concurrency=args.concurrency,
        batch_size=batch_size,
        genesis=_genesis(args.genesis),
        progress=progress.advance if progress else None,
        readers=[_client(url, args.timeout or BATCH_TIMEOUT) for url in args.read_node],
    )
    report = issuer.run(credentials)
    if progress:
        progress.finish()
    summary = _summary(report, out)
    (out / SUMMARY_FILE).write_text(_summary_text(summary), encoding="utf-8")
    if args.json:
        print_json(summary)
    else:
        _print(report, out)
    return EXIT_OK if report.ok else EXIT_REFUSED


def _client(url: str, timeout: float) -> NodeClient:
    from credledger.verifier.client import NodeClient  # noqa: PLC0415

    try:
        return NodeClient(url, timeout=timeout)
    except ValueError as exc:
        raise UsageError(f"{url}: {exc}") from None


def _refuse_single_options(args: argparse.Namespace) -> None:
    if args.credential is not None:
        raise UsageError("give CREDENTIAL or --batch, not both")
    if args.component:
        raise UsageError("--component is not taken with --batch (each credential of a batch stands alone)")
    if args.output is not None or args.force:
        raise UsageError("with --batch the signed credentials go to --out with the receipts; -o/--force do not apply")
    if args.sign and args.raw:
        raise UsageError("--sign signs JSON-LD credentials; --raw does not apply")


def _achievement(text: str | None) -> tuple[str, int] | None:
    from credledger.cli.credentials import achievement_argument  # noqa: PLC0415

    achievement, version = achievement_argument(text)
    return None if achievement is None or version is None else (achievement, version)


def _signer(client: Any, key: Any, workers: int) -> Any:
    from credledger.cli.signing import member_record  # noqa: PLC0415
    from credledger.verifier.batchsign import standard_signer  # noqa: PLC0415

    used = [int(entry["used"]) for entry in client.status_usage(key.name).get("lists", [])]
    return standard_signer(member_record(client, key.name), key, used, workers=workers)


def _genesis(path: str | None) -> Any:
    if path is None:
        return None
    from credledger.ledger.errors import ConfigError  # noqa: PLC0415
    from credledger.ledger.genesis import load_genesis  # noqa: PLC0415

    try:
        return load_genesis(path)
    except (ConfigError, ValueError) as exc:
        raise UsageError(f"--genesis: {exc}") from None


def _progress(source: Path, hidden: bool) -> Any:
    from credledger.cli.progress import Progress  # noqa: PLC0415
    from credledger.verifier.batchinput import count_inputs  # noqa: PLC0415

    if hidden or not sys.stderr.isatty():
        return None
    try:
        total = count_inputs(source)
    except OSError as exc:
        raise UsageError(f"--batch {source}: cannot read it ({exc.strerror})") from None
    return Progress(total, unit="credentials")


def _summary(report: Any, out: Path) -> dict[str, Any]:
    return {
        "out": str(out),
        "seconds": round(report.seconds, 3),
        "issued": report.count("issued"),
        "refused": report.count("refused"),
        "failed": report.count("failed"),
        "resumed": sum(1 for o in report.outcomes if o.resumed),
        "credentials": [o.to_json() for o in report.outcomes],
        "written_ms": int(time.time() * 1000),
    }


def _summary_text(summary: dict[str, Any]) -> str:
    """`summary.json`: a field a line, then the credentials, one a line (indenting each credential's fields too
    takes seconds for 100,000 of them, after the last receipt is written)."""
    fields = json.dumps({k: v for k, v in summary.items() if k != "credentials"}, indent=1).removesuffix("\n}")
    credentials = ",\n  ".join(json.dumps(c) for c in summary["credentials"])
    listed = f"[\n  {credentials}\n ]" if credentials else "[]"
    return f'{fields},\n "credentials": {listed}\n}}\n'


def _print(report: Any, out: Path) -> None:
    for outcome in report.outcomes:
        if outcome.status != "issued":
            rule = f" ({outcome.rule})" if outcome.rule else ""
            print(f"{outcome.source}: {outcome.status}{rule}: {outcome.detail}", file=sys.stderr)
    total = len(report.outcomes)
    resumed = sum(1 for o in report.outcomes if o.resumed and o.status == "issued")
    earlier = f" ({resumed} by an earlier run)" if resumed else ""
    print(
        f"issued {report.count('issued')} of {total} credentials{earlier}, refused {report.count('refused')}, "
        f"failed {report.count('failed')}, in {report.seconds:.1f} s; receipts and journal in {out}"
    )
