"""`ffo pcap FILE [--json]`: every VRRP packet of a capture, decoded and checked as ffo's receiver would.

One row per IPv4/IPv6 packet with protocol 112, valid or not (an invalid one shows its reason and whatever
fields could be read); other traffic is skipped. Exit 0 whenever the file could be read, 3 when it could not.
``--json`` streams one object per line; the text table is aligned, so it is printed once the file is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ffo.pcapfile import CaptureFormatError, CaptureReader
from ffo.vrrp.ipheader import IpDatagram, IpRejected, parse_ip
from ffo.vrrp.packet import IPPROTO_VRRP, HeaderFields, PacketRejected, RejectReason, decode

Row = dict[str, Any]

_COLUMNS = ("time", "src > dst", "ttl", "ver", "vrid", "prio", "interval", "addresses", "checksum", "status")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("pcap", help="decode the VRRP packets of a pcap/pcapng capture")
    parser.add_argument("file", metavar="FILE", help="a pcap or pcapng capture")
    parser.add_argument("--json", action="store_true", help="one JSON object per packet and line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    table: list[tuple[str, ...]] = []
    try:
        with open(args.file, "rb") as stream:
            reader = CaptureReader(stream)
            for time, datagram in reader:
                row = vrrp_row(time, datagram)
                if row is None:
                    continue
                if args.json:
                    print(json.dumps(row))
                else:
                    table.append(_text_cells(row))
    except BrokenPipeError:
        raise  # stdout went away (`| head`): not a problem with the file
    except OSError as exc:
        print(f"ffo pcap: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 3
    except CaptureFormatError as exc:
        print(f"ffo pcap: cannot read {args.file}: {exc}", file=sys.stderr)
        return 3
    if reader.torn_tail:
        print(f"ffo pcap: {args.file}: the capture ends inside a packet record", file=sys.stderr)
    if not args.json:
        _print_table(table)
    return 0


def vrrp_row(time: float | None, datagram: bytes) -> Row | None:
    """The row for one IP datagram, or None when it is not VRRP (or not even a readable IP header)."""
    ip: IpDatagram | None
    problem: RejectReason | None = None
    try:
        ip = parse_ip(datagram)
    except IpRejected as exc:
        ip, problem = exc.partial, exc.reason
    if ip is None or ip.protocol != IPPROTO_VRRP:
        return None
    row: Row = {"time": time, "src": str(ip.src), "dst": str(ip.dst), "ttl": ip.ttl}
    try:
        decoded = decode(ip.payload, family=ip.family, src=ip.src, dst=ip.dst, ttl=ip.ttl)
    except PacketRejected as exc:
        row.update(_header_cells(exc.header))
        row.update(valid=False, reason=(problem or exc.reason).value)
        return row
    adv = decoded.advertisement
    row.update(
        version=adv.version,
        type=1,
        vrid=adv.vrid,
        priority=adv.priority,
        interval_cs=adv.interval_cs,
        addresses=[str(a) for a in adv.addresses],
        checksum_form=decoded.checksum_form.value,
        valid=problem is None,
        reason=problem.value if problem else None,
    )
    return row


def _header_cells(header: HeaderFields | None) -> Row:
    if header is None:
        names = ("version", "type", "vrid", "priority", "interval_cs", "addresses", "checksum_form")
        return dict.fromkeys(names)
    return {
        "version": header.version,
        "type": header.type,
        "vrid": header.vrid,
        "priority": header.priority,
        "interval_cs": header.interval_cs,
        "addresses": None if header.addresses is None else [str(a) for a in header.addresses],
        "checksum_form": header.checksum_form.value if header.checksum_form else None,
    }


def _text_cells(row: Row) -> tuple[str, ...]:
    def show(value: object) -> str:
        return "-" if value is None else str(value)

    interval = row["interval_cs"]
    if interval is not None:
        interval = f"{interval // 100}s" if row["version"] == 2 else f"{interval}cs"
    return (
        "-" if row["time"] is None else f"{row['time']:.6f}",
        f"{row['src']} > {row['dst']}",
        show(row["ttl"]),
        "-" if row["version"] is None else f"v{row['version']}",
        show(row["vrid"]),
        show(row["priority"]),
        show(interval),
        "-" if row["addresses"] is None else ",".join(row["addresses"]),
        show(row["checksum_form"]),
        "ok" if row["valid"] else f"INVALID {row['reason']}",
    )


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(_COLUMNS, *rows, strict=True)]
    for cells in (_COLUMNS, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())
