"""`ffo why [EVENT | --last]`: one transition explained in a paragraph, with the evidence from the log.

EVENT is `stream:seq` as `ffo events` shows it (``vrrp:57``); `--last` takes the latest transition.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

from ffo.cli.events import describe_loaded
from ffo.cli.logsource import Loaded, add_source_arguments, events_dir, load_records
from ffo.cli.replay import vrrp_streams
from ffo.vrrp.why import Logged, NotATransitionError, explain, last_transition

WIDTH = 100


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "why",
        help="explain one transition from the event log",
        description="Explains a transition: what the node heard and missed, which timer fired and how late, "
        "the priorities involved, and what the node did.",
    )
    add_source_arguments(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("event", nargs="?", metavar="EVENT", help="stream:seq, as shown by ffo events")
    which.add_argument("--last", action="store_true", help="the latest transition")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    directory = events_dir(args, "why")
    if isinstance(directory, int):
        return directory
    records = list(load_records(directory, "why"))
    streams = {
        name: [
            Logged(id=loaded.record.id, mono_ns=loaded.record.mono_ns, ts_ns=loaded.record.ts_ns, record=record)
            for loaded, record in pairs
        ]
        for name, pairs in vrrp_streams(records).items()
    }
    target = args.event
    if args.last:
        target = _latest_transition(streams)
        if target is None:
            print("ffo why: no transition in this log", file=sys.stderr)
            return 1
    stream_name = next((name for name, stream in streams.items() if any(item.id == target for item in stream)), None)
    if stream_name is None:
        print(f"ffo why: {target}: no such VRRP event in this log (see ffo events)", file=sys.stderr)
        return 2
    related = [_related_text(loaded) for loaded in records if loaded.record.cause == target]
    try:
        paragraphs = explain(streams[stream_name], target, related)
    except NotATransitionError as error:
        print(f"ffo why: {error}", file=sys.stderr)
        return 2
    for paragraph in paragraphs:
        print(textwrap.fill(paragraph, WIDTH))
        print()
    return 0


def _latest_transition(streams: dict[str, list[Logged]]) -> str | None:
    best: tuple[int, str] | None = None
    for stream in streams.values():
        found = last_transition(stream)
        if found is None:
            continue
        at = next(item.mono_ns for item in stream if item.id == found)
        if best is None or at > best[0]:
            best = (at, found)
    return best[1] if best else None


def _related_text(loaded: Loaded) -> str:
    described = describe_loaded(loaded)
    return f"{loaded.record.stream}:{loaded.record.seq} {loaded.record.type} {described.summary}"
