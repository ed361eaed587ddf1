"""The `ffo` command line: one subcommand per module under `ffo.cli`.

Each subcommand module exposes `add_parser(subparsers)` and `run(args) -> int`; the exit codes follow the
contract: 0 success, 1 a problem found, 2 bad usage or config, 3 could not run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

SUBCOMMANDS = ("check", "events", "keygen", "lab", "pcap", "replay", "run", "sim", "status", "why")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ffo", description="Fast FailOver: VRRPv3 high availability")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"ffo.cli.{name}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except BrokenPipeError:
        # The reader went away (`ffo pcap x | head`): not an error. Keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
