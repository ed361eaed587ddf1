"""Carrier changes from netlink: the pure parser on built messages, and the watcher on a real veth."""

from __future__ import annotations

import struct

from ffo.net.linkwatch import LinkChange, parse_link_messages


def newlink(index: int, name: str, flags: int, kind: int = 16) -> bytes:
    attr_name = name.encode() + b"\0"
    attr = struct.pack("=HH", 4 + len(attr_name), 3) + attr_name
    attr += b"\0" * (-len(attr) % 4)
    body = struct.pack("=BxHiII", 0, 1, index, flags, 0xFFFFFFFF) + attr
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_up_needs_both_the_admin_flag_and_the_carrier() -> None:
    data = newlink(2, "eth0", 0x1 | 0x10000) + newlink(3, "eth1", 0x1) + newlink(4, "eth2", 0x10000)
    assert list(parse_link_messages(data)) == [
        LinkChange(interface="eth0", index=2, up=True),
        LinkChange(interface="eth1", index=3, up=False),
        LinkChange(interface="eth2", index=4, up=False),
    ]


def test_a_deleted_link_is_down_and_other_messages_are_skipped() -> None:
    other = struct.pack("=IHHII", 20, 20, 0, 0, 0) + b"\0" * 4  # RTM_NEWADDR
    data = other + newlink(2, "eth0", 0x10001, kind=17)
    assert list(parse_link_messages(data)) == [LinkChange(interface="eth0", index=2, up=False)]


def test_truncated_or_garbage_input_yields_nothing_and_never_raises() -> None:
    good = newlink(2, "eth0", 0x10001)
    for cut in range(len(good)):
        list(parse_link_messages(good[:cut]))
    assert list(parse_link_messages(b"\xff" * 64)) == []
