"""Every module that registers event and message types, imported by the tools that read the event log.

A reader can only turn a record into its class (and describe it) if the module defining that class was
imported; the daemon imports them as its actors start, a CLI tool imports them here, all at once.
"""

from __future__ import annotations

import importlib
from typing import Final

EVENT_MODULES: Final = (
    "ffo.actors.events",
    "ffo.bus.messages",
    "ffo.eventlog.record",
    "ffo.vrrp.record",
    "ffo.vrrp.describe",
    "ffo.vip.events",
    "ffo.rpc.events",
)


def load_event_types() -> None:
    for name in EVENT_MODULES:
        importlib.import_module(name)
