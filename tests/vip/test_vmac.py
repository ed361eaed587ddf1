"""Virtual MAC naming and addresses (RFC 9568 §7.3), from the config."""

from __future__ import annotations

import ipaddress

import pytest

from ffo.config import InstanceSettings
from ffo.vip.vmac import MacvlanMode, VmacSpec, vmac_mac, vmac_name
from ffo.vrrp.packet import Family


def test_vrrp_macs() -> None:
    assert vmac_mac(1, Family.IPV4) == "00:00:5e:00:01:01"
    assert vmac_mac(255, Family.IPV6) == "00:00:5e:00:02:ff"
    with pytest.raises(ValueError, match="VRID 0"):
        vmac_mac(0, Family.IPV4)


def test_names_fit_linux_and_keep_families_apart() -> None:
    assert (vmac_name(5, Family.IPV4), vmac_name(5, Family.IPV6)) == ("vrrp.5", "vrrp6.5")
    assert len(vmac_name(255, Family.IPV6)) <= 15


def test_spec_for_an_instance() -> None:
    settings = InstanceSettings(
        name="web6", interface="eth0", vrid=42, priority=100, vips=(ipaddress.IPv6Address("2001:db8::42"),)
    )
    spec = VmacSpec.for_instance(settings)
    assert spec == VmacSpec(name="vrrp6.42", parent="eth0", vrid=42, family=Family.IPV6, mode=MacvlanMode.PRIVATE)
    assert spec.mac == "00:00:5e:00:02:2a"
