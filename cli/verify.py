"""`credledger verify`: check a credential offline against the genesis file, with a proof from any node or a file.

Exit codes: 0 valid (with a fresh enough checkpoint); 1 not valid (revoked, suspended, expired or unknown; a signed
credential whose own proof fails, or whose status list disagrees with the ledger);
2 usage error; 3 could not verify (no node gave a proof that verifies, or the only proofs are stale).
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import timedelta

from credledger.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    UsageError,
    add_raw_argument,
    digest_argument,
)
from credledger.cli.learner import is_record_file, verify_record_file
from credledger.cli.witnesses import add_witness_arguments, witness_policy
from credledger.ledger.errors import ConfigError, DecodeError
from credledger.verifier.client import DEFAULT_TIMEOUT
from credledger.verifier.credential import DEFAULT_MAX_AGE, UNVERIFIED, Report, verify_credential
from credledger.verifier.statuslists import INVALID_STATUS_LIST

DEFAULT_NODE = "http://127.0.0.1:8700"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?")
_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_WORDS = {
    "valid": "VALID",
    "revoked": "REVOKED",
    "suspended": "SUSPENDED",
    "expired": "EXPIRED",
    "unknown": "UNKNOWN (never issued on this ledger)",
    UNVERIFIED: "COULD NOT VERIFY",
    INVALID_STATUS_LIST: "INVALID STATUS LIST (the list served disagrees with the ledger, or is not the issuer's)",
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "verify",
        help="verify a credential offline against the genesis file",
        description="Fetch a proof bundle from a node (asking each --node in turn) or read one kept beside the "
        "credential, verify it offline against the genesis file -- trusting no node -- and print the status with "
        "every check made.",
        epilog="Exit codes: 0 valid; 1 not valid (revoked, suspended, expired, unknown); 2 usage error; "
        "3 could not verify (no node answered with a proof that verifies, or the proof is stale).",
    )
    parser.add_argument(
        "credential",
        metavar="CREDENTIAL",
        help="credential file (JSON: RFC 8785 + SHA-256; other: SHA-256 of its bytes), or its digest as 64 hex digits; "
        "or a learner's record saved by `credledger record`, verified offline as a whole",
    )
    parser.add_argument("--genesis", required=True, metavar="FILE", help="the network's genesis file: the trust root")
    parser.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="URL",
        help="a node to fetch the proof from (repeatable: asked in turn; default: $CREDLEDGER_NODE or "
        f"{DEFAULT_NODE} when no --bundle is given)",
    )
    parser.add_argument("--bundle", metavar="FILE", help="a proof bundle kept beside the credential (no network)")
    parser.add_argument(
        "--max-age",
        default=None,
        metavar="DURATION",
        help="how old a checkpoint may be for an answer that can still change: 90s, 15m, 2h, 30d "
        f"(default: {int(DEFAULT_MAX_AGE.total_seconds() // 60)}m); revoked and expired never go stale",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help="per node")
    parser.add_argument(
        "--status-list",
        action="append",
        default=[],
        metavar="FILE",
        help="a signed credential's Bitstring Status List credential as fetched from its URL (repeatable); it must "
        "agree with the ledger's certified state (lists not given are fetched from the node whose proof verified)",
    )
    parser.add_argument("--json", action="store_true", help="print a machine-readable report")
    add_witness_arguments(parser)
    add_raw_argument(parser)
    parser.set_defaults(func=run)


def parse_duration(text: str) -> timedelta:
    """A duration such as 90, 90s, 15m, 2h or 30d (plain numbers are seconds)."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise UsageError(f"--max-age: {text!r} is not a duration such as 90s, 15m, 2h or 30d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def exit_code(report: Report) -> int:
    """0 valid and fresh; 1 a certified answer that is not valid, or one without the witnesses' cosignatures the
    policy requires; 3 no verified answer, or a stale one."""
    if not report.verified and any(f.kind == "unwitnessed" for f in report.faults):
        return EXIT_REFUSED
    if not report.verified or report.stale:
        return EXIT_UNREACHABLE
    return EXIT_OK if report.status == "valid" else EXIT_REFUSED


def run(args: argparse.Namespace) -> int:
    if is_record_file(args.credential):
        return verify_record_file(args)
    nodes = list(args.node)
    if not nodes and args.bundle is None:
        nodes = [os.environ.get("CREDLEDGER_NODE", DEFAULT_NODE)]
    max_age = DEFAULT_MAX_AGE if args.max_age is None else parse_duration(args.max_age)
    digest = digest_argument(args.credential, raw=args.raw).hex()  # says which digest it computed
    # A JSON file is passed as itself, so that a signed credential's own proof and status lists are checked too.
    credential = digest if args.raw or _HEX64.fullmatch(args.credential) else args.credential
    try:
        report = verify_credential(
            credential,
            genesis=args.genesis,
            nodes=nodes,
            bundle=args.bundle,
            max_age=max_age,
            timeout=args.timeout,
            witnesses=witness_policy(args),
            status_lists=args.status_list,
        )
    except (ValueError, ConfigError, DecodeError) as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(report.to_json())
    else:
        print(render(report))
    return exit_code(report)


def stale_advice(report: Report) -> str:
    """What to do about a stale answer: get a fresh proof from a node, or accept an older one with --max-age."""
    advice = "fetch a fresh proof from a node (--node URL"
    if report.source is not None and not report.source.startswith(("http://", "https://")):
        advice += "; a kept bundle is as fresh as the day it was saved: renew it with `credledger proof`"
    advice += ")"
    if report.age_ms is not None:
        advice += f", or accept this older proof with --max-age {_duration_above(report.age_ms)}"
    return advice


def _duration_above(ms: int) -> str:
    """A --max-age a little above `ms` (a minute's margin), in the largest unit that fits: 16m, 4h, 31d."""
    seconds = max(ms, 0) // 1000 + 60
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{-(-seconds // size)}{unit}"
    return f"{seconds}s"


def render(report: Report) -> str:
    """The report for a person at a terminal."""
    data = report.to_dict()
    headline = _WORDS.get(report.status, report.status.upper())
    if report.stale:
        headline += " -- but STALE: the newest proof is older than --max-age"
    lines = [headline, f"  credential  {data['digest']}"]
    if report.stale:
        lines.append(f"  what to do  {stale_advice(report)}")
    if report.verdict is not None:
        issuer = f"{report.issuer_name} ({report.issuer})" if report.issuer_name else report.issuer
        if report.issuer:
            lines.append(f"  issuer      {issuer}")
            lines.append(f"  issued      {data['issued']} (block {report.verdict.issued_height})")
            lines.append(f"  expires     {data['expires'] or 'never'}")
        if data["status_changed"]:
            reason = f", reason {data['reason_name']}" if data["reason_name"] is not None else ""
            lines.append(f"  {report.status:<11} {data['status_changed']}{reason}")
        lines.append(f"  as of       {data['as_of']} (certified checkpoint at height {data['height']})")
        lines.append(f"  proof from  {report.source}")
    lines.append("checks")
    lines.extend(f"  {'ok' if c.ok else 'FAILED':<6} {c.step}: {c.detail}" for c in report.checks)
    misbehaving = report.misbehaving
    if misbehaving:
        lines.append("sources serving a proof that FAILS verification")
        lines.extend(f"  {f.source}: step {f.step}: {f.detail}" for f in misbehaving)
    others = [f for f in report.faults if f.kind != "invalid-proof"]
    if others:
        lines.append("sources that gave no proof")
        lines.extend(f"  {f.source}: {f.kind}: {f.detail}" for f in others)
    return "\n".join(lines)
