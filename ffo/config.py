"""ffo's configuration: frozen settings parsed from TOML, every problem named by its key path.

Validation happens here, at the edge (cattrs: "validation and serialization are concerns of the edges"), and
it collects *every* problem before it gives up, so that one `ffo check` run lists all the typos of a file.
Each problem is a `(path, reason)` pair such as `("instance[0].vrid", "300 is not in 1..255")`.

The module is pure (no sockets, clocks, randomness or event loop): `parse_config` takes an already-loaded
mapping and `loads_config` TOML text. Only `load_config` touches the file system, to read one file.

Intervals follow the wire: VRRPv3 carries a 12-bit Max Advertise Interval in centiseconds (RFC 9568 §5.2.7),
so 10 ms..40.95 s in steps of 10 ms; VRRPv2 an 8-bit Adver Int in whole seconds (RFC 3768 §5.3.7).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import tomllib
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Final, TypeVar

import attrs

from ffo.errors import ConfigError, FfoError
from ffo.vrrp.packet import Family, IPAddress

__all__ = [
    "ConfigUnreadable",
    "EventLogSettings",
    "InstanceSettings",
    "NodeConfig",
    "RpcPeer",
    "RpcSettings",
    "load_config",
    "loads_config",
    "parse_config",
    "parse_duration",
    "parse_size",
]

_T = TypeVar("_T")

NS_PER_CS: Final = 10_000_000
NS_PER_S: Final = 1_000_000_000
_UNITS: Final[Mapping[str, int]] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
    "d": 86400 * NS_PER_S,
}
_UNIT_LIST: Final = "ns, us, ms, s, m, h or d"
_SIZE_UNITS: Final[Mapping[str, int]] = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_SIZE: Final = re.compile(r"([0-9]+)\s*([A-Za-z]*)")
_DURATION: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(.*)", re.DOTALL)
# Node, instance and peer names end up in file names, log lines and CLI filters.
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_NAME_RULE: Final = 'letters, digits, "_", "-" and ".", starting with a letter or digit; at most 64 characters'
_ENDPOINT: Final = re.compile(r"tcp://(?:\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):([0-9]+|\*)|(?:ipc|inproc)://\S+")
_FAMILY_NAME: Final[Mapping[Family, str]] = {Family.IPV4: "IPv4", Family.IPV6: "IPv6"}
_1_TO_255: Final = attrs.validators.and_(attrs.validators.ge(1), attrs.validators.le(255))
_0_TO_99: Final = attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(99))


class ConfigUnreadable(FfoError):  # noqa: N818 -- the name the CLI contract uses
    """The configuration file could not be read at all (missing, a directory, no permission): exit 3."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read {path}: {reason}")


def _family_of(address: IPAddress) -> Family:
    return Family.IPV4 if address.version == 4 else Family.IPV6


@attrs.frozen(kw_only=True)
class InstanceSettings:
    """One `[[instance]]`: a virtual router on one interface, in one address family (RFC 9568 §6.1)."""

    name: str
    interface: str
    vrid: int = attrs.field(validator=_1_TO_255)
    # 255 = the address owner; 1..254 = backups. 0 is reserved for "the master is leaving".
    priority: int = attrs.field(validator=_1_TO_255)
    vips: tuple[IPAddress, ...] = attrs.field(validator=attrs.validators.min_len(1))
    # The prefix length given with each VIP ("192.0.2.100/24"), or the host prefix (32 / 128) when none was.
    vip_prefixes: tuple[int, ...] = attrs.field()
    family: Family = attrs.field()
    # Advertisement_Interval in centiseconds: 1..4095 for v3; for v2 whole seconds x 100 (100..25500).
    advert_interval_cs: int = attrs.field(default=100)
    version: int = attrs.field(default=3, validator=attrs.validators.in_((2, 3)))
    preempt: bool = True
    # Accept_Mode: parsed, carried and reported; enforcing `false` needs firewall rules and comes later.
    accept: bool = True
    unicast_peers: tuple[IPAddress, ...] = ()
    use_vmac: bool = False
    # Send the IPv4 pseudo-header checksum form that keepalived and FRR use (RFC 9568 change 4 allows both).
    checksum_ipv4_pseudo_header: bool = True

    @vip_prefixes.default
    def _host_prefixes(self) -> tuple[int, ...]:
        return tuple(vip.max_prefixlen for vip in self.vips)

    @vip_prefixes.validator
    def _check_prefixes(self, _attribute: object, value: tuple[int, ...]) -> None:
        if len(value) != len(self.vips):
            raise ValueError("vip_prefixes must give one prefix length per VIP")

    @advert_interval_cs.validator
    def _check_interval(self, _attribute: object, value: int) -> None:
        if not (1 <= value <= 4095 if self.version == 3 else value % 100 == 0 and 100 <= value <= 25500):
            raise ValueError(f"advert_interval_cs {value} cannot be sent by VRRPv{self.version}")

    @family.default
    def _family_of_vips(self) -> Family:
        return _family_of(self.vips[0])


