"""VipsAcquired / VipsReleased: built from results, across the bus codec, and as `ffo events` words them."""

from __future__ import annotations

import errno

from ffo.bus.codec import decode, encode
from ffo.bus.messages import registration_of
from ffo.eventlog.describe import describe
from ffo.vip import VipError, VipResult, VipsAcquired, VipsReleased, parse_vip
from ffo.vip.results import LinkResult, Operation, errno_sentence

A = parse_vip("eth0", "192.0.2.10/32")
B = parse_vip("eth0", "192.0.2.11/24")
GHOST = VipError(
    vip="192.0.2.12/32",
    interface="eth9",
    errno=errno.ENODEV,
    reason=errno_sentence(errno.ENODEV, vip="192.0.2.12/32", interface="eth9"),
)


def test_registered_names() -> None:
    assert (registration_of(VipsAcquired).name, registration_of(VipsAcquired).version) == ("vip.acquired", 1)
    assert (registration_of(VipsReleased).name, registration_of(VipsReleased).version) == ("vip.released", 1)


def test_acquired_from_a_result_holds_added_and_present() -> None:
    result = VipResult(operation=Operation.ACQUIRE, added=(A,), unchanged=(B,), errors=(GHOST,), netlink_ns=520_000)
    event = VipsAcquired.from_result(instance="web", interface="eth0", result=result, announce_ns=12_000)
    assert event.vips == ("192.0.2.10/32", "192.0.2.11/24")
    assert (event.netlink_ns, event.announce_ns, event.errors) == (520_000, 12_000, (GHOST,))


def test_released_from_a_result_holds_removed_and_already_gone() -> None:
    result = VipResult(operation=Operation.RELEASE, removed=(A,), unchanged=(B,), netlink_ns=400_000)
    event = VipsReleased.from_result(instance="web", interface="eth0", result=result)
    assert event.vips == ("192.0.2.10/32", "192.0.2.11/24") and event.announce_ns == 0


def test_round_trip_through_the_bus_codec() -> None:
    for event in (
        VipsAcquired(
            instance="web", vips=("192.0.2.10/32",), interface="eth0", netlink_ns=1, announce_ns=2, errors=(GHOST,)
        ),
        VipsReleased(instance="web", vips=(), interface="eth0", netlink_ns=3),
    ):
        frames = encode("vip", event, id="1", src="n1/vip", ts=0, mono=0)
        assert decode(frames).message == event


def test_describers() -> None:
    acquired = describe(
        VipsAcquired(
            instance="web",
            vips=("192.0.2.10/32", "192.0.2.11/24"),
            interface="eth0",
            netlink_ns=523_000,
            announce_ns=14_000,
            errors=(GHOST,),
        )
    )
    assert acquired.instance == "web"
    assert acquired.summary == (
        "acquired 192.0.2.10/32, 192.0.2.11/24 on eth0 (netlink 523 µs, announce 14 µs); 1 failed"
    )
    assert acquired.cause == "192.0.2.12/32: interface eth9 does not exist (ENODEV)"
    released = describe(VipsReleased(instance="web", vips=("192.0.2.10/32",), interface="eth0", netlink_ns=2_500_000))
    assert released.summary == "released 192.0.2.10/32 on eth0 (netlink 2.5 ms)" and released.cause is None


def test_errno_sentences_name_the_vip_interface_and_errno() -> None:
    assert (
        errno_sentence(errno.EPERM)
        == "the kernel refused: ffo needs CAP_NET_ADMIN to change addresses and links (EPERM)"
    )
    assert errno_sentence(errno.EADDRNOTAVAIL, vip="192.0.2.1/32", interface="eth0") == (
        "192.0.2.1/32 is not configured on eth0 (EADDRNOTAVAIL)"
    )
    assert errno_sentence(4242, vip="x", interface="y") == "the kernel refused the request for x on y (errno 4242)"


def test_result_properties() -> None:
    assert VipResult(operation=Operation.ACQUIRE, added=(A,), unchanged=(B,)).held == (A, B)
    assert not VipResult(operation=Operation.RELEASE, errors=(GHOST,)).ok
    assert LinkResult(name="vrrp.5").ok
