"""`ffo replay`: feed the recorded VRRP inputs through the current state machine; or ask "what if".

Without `--set`, every recorded transition and effect must be reproduced: the last line is
``replayed N events, N transitions, N divergences`` and the exit code is 1 when a divergence was found (the
first one is printed with both sides). With `--set KEY=VALUE` (an instance setting: priority,
advert_interval, preempt, accept, version) it prints the transitions the instance made and those it would have
made with those settings.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from typing import Any

from ffo.cli.events import iso
from ffo.cli.logsource import Loaded, add_source_arguments, events_dir, load_records
from ffo.config import parse_duration
from ffo.vrrp import timers
from ffo.vrrp.record import InputApplied, InstanceConfigured, PeriodicRun, TransitionMade, VrrpRecord
from ffo.vrrp.replay import Divergence, Entry, TimedTransition, replay, what_if

_BOOLEAN = {"true": True, "false": False, "on": True, "off": False, "yes": True, "no": False}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="check the event log against the current state machine, or ask what if",
        description="Feeds the recorded inputs of the VRRP stream through the state machine and compares "
        "every transition and effect. With --set, replays the external inputs with other settings.",
    )
    add_source_arguments(parser)
    parser.add_argument("--instance", metavar="NAME", help="only this instance")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="what if this instance setting had been different (priority=150, advert_interval=100ms, preempt=false)",
    )
    parser.set_defaults(run=run)


def parse_settings(pairs: list[str]) -> dict[str, object]:
    """`--set` pairs as InstanceConfig changes, with the config file's spelling of keys and values."""
    settings: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ValueError(f"--set {pair!r}: expected KEY=VALUE")
        if key in ("priority", "version", "vrid"):
            if not value.isdigit():
                raise ValueError(f"--set {key}: {value!r} is not a number")
            settings[key] = int(value)
        elif key == "advert_interval":
            ns = parse_duration(value)
            if ns % timers.NS_PER_CS:
                raise ValueError(f"--set advert_interval: {value} is not a multiple of 10ms")
            settings["advert_interval_cs"] = ns // timers.NS_PER_CS
        elif key in ("preempt", "accept"):
            if value.lower() not in _BOOLEAN:
                raise ValueError(f"--set {key}: {value!r} is not true or false")
            settings[key] = _BOOLEAN[value.lower()]
        else:
            raise ValueError(
                f"--set {key}: not a setting replay can change (priority, advert_interval, preempt, accept)"
            )
    return settings


def vrrp_streams(records: list[Loaded]) -> dict[str, list[tuple[Loaded, VrrpRecord]]]:
    """The VRRP records of each stream, in stream order."""
    kinds = (InstanceConfigured, TransitionMade, InputApplied, PeriodicRun)
    streams: dict[str, list[tuple[Loaded, VrrpRecord]]] = defaultdict(list)
    for loaded in records:
        if isinstance(loaded.message, kinds):
            streams[f"{loaded.record.node}/{loaded.record.stream}"].append((loaded, loaded.message))
    for entries in streams.values():
        entries.sort(key=lambda pair: pair[0].record.seq)
    return streams


def run(args: argparse.Namespace) -> int:
    try:
        settings = parse_settings(args.set)
    except ValueError as error:
        print(f"ffo replay: {error}", file=sys.stderr)
        return 2
    directory = events_dir(args, "replay")
    if isinstance(directory, int):
        return directory
    streams = vrrp_streams(list(load_records(directory, "replay")))
    if not streams:
        print("ffo replay: no VRRP events in this log", file=sys.stderr)
    if settings:
        return _what_if(streams, args.instance, settings)
    events = transitions = 0
    divergences: list[Divergence] = []
    for name, pairs in sorted(streams.items()):
        entries: list[Entry] = [(loaded.record.id, record) for loaded, record in pairs]
        result = replay(entries, instance=args.instance)
        events += result.events
        transitions += result.transitions
        divergences += result.divergences
        for instance, count in sorted(result.skipped.items()):
            print(f"{name}: {count} records of {instance} skipped: its instance_configured is not in the log")
    if divergences:
        print("\n".join(divergences[0].describe()))
    print(f"replayed {events} events, {transitions} transitions, {len(divergences)} divergences")
    return 1 if divergences else 0


def _what_if(
    streams: dict[str, list[tuple[Loaded, VrrpRecord]]], instance: str | None, settings: dict[str, object]
) -> int:
    shown = 0
    for name, pairs in sorted(streams.items()):
        entries: list[Entry] = [(loaded.record.id, record) for loaded, record in pairs]
        offset = {record.instance: loaded.record.ts_ns - loaded.record.mono_ns for loaded, record in pairs}
        names = sorted({record.instance for _, record in pairs if instance is None or record.instance == instance})
        for each in names:
            try:
                result = what_if(entries, instance=each, settings=settings)
            except ValueError as error:  # a value an instance cannot have (priority 300)
                print(f"ffo replay: --set: {error}", file=sys.stderr)
                return 2
            shown += 1
            changes = ", ".join(f"{key}={value}" for key, value in settings.items())
            print(f"{name} instance {each}: {result.inputs} recorded inputs replayed with {changes}")
            print("  as recorded:")
            _print_transitions(result.recorded, offset[each])
            print(f"  with {changes}:")
            _print_transitions(result.alternative, offset[each])
    print("(what-if replays this node's inputs as recorded: how peers would have answered is not modelled)")
    return 0 if shown else 3


def _print_transitions(transitions: tuple[TimedTransition, ...], offset_ns: int) -> None:
    if not transitions:
        print("    (no transition)")
    for item in transitions:
        print(f"    {iso(item.at_ns + offset_ns)}  {item.describe()}")
