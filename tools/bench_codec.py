"""Encode and decode rates of the VRRP codec (ffo.vrrp.packet), in packets per second.

    .venv/bin/python tools/bench_codec.py [--seconds 0.5] [--repeat 5]

Each rate is the best of `--repeat` runs (the least disturbed by a noisy machine). For scale: keepalived's
heaviest row in shared/BENCHMARKS.md, 200 instances at 10 ms, is about 20,000 advertisements per second.
"""

from __future__ import annotations

import argparse
import functools
from ipaddress import IPv4Address, IPv6Address

from benchlib import rate

from ffo.vrrp.packet import Advertisement, ChecksumForm, Family, IPAddress, decode, encode


def cases() -> list[tuple[str, Advertisement, Family, IPAddress, IPAddress, ChecksumForm]]:
    v4_src, v4_dst = IPv4Address("192.0.2.11"), IPv4Address("224.0.0.18")
    v6_src, v6_dst = IPv6Address("fe80::11"), IPv6Address("ff02::12")
    vip4, vip6 = IPv4Address("192.0.2.100"), IPv6Address("2001:db8::100")

    def v3(*addresses: IPAddress) -> Advertisement:
        return Advertisement(version=3, vrid=51, priority=200, interval_cs=100, addresses=addresses)

    v2 = Advertisement(version=2, vrid=51, priority=200, interval_cs=100, addresses=(vip4,))
    ipv4, ipv6, pseudo, plain = Family.IPV4, Family.IPV6, ChecksumForm.PSEUDO_HEADER, ChecksumForm.PLAIN
    return [
        ("v3 IPv4, 1 address, pseudo-header", v3(vip4), ipv4, v4_src, v4_dst, pseudo),
        ("v3 IPv4, 1 address, plain", v3(vip4), ipv4, v4_src, v4_dst, plain),
        ("v3 IPv6, 1 address", v3(vip6), ipv6, v6_src, v6_dst, pseudo),
        ("v3 IPv6, 8 addresses", v3(*(vip6 + n for n in range(8))), ipv6, v6_src, v6_dst, pseudo),
        ("v2 IPv4, 1 address", v2, ipv4, v4_src, v4_dst, plain),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="Encode and decode rates of the VRRP codec.")
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one run (default 0.5)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the best is kept (default 5)")
    args = parser.parse_args()
    print(f"{'case':<36} {'encode/s':>10} {'decode/s':>10} {'µs/enc':>7} {'µs/dec':>7}")
    for name, adv, family, src, dst, form in cases():
        data = encode(adv, family=family, src=src, dst=dst, checksum_form=form)
        assert decode(data, family=family, src=src, dst=dst, ttl=255).advertisement == adv
        encode_one = functools.partial(encode, adv, family=family, src=src, dst=dst, checksum_form=form)
        decode_one = functools.partial(decode, data, family=family, src=src, dst=dst, ttl=255)
        encodes = rate(encode_one, args.seconds, args.repeat)
        decodes = rate(decode_one, args.seconds, args.repeat)
        print(f"{name:<36} {encodes:>10,.0f} {decodes:>10,.0f} {1e6 / encodes:>7.2f} {1e6 / decodes:>7.2f}")


if __name__ == "__main__":
    main()