@attrs.frozen(kw_only=True)
class RpcPeer:
    """One `[[rpc.peers]]`: another node, reached over ZeroMQ and authenticated by its CURVE public key."""

    name: str
    endpoint: str
    public_key_file: Path


@attrs.frozen(kw_only=True)
class RpcSettings:
    """`[rpc]`: this node's listening endpoint, its CURVE secret key and its peers."""

    listen: str
    secret_key_file: Path
    peers: tuple[RpcPeer, ...] = ()
    # Without CURVE: for tests and labs only.
    insecure: bool = False


@attrs.frozen(kw_only=True)
class ActorSettings:
    """An extra actor run under the kernel's supervision (`[[actor]]`): a plugin, or a test's actor."""

    name: str
    factory: str  # "package.module:ClassName", an `ffo.actors.base.Actor` subclass
    stop_order: int = 2  # 0 stops first (VRRP), 1 next (VIP), 2 and up the rest
    options: dict[str, object] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class EventLogSettings:
    """`[events]`: how the event log is written, rotated and kept (see `ffo.eventlog`)."""

    # Group commit: records reach the OS at once; fdatasync runs at most this often (off the event loop).
    fsync_interval_ns: int = 10_000_000
    segment_max_bytes: int = 64 << 20
    segment_max_age_ns: int = 86400 * NS_PER_S
    retain_bytes: int = 1 << 30
    retain_age_ns: int = 30 * 86400 * NS_PER_S
    # An uneventful run of periodic advertisements is written at least this often (what a crash can lose).
    run_flush_interval_ns: int = 60 * NS_PER_S


@attrs.frozen(kw_only=True)
class NodeConfig:
    """A whole configuration file: `[node]`, the `[[instance]]`s and the optional `[rpc]`."""

    name: str
    run_dir: Path = Path("/run/ffo")
    state_dir: Path = Path("/var/lib/ffo")
    # SCHED_FIFO priority for the timing-critical actors; 0 means "do not ask for real-time scheduling".
    realtime_priority: int = attrs.field(default=0, validator=_0_TO_99)
    instances: tuple[InstanceSettings, ...] = ()
    actors: tuple[ActorSettings, ...] = ()
    rpc: RpcSettings | None = None
    events: EventLogSettings = attrs.field(factory=EventLogSettings)
    test_clock_skew_ns: int = 0
    """`[node] test_clock_skew` ("-1.5s", "250ms"): for tests only, this node's wall clock reads that much
    ahead (behind, if negative). Namespaces on one machine share one clock; this is how the RPC tests make a
    peer's clock differ, to show that the offset is measured and applied."""

    @property
    def events_dir(self) -> Path:
        """Where the actors' event streams live: `<state_dir>/events/<actor>/`."""
        return self.state_dir / "events"


# ------------------------------------------------------------------------------------------- durations


