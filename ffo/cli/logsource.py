"""Where `ffo events`, `ffo replay` and `ffo why` find the event log, and how they read it.

`-c FILE` reads the node's `state_dir` from its config; `--dir DIR` names either a state directory (holding
`events/`) or the events directory itself. Reading never needs the daemon: the files are the log.
Damage (a torn tail, a corrupt record) is reported on stderr and reading goes on with every complete record.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from ffo.catalog import load_event_types
from ffo.cli.run import load
from ffo.eventlog.reader import Corruption, read_merged
from ffo.eventlog.record import Record, RecordDecodeError, record_message

DEFAULT_STATE_DIR = Path("/var/lib/ffo")


def add_source_arguments(parser: Any) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-c", "--config", type=Path, metavar="FILE", help="read state_dir from this config")
    source.add_argument(
        "--dir", type=Path, metavar="DIR", help=f"a state directory or its events/ (default {DEFAULT_STATE_DIR})"
    )


def events_dir(args: argparse.Namespace, command: str) -> Path | int:
    """The events directory the arguments name, or an exit code after saying what is wrong."""
    if args.config is not None:
        config = load(args.config)
        if isinstance(config, int):
            return config
        directory = config.events_dir
    else:
        given: Path = args.dir or DEFAULT_STATE_DIR
        directory = given / "events" if (given / "events").is_dir() else given
    if not directory.is_dir():
        print(f"ffo {command}: {directory}: no event log here", file=sys.stderr)
        return 3
    return directory


@attrs.frozen(kw_only=True)
class Loaded:
    """A record and its message (None when this version cannot read its type: `problem` says why)."""

    record: Record
    message: object | None
    problem: str | None = None


def report_corruption(command: str, damage: Corruption) -> None:
    print(f"ffo {command}: {damage.describe()}", file=sys.stderr)


def load_records(directory: Path, command: str) -> Iterator[Loaded]:
    """Every record of every stream under `directory`, merged by time; damage reported on stderr."""
    load_event_types()
    for item in read_merged(directory):
        if isinstance(item, Corruption):
            report_corruption(command, item)
            continue
        yield decode(item)


def decode(record: Record) -> Loaded:
    try:
        return Loaded(record=record, message=record_message(record))
    except RecordDecodeError as error:
        return Loaded(record=record, message=None, problem=str(error))
