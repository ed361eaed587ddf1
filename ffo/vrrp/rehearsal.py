"""A dress rehearsal of every instance's takeover, on scratch copies, before the real timers start (pure).

The first time Python runs a code path it runs it slowly: the adaptive interpreter specialises bytecode only
after a few executions, and lazily built caches (the record converters, encoders) fill on first use. In a
VRRP backup the takeover path runs for the first time exactly when it matters, at the failover: measured
here, the first Master_Down step and its journal record cost ~0.6-0.9 ms more than later ones, which was most
of ffo's gap to keepalived's takeover latency.

So the actor runs, during its set-up, each instance's whole life on a scratch `VrrpNode` built from the same
settings: start, Master_Down_Timer expiry (takeover), advertisements as master, a higher-priority peer (step
down), a priority-0 peer (takeover again) and shutdown, a few times over. Nothing of it leaves this module:
the scratch node has no sockets and its actions are only returned, so the actor can warm its own
`Append`/`Send`/`VipCommand` handling on them without carrying any of them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from ffo.config import InstanceSettings
from ffo.vrrp.node import Action, VrrpNode
from ffo.vrrp.packet import Advertisement, Family, IPAddress

ROUNDS: Final = 12
"""Python 3.11 specialises an instruction after 8 runs (its adaptive counter); a few more for good measure."""


def rehearse(
    instances: Sequence[InstanceSettings],
    primary_addresses: Mapping[tuple[str, Family], IPAddress],
    *,
    rounds: int = ROUNDS,
) -> list[Action]:
    """Run every instance's life `rounds` times on scratch nodes; the actions of the last round."""
    actions: list[Action] = []
    for _ in range(rounds):
        actions = _one_life(tuple(instances), primary_addresses)
    return actions


def _one_life(
    instances: tuple[InstanceSettings, ...], primary_addresses: Mapping[tuple[str, Family], IPAddress]
) -> list[Action]:
    scratch = VrrpNode(instances, primary_addresses)
    now = 1_000_000_000
    actions = scratch.start(now)
    for _ in range(3):  # Master_Down_Timer (takeover), then two Adver_Timers as master
        deadline = scratch.next_deadline()
        if deadline is None:
            break
        now = max(now, deadline)
        actions += scratch.timers_due(now)
    for settings in instances:
        peer = _peer_of(primary_addresses[(settings.interface, settings.family)])
        for priority in (255, 0):  # a higher priority makes it step down; its priority 0 brings it back
            advertisement = Advertisement(
                version=settings.version,
                vrid=settings.vrid,
                priority=priority,
                interval_cs=settings.advert_interval_cs,
                addresses=settings.vips,
            )
            now += 1_000_000
            actions += scratch.received(settings.interface, settings.family, peer, advertisement, now)
            deadline = scratch.next_deadline()
            if deadline is not None:
                now = max(now, deadline)
                actions += scratch.timers_due(now)
    actions += scratch.shutdown(now)
    return actions


def _peer_of(address: IPAddress) -> IPAddress:
    """Another address on the link, for the scratch peer's advertisements (never sent anywhere)."""
    try:
        return address + 1
    except ValueError:  # the family's last address
        return address - 1
