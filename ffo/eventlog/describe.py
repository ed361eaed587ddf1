"""One line per event for people: the instance it concerns, a summary, and its cause (pure).

Each module that defines event types registers a describer for them (`describer`); `describe` falls back to
the type name and fields for a type without one, so that `ffo events` shows every record, including those
of types this version does not know how to word.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from ffo.eventlog.record import RecordsDropped

__all__ = ["Described", "describe", "describer"]

M = TypeVar("M")


@attrs.frozen(kw_only=True)
class Described:
    instance: str | None
    summary: str
    cause: str | None = None
    """The cause as a sentence, when the event has one."""
    cause_data: dict[str, Any] | None = None
    """The structured cause, as plain data (JSON-ready)."""


_describers: dict[type, Callable[[Any], Described]] = {}


def describer(cls: type[M]) -> Callable[[Callable[[M], Described]], Callable[[M], Described]]:
    """Register `fn` as the describer of events of class `cls`."""

    def register(fn: Callable[[M], Described]) -> Callable[[M], Described]:
        _describers[cls] = fn
        return fn

    return register


def describe(event: object) -> Described:
    """How `event` reads in a timeline."""
    found = _describers.get(type(event))
    if found is not None:
        return found(event)
    instance = getattr(event, "instance", None)
    return Described(instance=instance if isinstance(instance, str) else None, summary=repr(event))


@describer(RecordsDropped)
def _records_dropped(event: RecordsDropped) -> Described:
    return Described(
        instance=None,
        summary=f"{event.count} records were dropped while the disk refused writes (the log was degraded)",
        cause="disk full or failing",
    )
