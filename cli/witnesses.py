"""The witness-policy options that `verify`, `proof` and `monitor` share: `--witness VKEY` (repeatable) with
`--witness-quorum K`, or `--witness-policy FILE` (C2SP tlog-policy)."""

from __future__ import annotations

import argparse
from pathlib import Path

from credledger.cli.exits import UsageError
from credledger.ledger.errors import DecodeError
from credledger.ledger.witnesspolicy import MAX_POLICY_BYTES, WitnessPolicy


def add_witness_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("witnesses", "require cosignatures of outside witnesses on the checkpoint")
    group.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="VKEY",
        help="a witness's cosigner vkey (repeat for several)",
    )
    group.add_argument(
        "--witness-quorum",
        type=int,
        metavar="K",
        help="how many of the --witness keys must have cosigned (default: all of them)",
    )
    group.add_argument("--witness-policy", metavar="FILE", help="a C2SP tlog-policy file instead of --witness")


def witness_policy(args: argparse.Namespace) -> WitnessPolicy | None:
    """The policy the options ask for, or None when they ask for none; `UsageError` says what is wrong."""
    if args.witness_policy is not None:
        if args.witness or args.witness_quorum is not None:
            raise UsageError("--witness-policy cannot be combined with --witness or --witness-quorum")
        path = Path(args.witness_policy)
        try:
            with path.open("rb") as file:
                data = file.read(MAX_POLICY_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"--witness-policy {path}: cannot read it ({exc.strerror})") from None
        try:
            return WitnessPolicy.parse(data)
        except DecodeError as exc:
            raise UsageError(f"--witness-policy {path}: {exc}") from None
    if not args.witness:
        if args.witness_quorum is not None:
            raise UsageError("--witness-quorum needs at least one --witness")
        return None
    quorum = len(args.witness) if args.witness_quorum is None else args.witness_quorum
    try:
        return WitnessPolicy.flat((), args.witness, quorum)
    except DecodeError as exc:
        raise UsageError(f"--witness: {exc}") from None
