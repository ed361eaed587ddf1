"""Adds, removes and reconciles VIPs and virtual MAC interfaces through netlink (the edge).

pyroute2's `AsyncIPRoute` (0.9.x) runs on the standard asyncio loop, so the VIP actor awaits the kernel
without a worker thread; it does not run on uvloop (its core uses loop internals), which ffo does not use.
It does the dumps, the link and vmac requests and, with `fast=False`, everything. The address requests of
acquire and release, the takeover path, go by default through `RouteSocket`: the same request built with
struct (`ffo.vip.rtmsg`), acknowledged in ~30 µs instead of pyroute2's ~500 µs. Every call here is thin:
the decisions are in `ffo.vip.plan` (pure), the outcome is a `VipResult` or a `LinkResult` (pure values)
with the time the kernel took, read from the injected `Clock`.

Why the requests look as they do:
- Add is `NLM_F_CREATE | NLM_F_EXCL` first: a new address (the takeover case) costs one round trip and the
  result says it was added. On `EEXIST` the same request goes again with `NLM_F_REPLACE` (idempotent: it
  refreshes the tag and flags and never fails because the VIP is already there) and the VIP is reported as
  unchanged. A plain `replace` would cost the same but could not tell "added" from "was there".
- Every VIP carries `IFA_PROTO = FFO_ADDR_PROTO`, so that reconciliation can tell ffo's addresses from the
  node's own; IPv6 VIPs carry `IFA_F_NODAD`, so they are usable at once (DAD would hold them ~1 s).
- Delete answers `EADDRNOTAVAIL` (also `ENOENT`/`ESRCH` on some paths) when the address is not there, and
  `ENODEV` when the interface is gone: both mean the VIP is not configured, which is what release wants.
- Interface indexes are cached (a lookup is a round trip); on `ENODEV` with a cached index the name is
  looked up again once, because a vmac deleted and created again comes back with a new index.

Measured here (tools/bench_vip.py; pyroute2 0.9.7, Linux 6.18, 2 vCPU): an address add or delete ~30 µs
(fast) or ~0.5 ms (pyroute2), creating a vmac ~6 ms, deleting one ~25 ms (netdev unregistration waits for
RCU), so release takes the vmac down first: it stops answering for the VIPs before the slow part.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from socket import AF_INET6
from typing import Any, Final, TypeVar

import attrs
from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ffo.clock import Clock
from ffo.vip.model import (
    FFO_ADDR_PROTO,
    IFA_F_DADFAILED,
    IFA_F_NODAD,
    IFA_F_TENTATIVE,
    KernelAddress,
    Vip,
    sort_key,
)
from ffo.vip.plan import plan_addresses, plan_vmacs
from ffo.vip.results import LinkResult, Operation, VipError, VipResult, errno_sentence
from ffo.vip.rtmsg import AddressOp
from ffo.vip.rtnl import RouteSocket
from ffo.vip.vmac import PARENT_IPV4_CONF, VMAC_ALIAS, VMAC_IPV4_CONF, KernelLink, VmacSpec
from ffo.vrrp.packet import Family

__all__ = ["LinkIdentity", "VipNetlink"]

_log = logging.getLogger("ffo.vip.netlink")
_T = TypeVar("_T")

_ALREADY_ABSENT: Final = frozenset({errno.EADDRNOTAVAIL, errno.ENOENT, errno.ESRCH, errno.ENODEV})
_IFF_UP: Final = 0x1
_ADDR_GEN_MODE_NONE: Final = 1  # IN6_ADDR_GEN_MODE_NONE: no automatic link-local on the vmac
_PYROUTE2_COMMAND: Final = {AddressOp.ADD: "add", AddressOp.REPLACE: "replace", AddressOp.DELETE: "del"}
_NO_LINK_LOCAL: Final = {"attrs": [["AF_INET6", {"attrs": [["IFLA_INET6_ADDR_GEN_MODE", _ADDR_GEN_MODE_NONE]]}]]}


def _code(error: BaseException) -> int:
    if isinstance(error, NetlinkError):
        return int(error.code)
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno
    return errno.EIO


@attrs.frozen(kw_only=True)
class LinkIdentity:
    """What an announcement needs from an interface: its MAC and (for IPv6) a link-local source address."""

    name: str
    index: int
    mac: str
    link_local: ipaddress.IPv6Address | None


class VipNetlink:
    """The VIP actor's netlink handle, used from one asyncio loop.

    Two sockets: pyroute2's `AsyncIPRoute` for dumps, links and vmacs, and a `RouteSocket` for struct-built
    requests: the addresses of acquire and release (~17x quicker, see `ffo.vip.rtmsg`; unless `fast=False`)
    and the IPv4 ARP settings of a vmac and its parent.
    """

    def __init__(self, ipr: Any, route: RouteSocket, clock: Clock, *, fast: bool = True) -> None:
        self._ipr = ipr
        self._route = route
        self._clock = clock
        self._fast = fast
        self._indexes: dict[str, int] = {}

    @classmethod
    async def open(cls, *, clock: Clock, netns: str | None = None, fast: bool = True) -> VipNetlink:
        """Open the sockets (in network namespace `netns`, for tests and tools) and make one round trip.

        The first request pays pyroute2's set-up (~1 ms); doing it here keeps it off the first takeover.
        With `fast=False` address requests go through pyroute2 (for comparison, or should the struct-built
        requests ever disagree with a kernel).
        """
        ipr = AsyncIPRoute(netns=netns, flags=0) if netns is not None else AsyncIPRoute()
        try:
            await ipr.link("get", index=1)
            route = RouteSocket.open(netns=netns)
        except BaseException:
            ipr.close()
            raise
        return cls(ipr, route, clock, fast=fast)

    def close(self) -> None:
        self._ipr.close()
        self._route.close()

    async def __aenter__(self) -> VipNetlink:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.close()

    # -- addresses ---------------------------------------------------------------------------------------------

    async def acquire(self, vips: Iterable[Vip]) -> VipResult:
        """Add `vips` (each with its prefix); already configured ones are `unchanged`, failures are errors."""
        started = self._clock.monotonic_ns()
        added: list[Vip] = []
        unchanged: list[Vip] = []
        errors: list[VipError] = []
        for vip in vips:
            try:
                if await self._add(vip):
                    added.append(vip)
                else:
                    unchanged.append(vip)
            except (NetlinkError, OSError) as error:
                errors.append(self._error(vip, error))
        return VipResult(
            operation=Operation.ACQUIRE,
            added=tuple(added),
            unchanged=tuple(unchanged),
            errors=tuple(errors),
            started_ns=started,
            netlink_ns=self._clock.monotonic_ns() - started,
        )

    async def release(self, vips: Iterable[Vip]) -> VipResult:
        """Remove `vips`; those already gone (or whose interface is gone) are `unchanged`, not errors."""
        started = self._clock.monotonic_ns()
        removed, unchanged, errors = await self._remove_all(vips)
        return VipResult(
            operation=Operation.RELEASE,
            removed=removed,
            unchanged=unchanged,
            errors=errors,
            started_ns=started,
            netlink_ns=self._clock.monotonic_ns() - started,
        )

    async def reconcile(self, desired: Iterable[Vip], *, claimable: Iterable[Vip] = ()) -> VipResult:
        """Make the kernel hold exactly `desired` among ffo's addresses (see `ffo.vip.plan` for the rules).

        Called when the VIP actor starts or restarts, and after the VRRP actor restarts: a VIP this node must
        not hold is removed even if the process that added it died before it could.
        """
        started = self._clock.monotonic_ns()
        try:
            observed = await self.addresses()
        except (NetlinkError, OSError) as error:
            code = _code(error)
            failure = VipError(vip="", interface="", errno=code, reason=errno_sentence(code))
            return VipResult(
                operation=Operation.RECONCILE,
                errors=(failure,),
                started_ns=started,
                netlink_ns=self._clock.monotonic_ns() - started,
            )
        plan = plan_addresses(desired, observed, claimable=claimable)
        removed, _gone, errors = await self._remove_all(plan.remove)
        added = await self.acquire(plan.add)
        return VipResult(
            operation=Operation.RECONCILE,
            added=added.added + added.unchanged,
            removed=removed,
            unchanged=plan.present,
            errors=errors + added.errors,
            started_ns=started,
            netlink_ns=self._clock.monotonic_ns() - started,
        )

    async def addresses(self) -> tuple[KernelAddress, ...]:
        """Every address of every interface, as the kernel reports it now (one link dump, one address dump)."""
        names = {link.index: link.name for link in await self.links()}
        rows: list[KernelAddress] = []
        async for message in await self._ipr.addr("dump"):
            index = int(message["index"])
            text = message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS")
            if text is None or index not in names:
                continue
            flags = message.get_attr("IFA_FLAGS")
            rows.append(
                KernelAddress(
                    interface=names[index],
                    index=index,
                    address=ipaddress.ip_interface(f"{text}/{message['prefixlen']}"),
                    proto=int(message.get_attr("IFA_PROTO") or 0),
                    flags=int(flags if flags is not None else message["flags"]),
                )
            )
        return tuple(sorted(rows, key=lambda row: sort_key(row.vip)))

    async def _add(self, vip: Vip) -> bool:
        """Add one VIP; True if the kernel did not have it, False if it did (then tag and flags are refreshed)."""
        flags = IFA_F_NODAD if vip.address.version == 6 else 0
        try:
            await self._on_interface(vip.interface, lambda index: self._address(AddressOp.ADD, index, vip, flags))
        except NetlinkError as error:
            if error.code != errno.EEXIST:
                raise
            await self._on_interface(vip.interface, lambda index: self._address(AddressOp.REPLACE, index, vip, flags))
            return False
        return True

    async def _remove_all(self, vips: Iterable[Vip]) -> tuple[tuple[Vip, ...], tuple[Vip, ...], tuple[VipError, ...]]:
        removed: list[Vip] = []
        gone: list[Vip] = []
        errors: list[VipError] = []
        for vip in vips:
            try:
                await self._delete(vip)
                removed.append(vip)
            except (NetlinkError, OSError) as error:
                if _code(error) in _ALREADY_ABSENT:
                    gone.append(vip)
                else:
                    errors.append(self._error(vip, error))
        return tuple(removed), tuple(gone), tuple(errors)

    async def _delete(self, vip: Vip) -> None:
        await self._on_interface(vip.interface, lambda index: self._address(AddressOp.DELETE, index, vip, 0))

    async def _address(self, op: AddressOp, index: int, vip: Vip, flags: int) -> None:
        """One address request, tagged with ffo's IFA_PROTO: on the fast socket, or through pyroute2."""
        if self._fast:
            await self._route.address(op, index=index, address=vip.address, proto=FFO_ADDR_PROTO, flags=flags)
            return
        fields: dict[str, Any] = {"index": index, "address": str(vip.ip), "prefixlen": vip.prefix}
        if op is not AddressOp.DELETE:
            fields |= {"proto": FFO_ADDR_PROTO, "flags": flags} if flags else {"proto": FFO_ADDR_PROTO}
        await self._ipr.addr(_PYROUTE2_COMMAND[op], **fields)

    def _error(self, vip: Vip, error: BaseException) -> VipError:
        code = _code(error)
        reason = errno_sentence(code, vip=vip.text, interface=vip.interface)
        _log.debug("%s: %s", vip, reason)
        return VipError(vip=vip.text, interface=vip.interface, errno=code, reason=reason)

    # -- interfaces --------------------------------------------------------------------------------------------

    async def _index(self, name: str) -> int:
        index = self._indexes.get(name)
        if index is None:
            index = int((await self._ipr.link("get", ifname=name))[0]["index"])
            self._indexes[name] = index
        return index

    async def _on_interface(self, name: str, request: Callable[[int], Awaitable[_T]]) -> _T:
        """Run `request(index)`; on ENODEV with a cached index, look the name up again and retry once."""
        cached = name in self._indexes
        try:
            return await request(await self._index(name))
        except NetlinkError as error:
            if error.code != errno.ENODEV:
                raise
            self._indexes.pop(name, None)
            if not cached:
                raise
        return await request(await self._index(name))

    async def links(self) -> tuple[KernelLink, ...]:
        """Every link, with what tells a vmac of ffo's from anything else."""
        return tuple([_kernel_link(message) async for message in await self._ipr.link("dump")])

    async def link_identity(self, name: str) -> LinkIdentity | None:
        """MAC and usable link-local address of interface `name` (None if it has none: a vmac, or one still in
        DAD), or None if the interface does not exist."""
        try:
            message = (await self._ipr.link("get", ifname=name))[0]
        except NetlinkError as error:
            if error.code == errno.ENODEV:
                return None
            raise
        index = int(message["index"])
        link_local: ipaddress.IPv6Address | None = None
        async for row in await self._ipr.addr("dump", family=AF_INET6, index=index):
            candidate = ipaddress.IPv6Address(row.get_attr("IFA_ADDRESS"))
            flags = row.get_attr("IFA_FLAGS")
            usable = not int(flags if flags is not None else row["flags"]) & (IFA_F_TENTATIVE | IFA_F_DADFAILED)
            if candidate.is_link_local and usable and link_local is None:
                link_local = candidate
        return LinkIdentity(name=name, index=index, mac=str(message.get_attr("IFLA_ADDRESS")), link_local=link_local)

    # -- virtual MAC interfaces --------------------------------------------------------------------------------

    async def ensure_vmac(self, spec: VmacSpec) -> LinkResult:
        """Make the vmac `spec` exist and be up: create it, or fix one of ffo's that differs. Never raises.

        For IPv4 it first sets the parent's ARP settings (`PARENT_IPV4_CONF`, see `ffo.vip.vmac`).
        """
        started = self._clock.monotonic_ns()
        created = False
        index: int | None = None
        try:
            parent = await self._index(spec.parent)
            if spec.family == Family.IPV4:  # before the vmac exists: the parent must never answer for its VIPs
                await self._route.set_inet_conf(index=parent, values=PARENT_IPV4_CONF)
            existing = await self._link(spec.name)
            if existing is not None and not existing.ours:
                return _name_taken(spec.name, self._clock.monotonic_ns() - started)
            if existing is not None and not existing.matches(spec, parent):
                await self._ipr.link("del", index=existing.index)
                existing = None
            if existing is None:
                await self._create_vmac(spec, parent)
                created = True
            elif not existing.up:
                await self._ipr.link("set", index=existing.index, state="up")
            index = await self._index(spec.name)
        except (NetlinkError, OSError) as failure:
            code = _code(failure)
            interface = spec.parent if code == errno.ENODEV else spec.name
            reason = errno_sentence(code, interface=interface)
            return LinkResult(
                name=spec.name,
                errors=(VipError(vip="", interface=interface, errno=code, reason=reason),),
                netlink_ns=self._clock.monotonic_ns() - started,
            )
        return LinkResult(name=spec.name, created=created, index=index, netlink_ns=self._clock.monotonic_ns() - started)

    async def _create_vmac(self, spec: VmacSpec, parent: int) -> None:
        """Create it down; set the alias, "no automatic link-local" and (IPv4) its ARP settings; then up.

        Separate requests, because the kernel ignores the alias in a create request and refuses the address
        generation mode there (EAFNOSUPPORT), and in one request with `up` the link-local is generated
        before the mode applies (measured on Linux 6.18).
        """
        self._indexes.pop(spec.name, None)
        await self._ipr.link(
            "add", ifname=spec.name, kind="macvlan", link=parent, macvlan_mode=spec.mode.value, address=spec.mac
        )
        index = await self._index(spec.name)
        await self._ipr.link("set", index=index, ifalias=VMAC_ALIAS, IFLA_AF_SPEC=_NO_LINK_LOCAL)
        if spec.family == Family.IPV4:
            await self._route.set_inet_conf(index=index, values=VMAC_IPV4_CONF)
        await self._ipr.link("set", index=index, state="up")

    async def remove_vmac(self, name: str) -> LinkResult:
        """Take the vmac down (it stops answering for the VIPs at once), then delete it with its VIPs.

        Already gone is not an error; a link ffo did not create is never deleted (an error says so).
        """
        started = self._clock.monotonic_ns()
        try:
            existing = await self._link(name)
            if existing is None:
                return LinkResult(name=name, netlink_ns=self._clock.monotonic_ns() - started)
            if not existing.ours:
                code = errno.EPERM
                reason = f"{name} is not a virtual MAC interface ffo created: left alone"
                error = VipError(vip="", interface=name, errno=code, reason=reason)
                return LinkResult(name=name, errors=(error,), netlink_ns=self._clock.monotonic_ns() - started)
            if existing.up:
                await self._ipr.link("set", index=existing.index, state="down")
            await self._ipr.link("del", index=existing.index)
        except (NetlinkError, OSError) as failure:
            code = _code(failure)
            if code != errno.ENODEV:
                error = VipError(vip="", interface=name, errno=code, reason=errno_sentence(code, interface=name))
                return LinkResult(name=name, errors=(error,), netlink_ns=self._clock.monotonic_ns() - started)
        finally:
            self._indexes.pop(name, None)
        return LinkResult(name=name, removed=True, netlink_ns=self._clock.monotonic_ns() - started)

    async def reconcile_vmacs(self, desired: Iterable[VmacSpec]) -> tuple[LinkResult, ...]:
        """Make ffo's macvlans exactly `desired`; links ffo did not create are reported, never touched."""
        plan = plan_vmacs(desired, await self.links())
        results = [await self.remove_vmac(name) for name in plan.remove]
        results += [await self.ensure_vmac(spec) for spec in plan.create + plan.present]
        results += [_name_taken(spec.name, 0) for spec in plan.conflicts]
        return tuple(results)

    async def _link(self, name: str) -> KernelLink | None:
        try:
            message = (await self._ipr.link("get", ifname=name))[0]
        except NetlinkError as error:
            if error.code == errno.ENODEV:
                return None
            raise
        link = _kernel_link(message)
        self._indexes[name] = link.index
        return link


def _name_taken(name: str, netlink_ns: int) -> LinkResult:
    code = errno.EEXIST
    reason = f"{name} exists and is not a virtual MAC interface ffo created: left alone (EEXIST)"
    error = VipError(vip="", interface=name, errno=code, reason=reason)
    return LinkResult(name=name, errors=(error,), netlink_ns=netlink_ns)


def _kernel_link(message: Any) -> KernelLink:
    info = message.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
    mode = data.get_attr("IFLA_MACVLAN_MODE") if kind == "macvlan" and data is not None else None
    return KernelLink(
        name=str(message.get_attr("IFLA_IFNAME")),
        index=int(message["index"]),
        kind=kind,
        mac=message.get_attr("IFLA_ADDRESS"),
        parent_index=message.get_attr("IFLA_LINK"),
        alias=message.get_attr("IFLA_IFALIAS"),
        up=bool(message["flags"] & _IFF_UP),
        mode=mode,
    )
