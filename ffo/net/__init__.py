"""The network edge of the VRRP actor: raw VRRP sockets, interface addresses, and the pure receive rules."""

from ffo.net.addresses import InterfaceAddress, interface_addresses, primary_addresses
from ffo.net.ratelimit import RateLimiter
from ffo.net.receive import NetReason, Reason, Received, Rejected, classify_ipv4, classify_ipv6
from ffo.net.sockopts import GROUPS
from ffo.net.vrrpsock import SocketStatistics, VrrpSocket

__all__ = [
    "GROUPS",
    "InterfaceAddress",
    "NetReason",
    "RateLimiter",
    "Reason",
    "Received",
    "Rejected",
    "SocketStatistics",
    "VrrpSocket",
    "classify_ipv4",
    "classify_ipv6",
    "interface_addresses",
    "primary_addresses",
]
