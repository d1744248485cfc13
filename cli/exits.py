"""Exit codes and the usage error, kept apart from everything heavier so that `credledger --version` and
`credledger --help` import nothing but the standard library.

Exit codes (DESIGN §10): 0 success; 1 the ledger refused (the rule and detail are printed); 2 usage error (bad
arguments, unreadable or malformed local files); 3 the node could not be reached or could not answer. A reader
that closes the pipe early (`credledger verify ... | head`) ends the command quietly with 141, the status a shell
gives any Unix tool stopped by SIGPIPE; Ctrl-C (SIGINT), in a command that does not take it as its way to stop,
ends it with one line and 130, as a shell reports a tool SIGINT stopped.
"""

from __future__ import annotations

import signal
import sys

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
EXIT_INTERRUPTED = 128 + signal.SIGINT


class UsageError(Exception):
    """A command was given something it cannot use (exit code 2); the message says what and why."""


def error(message: str) -> None:
    """A message for the person at the terminal, on stderr."""
    print(f"credledger: {message}", file=sys.stderr)