def parse_duration(text: str) -> int:
    """A duration such as `"10ms"`, `"1s"`, `"1.5s"`, `"250us"` or `"2m"`, in integer nanoseconds.

    The number is decimal and exact (no float rounding); the unit is one of ns, us (or µs), ms, s, m, h.
    Raises `ValueError` with a sentence naming the text when it is not a duration.
    """
    shown = _show(text)
    match = _DURATION.fullmatch(text)
    if match is None or len(text) > 64:
        raise ValueError(f'{shown} is not a duration (write a number and a unit, e.g. "10ms", "1.5s")')
    number, unit = match.groups()
    if not unit:
        raise ValueError(f"{shown} has no unit (use {_UNIT_LIST})")
    if unit not in _UNITS:
        raise ValueError(f"{shown} has an unknown unit {_show(unit)} (use {_UNIT_LIST})")
    value = Fraction(number) * _UNITS[unit]
    if value.denominator != 1:
        raise ValueError(f"{shown} is not a whole number of nanoseconds")
    return int(value)


def parse_size(text: str) -> int:
    """A size such as `"64MiB"`, `"1GiB"`, `"4096"` (bytes), as an integer number of bytes."""
    match = _SIZE.fullmatch(text.strip())
    if match is None or len(text) > 64:
        raise ValueError(f'{_show(text)} is not a size (write a number and a unit, e.g. "64MiB", "1GiB")')
    number, unit = match.groups()
    if unit not in _SIZE_UNITS:
        raise ValueError(f"{_show(text)} has an unknown unit {_show(unit)} (use B, KiB, MiB, GiB or TiB)")
    return int(number) * _SIZE_UNITS[unit]


def _interval_problem(text: str, ns: int, version: int) -> str | None:
    """Why `text` cannot be sent as the advertisement interval of `version`, or None when it can."""
    if version == 2:
        if ns % NS_PER_S:
            return f"{_show(text)} is not a whole number of seconds (VRRPv2 advertises whole seconds)"
        if not 1 <= ns // NS_PER_S <= 255:
            return f"{_show(text)} is not in 1s..255s (VRRPv2)"
        return None
    if ns % NS_PER_CS:
        return f"{_show(text)} is not a multiple of 10ms"
    if not 1 <= ns // NS_PER_CS <= 4095:
        return f"{_show(text)} is not in 10ms..40.95s (VRRPv3 advertises 1..4095 centiseconds)"
    return None


# --------------------------------------------------------------------------------------------- reading


