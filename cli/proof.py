"""`credledger proof`: save a credential's proof bundle (a receipt the holder keeps beside the credential), and the
existence part of it as a C2SP tlog-proof file.

Exit codes: 0 saved; 1 saved, but it proves the credential unknown (there is no issue to keep a proof of);
2 usage error; 3 no node gave a bundle (one that verifies, with --genesis).
"""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from pathlib import Path

from credledger.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    UsageError,
    add_raw_argument,
    digest_argument,
    error,
    write_new,
)
from credledger.cli.witnesses import add_witness_arguments, witness_policy
from credledger.ledger import tlogproof
from credledger.ledger.bundle import Bundle
from credledger.ledger.errors import ConfigError
from credledger.ledger.genesis import load_genesis
from credledger.ledger.witnesspolicy import WitnessPolicy
from credledger.verifier.client import DEFAULT_TIMEOUT
from credledger.verifier.credential import SourceFault, fetch_bundle, verify_credential

DEFAULT_NODE = "http://127.0.0.1:8700"
#: Saving a receipt needs a bundle that verifies, however old: freshness matters when it is used, not kept.
_ANY_AGE = timedelta(days=365_000)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "proof",
        help="save a credential's proof bundle to keep beside it",
        description="Fetch a credential's credledger-proof/v1 bundle from a node and save it; any verifier can check "
        "it offline later with `credledger verify --bundle`. The existence part (the issue event, its inclusion "
        "proof and the certified checkpoint) is also written as a C2SP tlog-proof file.",
        epilog="Exit codes: 0 saved; 1 saved, but the credential is unknown to the ledger; 2 usage error; "
        "3 no node gave a bundle (one that verifies, with --genesis).",
    )
    parser.add_argument("credential", metavar="CREDENTIAL", help="credential file, or its digest as 64 hex digits")
    parser.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="URL",
        help=f"node to fetch from (repeatable: asked in turn; default: $CREDLEDGER_NODE or {DEFAULT_NODE})",
    )
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the bundle (JSON)")
    parser.add_argument(
        "--tlog-proof",
        metavar="FILE",
        help=f"where to write the C2SP tlog-proof (default: the output path with {tlogproof.EXTENSION})",
    )
    parser.add_argument("--genesis", metavar="FILE", help="verify the bundle against this genesis before saving it")
    parser.add_argument("--force", action="store_true", help="replace existing files")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help="per node")
    add_witness_arguments(parser)
    add_raw_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    nodes = list(args.node) or [os.environ.get("CREDLEDGER_NODE", DEFAULT_NODE)]
    digest = digest_argument(args.credential, raw=args.raw)
    output = Path(args.output)
    tlog_path = Path(args.tlog_proof) if args.tlog_proof else output.with_suffix(tlogproof.EXTENSION)
    try:
        policy = witness_policy(args)
        if policy is not None and args.genesis is None:
            raise UsageError("--witness and --witness-policy need --genesis: the bundle is verified before saving")
        bundle, source, faults = _obtain(digest, nodes, args.genesis, args.timeout, policy)
    except (ValueError, ConfigError) as exc:
        raise UsageError(str(exc)) from None
    for fault in faults:
        step = f" (step {fault.step})" if fault.step else ""
        error(f"{fault.source}: {fault.kind}{step}: {fault.detail}")
    if bundle is None:
        error("no node gave a proof bundle" + (" that verifies" if args.genesis else ""))
        return EXIT_UNREACHABLE
    write_new(output, bundle.dumps() + "\n", force=args.force)
    print(f"saved the proof bundle from {source} to {output}")
    if not bundle.events:
        print("the bundle proves this credential was never issued on the ledger; no tlog-proof written")
        return EXIT_REFUSED
    write_new(tlog_path, tlogproof.from_bundle(bundle).format(), force=args.force)
    print(f"saved the issue event's C2SP tlog-proof to {tlog_path}")
    return EXIT_OK


def _obtain(
    digest: bytes, nodes: list[str], genesis_path: str | None, timeout: float, policy: WitnessPolicy | None
) -> tuple[Bundle | None, str | None, tuple[SourceFault, ...]]:
    if genesis_path is None:
        fetched = fetch_bundle(digest, nodes, timeout=timeout)
        return fetched.bundle, fetched.source, fetched.faults
    report = verify_credential(
        digest.hex(),
        genesis=load_genesis(genesis_path),
        nodes=nodes,
        max_age=_ANY_AGE,
        timeout=timeout,
        witnesses=policy,
    )
    return report.bundle, report.source, report.faults
