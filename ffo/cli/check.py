"""`ffo check -c FILE`: validate a configuration file without running anything.

Prints `ok` (exit 0), or one `PATH: reason` line per problem on stdout (exit 2: bad config); a file that
cannot be read at all is reported on stderr (exit 3: could not run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ffo.config import ConfigUnreadable, load_config
from ffo.errors import ConfigError

EXIT_OK = 0
EXIT_BAD_CONFIG = 2
EXIT_CANNOT_RUN = 3


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate a configuration file",
        description="Validate a configuration file: print `ok`, or every problem as `PATH: reason`.",
    )
    parser.add_argument("-c", "--config", required=True, type=Path, metavar="FILE", help="the TOML config")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path: Path = args.config
    try:
        load_config(path)
    except ConfigUnreadable as error:
        print(f"ffo check: {error}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except ConfigError as error:
        for key_path, reason in error.problems:
            print(f"{key_path}: {reason}")
        return EXIT_BAD_CONFIG
    print("ok")
    return EXIT_OK
