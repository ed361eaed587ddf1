"""`ffo events`: the node's merged timeline, one line (or one JSON object) per event.

Text: ``TIME  NODE  STREAM:SEQ  INSTANCE  TYPE  SUMMARY — CAUSE``. JSON (one object per line, CLI.md): `time`
(ISO 8601 UTC), `mono_ns`, `node`, `stream`, `seq`, `type`, `instance`, `cause` (the sentence), `cause_data`
(the structured cause), `caused_by` (the id of the record that led to it), then the event's own fields.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ffo.catalog import load_event_types
from ffo.cli.logsource import Loaded, add_source_arguments, decode, events_dir, load_records, report_corruption
from ffo.config import parse_duration
from ffo.eventlog.describe import Described, describe
from ffo.eventlog.reader import Corruption, follow
from ffo.rpc.timeline import clock_offsets, cluster_timeline, replica_nodes

FOLLOW_POLL_S = 0.2


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "events",
        help="the node's event timeline, from the event log",
        description="Prints every event of every actor's stream, merged by time. Works whether or not the "
        "daemon runs. T is ISO 8601 (2026-11-27T03:00:00Z) or a duration ago (10m, 2h).",
    )
    add_source_arguments(parser)
    parser.add_argument("--since", metavar="T", help="only events at or after T")
    parser.add_argument("--until", metavar="T", help="only events before T")
    parser.add_argument("--instance", metavar="NAME", help="only events of this VRRP instance")
    parser.add_argument("--type", metavar="T", help="only this type: full (vrrp.transition) or last part (transition)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--follow", action="store_true", help="keep printing new events as they are written")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="merge in every peer's events resynced over RPC, on this node's clock (offsets measured by RPC)",
    )
    parser.set_defaults(run=run)


def parse_time(text: str, now_ns: int) -> int:
    """Wall-clock ns from ISO 8601 (UTC unless it says otherwise) or from a duration meaning "that long ago"."""
    try:
        return now_ns - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither an ISO 8601 time nor a duration such as 10m") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1_000_000) * 1000


def iso(ts_ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(ts_ns // 1000 / 1e6, tz=datetime.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def type_matches(wanted: str, type_name: str) -> bool:
    return type_name == wanted or type_name.rsplit(".", 1)[-1] == wanted or type_name.startswith(wanted + ".")


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON")


def as_json(loaded: Loaded, described: Described, offset_ns: int | None = None) -> str:
    record = loaded.record
    head: dict[str, object] = {
        "time": iso(record.ts_ns - (offset_ns or 0)),
        "mono_ns": record.mono_ns,
        "node": record.node,
        "stream": record.stream,
        "seq": record.seq,
        "type": record.type,
        "instance": described.instance,
        "cause": described.cause,
        "cause_data": described.cause_data,
        "caused_by": record.cause,
    }
    if offset_ns is not None:  # --cluster: `time` is on this node's clock; the node's own stamp is kept
        head["clock_offset_ms"] = offset_ns / 1e6
        head["recorded_time"] = iso(record.ts_ns)
    if loaded.problem is not None:
        head["problem"] = loaded.problem
    fields = {key: value for key, value in record.fields.items() if key not in head}
    return json.dumps(head | fields, default=_json_default, ensure_ascii=False)


def as_text(loaded: Loaded, described: Described, offset_ns: int | None = None) -> str:
    record = loaded.record
    when = iso(record.ts_ns - (offset_ns or 0))
    line = f"{when}  {record.node}  {record.id:<10} {described.instance or '-':<10} {record.type}  "
    line += described.summary
    if described.cause:
        line += f" — {described.cause}"
    return line


def describe_loaded(loaded: Loaded) -> Described:
    if loaded.message is None:
        instance = loaded.record.fields.get("instance")
        summary = f"(unreadable here: {loaded.problem}) {loaded.record.fields}"
        return Described(instance=instance if isinstance(instance, str) else None, summary=summary)
    return describe(loaded.message)


def run(args: argparse.Namespace) -> int:
    directory = events_dir(args, "events")
    if isinstance(directory, int):
        return directory
    now_ns = time.time_ns()
    try:
        since = parse_time(args.since, now_ns) if args.since else None
        until = parse_time(args.until, now_ns) if args.until else None
    except ValueError as error:
        print(f"ffo events: {error}", file=sys.stderr)
        return 2

    def wanted(loaded: Loaded, described: Described) -> bool:
        record = loaded.record
        if since is not None and record.ts_ns < since:
            return False
        if until is not None and record.ts_ns >= until:
            return False
        if args.instance is not None and described.instance != args.instance:
            return False
        return args.type is None or type_matches(args.type, record.type)

    show: Callable[..., str] = as_json if args.json else as_text
    if args.cluster:
        if args.follow:
            print("ffo events: --follow cannot be combined with --cluster", file=sys.stderr)
            return 2
        return show_cluster(directory, wanted, show, json_output=args.json)
    for loaded in _source(directory, args.follow):
        described = describe_loaded(loaded)
        if wanted(loaded, described):
            print(show(loaded, described), flush=args.follow)
    return 0


def _source(directory: Path, keep_following: bool) -> Iterator[Loaded]:
    last_seq: dict[str, int] = {}
    for loaded in load_records(directory, "events"):
        last_seq[loaded.record.stream] = loaded.record.seq
        yield loaded
    if not keep_following:
        return
    try:
        for item in follow(directory, poll_interval_s=FOLLOW_POLL_S, after=last_seq):
            if isinstance(item, Corruption):
                report_corruption("events", item)
            else:
                yield decode(item)
    except KeyboardInterrupt:
        return


def show_cluster(
    directory: Path, wanted: Callable[[Loaded, Described], bool], show: Callable[..., str], *, json_output: bool
) -> int:
    """The merged timeline of this node and every replica, each peer's measured clock offset applied.

    Text output starts with one `#` line per node saying which offset was applied (JSON carries it on every
    line, as `clock_offset_ms`, with the node's own stamp as `recorded_time`).
    """
    load_event_types()
    offsets = clock_offsets(directory)
    if not json_output:
        for node in replica_nodes(directory.parent):
            known = offsets.get(node)
            if known is None or known.offset_ns is None:
                print(f"# {node}: no clock offset measured (its history came through another peer): own clock")
            else:
                rtt = "" if known.rtt_ns is None else f" ± {known.rtt_ns / 2e6:.3f} ms"
                print(
                    f"# {node}: clock offset {known.offset_ns / 1e6:+.3f} ms{rtt} "
                    f"(measured {iso(known.measured_ts_ns or 0)}), applied"
                )
    for item in cluster_timeline(directory, offsets):
        if isinstance(item, Corruption):
            report_corruption("events", item)
            continue
        loaded = decode(item.record)
        described = describe_loaded(loaded)
        if wanted(loaded, described):
            print(show(loaded, described, item.offset_ns))
    return 0
