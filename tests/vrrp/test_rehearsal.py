"""The takeover rehearsal really walks the takeover path, and touches nothing real."""

from __future__ import annotations

import ipaddress

from ffo.config import InstanceSettings
from ffo.vrrp.node import Append, Send, VipCommand
from ffo.vrrp.packet import Family
from ffo.vrrp.record import TransitionMade
from ffo.vrrp.rehearsal import rehearse

PRIMARY = {("eth0", Family.IPV4): ipaddress.IPv4Address("192.0.2.12")}


def _settings(priority: int) -> InstanceSettings:
    return InstanceSettings(
        name="web",
        interface="eth0",
        vrid=51,
        priority=priority,
        vips=(ipaddress.IPv4Address("192.0.2.100"),),
        advert_interval_cs=1,
    )


def test_a_backup_rehearses_taking_over_stepping_down_taking_over_again_and_leaving() -> None:
    actions = rehearse([_settings(100)], PRIMARY, rounds=2)
    roles = [
        action.record.transition.to_role.name
        for action in actions
        if isinstance(action, Append) and isinstance(action.record, TransitionMade)
    ]
    assert roles == ["BACKUP", "MASTER", "BACKUP", "MASTER", "INITIALIZE"], roles
    sends = [action for action in actions if isinstance(action, Send)]
    assert sends and sends[-1].priority == 0  # the goodbye of the shutdown
    assert any(isinstance(action, VipCommand) for action in actions)


def test_the_address_owner_and_the_last_address_of_a_family_rehearse_too() -> None:
    owner = rehearse([_settings(255)], PRIMARY, rounds=1)
    assert any(isinstance(action, Send) for action in owner)
    last = {("eth0", Family.IPV4): ipaddress.IPv4Address("255.255.255.255")}
    assert rehearse([_settings(100)], last, rounds=1)
