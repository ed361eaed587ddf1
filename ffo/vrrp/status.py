"""What `ffo status` shows of each VRRP instance, and the bus message that carries it to the kernel.

The VRRP actor publishes `VrrpStatus` on `sys.status` when something changes and every second; the kernel keeps
the last one and answers `ffo status` from it, so the CLI never waits on the timing-critical actor. The field
names are CLI.md's JSON keys.
"""

from __future__ import annotations

import attrs

from ffo.bus.messages import message

STATUS_TOPIC = "sys.status"


@attrs.frozen(kw_only=True)
class InstanceStatus:
    name: str
    vrid: int
    family: str
    """``IPv4`` or ``IPv6``."""
    state: str
    """``INITIALIZE``, ``BACKUP`` or ``MASTER``."""
    priority: int
    """As configured."""
    effective_priority: int
    """As advertised now (a tracker may have changed it)."""
    master: str | None
    """The master's address as far as this instance knows (its own when it is master)."""
    vips: tuple[str, ...]
    timer_lateness_ms: dict[str, float]
    """``p50``, ``p99`` (recent timers) and ``max`` (since start): how late the timers fired."""
    counters: dict[str, int]


@message("vrrp.status", version=1)
@attrs.frozen(kw_only=True)
class VrrpStatus:
    node: str
    pid: int
    instances: tuple[InstanceStatus, ...]
    counters: dict[str, int]
    """Node-wide: packets for other VRIDs, packets refused by reason."""