def _show(value: object) -> str:
    """A value as the user wrote it in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    return _kind(value)


def _kind(value: object) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "boolean"),
        (str, "string"),
        (int, "integer"),
        (float, "float"),
        (list, "an array"),
        (dict, "a table"),
    )
    for cls, name in kinds:
        if isinstance(value, cls):
            return name
    return "a date/time"


def _expected(what: str, value: object) -> str:
    if isinstance(value, list | dict):
        return f"expected {what}, got {_kind(value)}"
    return f"expected {what}, got {_kind(value)} {_show(value)}"


class _AlreadyReportedError(Exception):
    """A value was missing or wrong (and the problem already recorded): build nothing from it."""


def _need(value: _T | None) -> _T:
    if value is None:
        raise _AlreadyReportedError
    return value


class _Table:
    """One TOML table being read: remembers which keys were asked for, so the rest are reported unknown."""

    def __init__(self, data: Mapping[str, object], path: str, problems: list[tuple[str, str]]) -> None:
        self._data = data
        self._path = path
        self._problems = problems
        self._known: list[str] = []

    def path(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def problem(self, key: str, reason: str) -> None:
        self._problems.append((self.path(key), reason))

    def take(self, key: str, *, required: bool) -> object | None:
        """The raw value, or None when absent (reported when required)."""
        self._known.append(key)
        if key in self._data:
            return self._data[key]
        if required:
            self.problem(key, "missing required key")
        return None

    def string(self, key: str, default: str | None = None, what: str = "a string") -> str | None:
        value = self.take(key, required=default is None)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problem(key, _expected(what, value))
            return None
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int | None:
        value = self.take(key, required=default is None)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):  # bool is an int subclass
            self.problem(key, _expected("an integer", value))
            return None
        if not low <= value <= high:
            self.problem(key, f"{value} is not in {low}..{high}")
            return None
        return value

    def duration(self, key: str, default: str, *, minimum_ns: int = 1) -> int | None:
        """A duration string, in ns, at least `minimum_ns`."""
        text = self.string(key, default, 'a duration string such as "10ms" or "1s"')
        if text is None:
            return None
        try:
            value = parse_duration(text)
        except ValueError as error:
            self.problem(key, str(error))
            return None
        if value < minimum_ns:
            self.problem(key, f"{_show(text)} is shorter than the minimum {minimum_ns} ns")
            return None
        return value

    def signed_duration(self, key: str) -> int | None:
        """A duration that may start with "-", in ns; 0 when absent."""
        text = self.string(key, "0s", 'a duration string such as "-250ms" or "1s"')
        if text is None:
            return None
        try:
            return -parse_duration(text[1:]) if text.startswith("-") else parse_duration(text)
        except ValueError as error:
            self.problem(key, str(error))
            return None

    def size(self, key: str, default: str, *, minimum: int = 1) -> int | None:
        """A size string (`"64MiB"`) or an integer number of bytes, at least `minimum`."""
        value = self.take(key, required=False)
        if value is None:
            value = default
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.problem(key, _expected('a size such as "64MiB" or a number of bytes', value))
            return None
        try:
            size = value if isinstance(value, int) else parse_size(value)
        except ValueError as error:
            self.problem(key, str(error))
            return None
        if size < minimum:
            self.problem(key, f"{_show(value)} is smaller than the minimum of {minimum} bytes")
            return None
        return size

    def boolean(self, key: str, default: bool) -> bool | None:
        value = self.take(key, required=False)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, _expected("a boolean (true or false)", value))
            return None
        return value

    def array(self, key: str, *, required: bool) -> list[object] | None:
        value = self.take(key, required=required)
        if value is None:
            return None if required else []
        if not isinstance(value, list):
            self.problem(key, _expected("an array", value))
            return None
        return value

    def name(self, key: str) -> str | None:
        value = self.string(key)
        if value is not None and not _NAME.fullmatch(value):
            self.problem(key, f"{_show(value)} is not a valid name ({_NAME_RULE})")
            return None
        return value

    def path_value(self, key: str, default: str | None = None) -> Path | None:
        value = self.string(key, default)
        if value is not None and (not value or "\0" in value):
            self.problem(key, f"{_show(value)} is not a file system path")
            return None
        return None if value is None else Path(value)

    def tables(self, key: str, *, required: bool) -> list[_Table | None] | None:
        """An array of tables (`[[key]]`), one reader per element (None for an element that is no table)."""
        value = self.take(key, required=required)
        if value is None:
            return None if required else []
        if not isinstance(value, list):
            self.problem(key, _expected(f"an array of tables ([[{self.path(key)}]])", value))
            return None
        readers: list[_Table | None] = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                readers.append(_Table(item, f"{self.path(key)}[{index}]", self._problems))
            else:
                self.problem(f"{key}[{index}]", _expected("a table", item))
                readers.append(None)
        return readers

    def raw_table(self, key: str) -> dict[str, object]:
        """A free-form table (an actor's own options), checked only for being a table."""
        value = self.take(key, required=False)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(key, _expected("a table", value))
            return {}
        return dict(value)

    def table(self, key: str, *, required: bool) -> _Table | None:
        value = self.take(key, required=required)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(key, _expected(f"a table ([{self.path(key)}])", value))
            return None
        return _Table(value, self.path(key), self._problems)

    def finish(self) -> None:
        """Report every key that nobody asked for: unknown keys are usually typos."""
        for key in self._data:
            if key not in self._known:
                close = difflib.get_close_matches(key, self._known, n=1)
                hint = f" (did you mean {_show(close[0])}?)" if close else ""
                self.problem(key, f"unknown key{hint}")


# -------------------------------------------------------------------------------------------- sections


def parse_config(data: Mapping[str, object]) -> NodeConfig:
    """Validate a loaded TOML document; raise `ConfigError` listing every problem, or return the settings."""
    problems: list[tuple[str, str]] = []
    root = _Table(data, "", problems)
    node = root.table("node", required=True)
    name: str | None = None
    run_dir: Path | None = None
    state_dir: Path | None = None
    realtime_priority: int | None = None
    test_clock_skew_ns: int | None = 0
    if node is not None:
        name = node.name("name")
        run_dir = node.path_value("run_dir", "/run/ffo")
        state_dir = node.path_value("state_dir", "/var/lib/ffo")
        realtime_priority = node.integer("realtime_priority", 0, 99, default=0)
        test_clock_skew_ns = node.signed_duration("test_clock_skew")
        node.finish()
    instances = _parse_instances(root)
    rpc_table = root.table("rpc", required=False)
    rpc = None if rpc_table is None else _parse_rpc(rpc_table, name)
    actors = _parse_actors(root)
    events_table = root.table("events", required=False)
    events = EventLogSettings() if events_table is None else _parse_events(events_table)
    root.finish()
    if (
        problems
        or events is None
        or name is None
        or run_dir is None
        or state_dir is None
        or realtime_priority is None
        or test_clock_skew_ns is None
    ):
        raise ConfigError(problems)
    return NodeConfig(
        name=name,
        run_dir=run_dir,
        state_dir=state_dir,
        realtime_priority=realtime_priority,
        instances=instances,
        rpc=rpc,
        actors=actors,
        events=events,
        test_clock_skew_ns=test_clock_skew_ns,
    )


def _parse_events(table: _Table) -> EventLogSettings | None:
    """`[events]`: every key optional; sizes as "64MiB", durations as "10ms"."""
    fsync = table.duration("fsync_interval", "10ms", minimum_ns=100_000)
    segment_bytes = table.size("segment_max_bytes", "64MiB", minimum=4096)
    segment_age = table.duration("segment_max_age", "1d", minimum_ns=NS_PER_S)
    retain_bytes = table.size("retain_bytes", "1GiB", minimum=4096)
    retain_age = table.duration("retain_age", "30d", minimum_ns=NS_PER_S)
    run_flush = table.duration("run_flush_interval", "60s", minimum_ns=NS_PER_S)
    table.finish()
    if None in (fsync, segment_bytes, segment_age, retain_bytes, retain_age, run_flush):
        return None
    return EventLogSettings(
        fsync_interval_ns=_need(fsync),
        segment_max_bytes=_need(segment_bytes),
        segment_max_age_ns=_need(segment_age),
        retain_bytes=_need(retain_bytes),
        retain_age_ns=_need(retain_age),
        run_flush_interval_ns=_need(run_flush),
    )


_FACTORY: Final = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_BUILT_IN_ACTORS: Final = ("kernel", "vrrp", "vip", "rpc")


def _parse_actors(root: _Table) -> tuple[ActorSettings, ...]:
    """Every `[[actor]]`: name, factory, optional stop_order and options."""
    actors: list[ActorSettings] = []
    names: dict[str, int] = {}
    for index, reader in enumerate(root.tables("actor", required=False) or []):
        if reader is None:
            continue
        name = reader.name("name")
        factory = reader.string("factory")
        stop_order = reader.integer("stop_order", 0, 9, default=2)
        options = reader.raw_table("options")
        reader.finish()
        if factory is not None and _FACTORY.fullmatch(factory) is None:
            reader.problem("factory", f"{_show(factory)} is not of the form package.module:ClassName")
            factory = None
        if name is not None and name in _BUILT_IN_ACTORS:
            reader.problem("name", f"{_show(name)} is the name of a built-in actor")
        elif name is not None and names.setdefault(name, index) != index:
            reader.problem("name", f"{_show(name)} is already the name of actor[{names[name]}]")
        elif name is not None and factory is not None and stop_order is not None:
            actors.append(ActorSettings(name=name, factory=factory, stop_order=stop_order, options=options))
    return tuple(actors)


def _parse_instances(root: _Table) -> tuple[InstanceSettings, ...]:
    """Every `[[instance]]`, then the checks across instances (on instances that are valid by themselves)."""
    readers = root.tables("instance", required=False) or []
    instances: list[InstanceSettings] = []
    names: dict[str, int] = {}
    routers: dict[tuple[str, int, Family], int] = {}
    vips: dict[IPAddress, int] = {}
    for index, reader in enumerate(readers):
        instance = None if reader is None else _parse_instance(reader)
        if reader is None or instance is None:
            continue
        instances.append(instance)
        first = names.setdefault(instance.name, index)
        if first != index:
            reader.problem("name", f"{_show(instance.name)} is already the name of instance[{first}]")
        router = (instance.interface, instance.vrid, instance.family)
        first = routers.setdefault(router, index)
        if first != index:
            family = _FAMILY_NAME[instance.family]
            router_name = f"VRID {instance.vrid} on {instance.interface} ({family})"
            reader.problem("vrid", f"{router_name} is already used by instance[{first}]")
        for position, vip in enumerate(instance.vips):
            first = vips.setdefault(vip, index)
            if first != index:
                reader.problem(f"vips[{position}]", f"{vip} is already a VIP of instance[{first}]")
    return tuple(instances)


def _parse_instance(table: _Table) -> InstanceSettings | None:
    name = table.name("name")
    interface = _interface(table)
    vrid = table.integer("vrid", 1, 255)
    priority = table.integer("priority", 1, 255)
    version = table.integer("version", 2, 3, default=3)
    addresses = _addresses(table, "vips", vips=True, family=None)
    family = None if addresses is None else _family_of(addresses[0][0])
    interval_cs = _advert_interval(table, version)
    preempt = table.boolean("preempt", True)
    accept = table.boolean("accept", True)
    peers = _addresses(table, "unicast_peers", vips=False, family=family)
    use_vmac = table.boolean("use_vmac", False)
    pseudo_header = table.boolean("checksum_ipv4_pseudo_header", True)
    table.finish()
    if version == 2 and family == Family.IPV6:
        table.problem("version", "VRRPv2 is IPv4 only, but the vips are IPv6")
        return None
    try:
        return InstanceSettings(
            name=_need(name),
            interface=_need(interface),
            vrid=_need(vrid),
            priority=_need(priority),
            vips=tuple(address for address, _ in _need(addresses)),
            vip_prefixes=tuple(prefix for _, prefix in _need(addresses)),
            advert_interval_cs=_need(interval_cs),
            version=_need(version),
            preempt=_need(preempt),
            accept=_need(accept),
            unicast_peers=tuple(address for address, _ in _need(peers)),
            use_vmac=_need(use_vmac),
            checksum_ipv4_pseudo_header=_need(pseudo_header),
        )
    except _AlreadyReportedError:  # already reported
        return None


def _interface(table: _Table) -> str | None:
    # Linux's dev_valid_name(): 1..15 bytes, not "." or "..", no "/", ":" or white space.
    value = table.string("interface")
    if value is None:
        return None
    if value in ("", ".", "..") or len(value.encode()) > 15 or any(c in "/:" or c.isspace() for c in value):
        reason = 'at most 15 characters, no "/", ":" or white space'
        table.problem("interface", f"{_show(value)} is not a valid interface name ({reason})")
        return None
    return value


def _advert_interval(table: _Table, version: int | None) -> int | None:
    text = table.string("advert_interval", "1s", 'a duration string such as "1s" or "100ms"')
    if text is None:
        return None
    try:
        ns = parse_duration(text)
    except ValueError as error:
        table.problem("advert_interval", str(error))
        return None
    if version is None:  # already reported; the rules depend on the version
        return None
    problem = _interval_problem(text, ns, version)
    if problem is not None:
        table.problem("advert_interval", problem)
        return None
    return ns // NS_PER_CS


def _address(item: object, *, with_prefix: bool) -> tuple[IPAddress, int] | str:
    """One address string (with an optional /prefix when `with_prefix`), or why it is not one."""
    if not isinstance(item, str):
        return _expected("an address string", item)
    address: IPAddress
    try:
        if with_prefix:
            interface = ipaddress.ip_interface(item)
            address, prefix = interface.ip, interface.network.prefixlen
        else:
            address = ipaddress.ip_address(item)
            prefix = address.max_prefixlen
    except ValueError:
        optional = " (with an optional /prefix)" if with_prefix else ""
        return f"{_show(item)} is not an IPv4 or IPv6 address{optional}"
    for unusable, what in (
        (address.is_unspecified, "the unspecified address"),
        (address.is_multicast, "a multicast address"),
        (address.is_loopback, "a loopback address"),
    ):
        if unusable:
            return f"{address} is {what}"
    return address, prefix


def _addresses(table: _Table, key: str, *, vips: bool, family: Family | None) -> list[tuple[IPAddress, int]] | None:
    """`vips` (required; /prefix allowed; the first sets the family) or `unicast_peers` (in `family`).

    All in one family and without duplicates; at most 255 VIPs (the advertisement's 8-bit count).
    """
    items = table.array(key, required=vips)
    if items is None:
        return None
    if vips and not items:
        table.problem(key, "must list at least one address")
    if vips and len(items) > 255:
        table.problem(key, f"{len(items)} addresses; an advertisement carries at most 255")
    ok = not vips or 1 <= len(items) <= 255
    result: list[tuple[IPAddress, int]] = []
    for index, item in enumerate(items):
        parsed = _address(item, with_prefix=vips)
        if isinstance(parsed, str):
            reason = parsed
        elif vips and result and parsed[0].version != result[0][0].version:
            reason = f"{parsed[0]} is IPv{parsed[0].version}, but {result[0][0]} is IPv{result[0][0].version}"
            reason += "; one instance has one family (use two instances)"
        elif family is not None and parsed[0].version != family:
            reason = f"{parsed[0]} is IPv{parsed[0].version}, but the vips are {_FAMILY_NAME[family]}"
        elif any(parsed[0] == seen for seen, _ in result):
            reason = f"{parsed[0]} is listed twice"
        else:
            result.append(parsed)
            continue
        table.problem(f"{key}[{index}]", reason)
        ok = False
    return result if ok else None


def _endpoint(table: _Table, key: str, *, listen: bool) -> str | None:
    value = table.string(key)
    if value is None:
        return None
    match = _ENDPOINT.fullmatch(value)
    if match is None:
        table.problem(key, f"{_show(value)} is not a ZeroMQ endpoint (tcp://HOST:PORT or ipc://PATH)")
        return None
    port = match.group(1)
    if port is not None and not (port == "*" and listen) and not (port.isdigit() and 1 <= int(port) <= 65535):
        table.problem(key, f"port {port} is not in 1..65535" + (' (or "*")' if listen else ""))
        return None
    return value


def _parse_rpc(table: _Table, node_name: str | None) -> RpcSettings | None:
    listen = _endpoint(table, "listen", listen=True)
    secret_key_file = table.path_value("secret_key_file")
    insecure = table.boolean("insecure", False)
    readers = table.tables("peers", required=False)
    table.finish()
    peers: list[RpcPeer] = []
    names: dict[str, int] = {}
    for index, reader in enumerate(readers or []):
        if reader is None:
            continue
        name = reader.name("name")
        endpoint = _endpoint(reader, "endpoint", listen=False)
        public_key_file = reader.path_value("public_key_file")
        reader.finish()
        if name is not None and name == node_name:
            reader.problem("name", f"{_show(name)} is this node's own name (node.name)")
        elif name is not None and names.setdefault(name, index) != index:
            reader.problem("name", f"{_show(name)} is already the name of rpc.peers[{names[name]}]")
        elif name is not None and endpoint is not None and public_key_file is not None:
            peers.append(RpcPeer(name=name, endpoint=endpoint, public_key_file=public_key_file))
    if listen is None or secret_key_file is None or insecure is None or readers is None:
        return None
    return RpcSettings(listen=listen, secret_key_file=secret_key_file, peers=tuple(peers), insecure=insecure)


# ----------------------------------------------------------------------------------------------- files

_TOML_POSITION: Final = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def loads_config(text: str, *, source: str = "<config>") -> NodeConfig:
    """Parse TOML text; a syntax error is a `ConfigError` whose path is `source:LINE:COLUMN`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = _TOML_POSITION.search(message)
        path = source
        if position is not None:
            path = f"{source}:{position.group(1)}:{position.group(2)}"
            message = message[: position.start()]
        raise ConfigError([(path, f"invalid TOML: {message}")]) from error
    return parse_config(data)


def load_config(path: Path) -> NodeConfig:
    """Read and parse one file: `ConfigUnreadable` when it cannot be read, `ConfigError` when it is wrong."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigUnreadable(path, error.strerror or str(error)) from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError([(str(path), f"is not UTF-8 text (byte {error.start})")]) from error
    return loads_config(text, source=str(path))
