"""One decoder target under atheris (coverage-guided, libFuzzer's engine): run as a process of its own.

    python -m tests.fuzz.atheris_harness TARGET [libFuzzer flags] CORPUS_DIR

The credledger modules are imported instrumented, so libFuzzer learns which inputs reach new branches and mutates
those further; the seeds in CORPUS_DIR start it from valid inputs. An input that makes the target raise anything
but a `CredledgerError` ends the run with the traceback and the input saved as `crash-<sha1>` (libFuzzer's own
reporting); `-runs`, `-timeout` and `-rss_limit_mb` bound the run, each input's time and the memory.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["ledger", "node", "tests.fuzz.targets"]):
    from tests.fuzz.targets import BY_NAME, check


def main() -> None:
    name, flags = sys.argv[1], sys.argv[2:]
    target = BY_NAME[name]

    def one_input(data: bytes) -> None:
        check(target, data)

    atheris.Setup([sys.argv[0], *flags], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
