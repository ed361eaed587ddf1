"""The struct-built address requests, as pyroute2's decoder reads them, and the acknowledgement parser."""

from __future__ import annotations

import errno
import ipaddress
import struct

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

from ffo.vip.model import FFO_ADDR_PROTO, IFA_F_NODAD
from ffo.vip.rtmsg import (
    IPV4_DEVCONF_ARP_IGNORE,
    IPV4_DEVCONF_ARPFILTER,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    RTM_DELADDR,
    RTM_NEWADDR,
    RTM_SETLINK,
    AddressOp,
    acknowledgements,
    address_request,
    inet_conf_request,
)


def decoded(data: bytes) -> ifaddrmsg:
    message = ifaddrmsg(data)
    message.decode()
    return message


@pytest.mark.parametrize(
    ("op", "kind", "flags"),
    [
        (AddressOp.ADD, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL),
        (AddressOp.REPLACE, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE),
        (AddressOp.DELETE, RTM_DELADDR, 0),
    ],
)
def test_ipv4_request_as_pyroute2_reads_it(op: AddressOp, kind: int, flags: int) -> None:
    data = address_request(
        op, sequence=7, index=3, address=ipaddress.ip_interface("192.0.2.10/24"), proto=FFO_ADDR_PROTO
    )
    message = decoded(data)
    header = message["header"]
    assert (header["length"], header["type"], header["sequence_number"]) == (len(data), kind, 7)
    assert header["flags"] == NLM_F_REQUEST | NLM_F_ACK | flags
    assert (message["family"], message["prefixlen"], message["index"]) == (2, 24, 3)
    assert message.get_attr("IFA_LOCAL") == message.get_attr("IFA_ADDRESS") == "192.0.2.10"
    assert message.get_attr("IFA_PROTO") == (None if op is AddressOp.DELETE else FFO_ADDR_PROTO)


def test_ipv6_request_carries_nodad_and_no_local() -> None:
    address = ipaddress.ip_interface("2001:db8::10/128")
    message = decoded(address_request(AddressOp.ADD, sequence=1, index=9, address=address, flags=IFA_F_NODAD))
    assert (message["family"], message["prefixlen"]) == (10, 128)
    assert message.get_attr("IFA_ADDRESS") == "2001:db8::10"
    assert message.get_attr("IFA_LOCAL") is None
    assert message.get_attr("IFA_FLAGS") == IFA_F_NODAD
    assert message.get_attr("IFA_PROTO") is None  # proto 0: not sent


def error_message(sequence: int, code: int) -> bytes:
    """An NLMSG_ERROR as the kernel sends it: the header, -errno, and the start of the request."""
    body = struct.pack("=i", -code) + struct.pack("=IHHII", 16, RTM_NEWADDR, 0, sequence, 0)
    return struct.pack("=IHHII", 16 + len(body), 2, 0x100, sequence, 4242) + body


def test_acknowledgements_in_one_datagram() -> None:
    data = error_message(1, 0) + error_message(2, errno.EEXIST) + b"\x01\x02"  # and a torn tail
    assert list(acknowledgements(data)) == [(1, 0), (2, errno.EEXIST)]


def test_acknowledgements_ignore_other_messages_and_bad_lengths() -> None:
    done = struct.pack("=IHHII", 20, 3, 0, 5, 0) + b"\x00" * 4  # NLMSG_DONE
    assert list(acknowledgements(done + error_message(6, 0))) == [(6, 0)]
    assert list(acknowledgements(struct.pack("=IHHII", 8, 2, 0, 1, 0))) == []  # length below the header


def test_inet_conf_request_sets_only_the_named_settings() -> None:
    data = inet_conf_request(sequence=3, index=5, values={IPV4_DEVCONF_ARP_IGNORE: 1, IPV4_DEVCONF_ARPFILTER: 1})
    length, kind, flags, sequence, _port = struct.unpack_from("=IHHII", data)
    assert (length, kind, flags, sequence) == (len(data), RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, 3)
    family, _type, index, _flags, change = struct.unpack_from("=BxHiII", data, 16)
    assert (family, index, change) == (0, 5, 0)

    def attributes(blob: bytes) -> list[tuple[int, bytes]]:
        found, offset = [], 0
        while offset < len(blob):
            size, kind = struct.unpack_from("=HH", blob, offset)
            found.append((kind & 0x3FFF, blob[offset + 4 : offset + size]))
            offset += (size + 3) & ~3
        return found

    ((spec_type, spec),) = attributes(data[32:])
    ((family_type, inet),) = attributes(spec)
    ((conf_type, conf),) = attributes(inet)
    assert (spec_type, family_type, conf_type) == (26, 2, 1)  # IFLA_AF_SPEC / AF_INET / IFLA_INET_CONF
    assert [(kind, struct.unpack("=I", value)[0]) for kind, value in attributes(conf)] == [(13, 1), (19, 1)]
