"""Message classes by stable type name and schema version, their upcasters, and the runtime's system messages.

Stable identity (STYLE convention 7, after eventsourcing's ``register_topic`` and class versions): every
message class is registered under an explicit name such as ``"actor.ready"``, never its qualname, so a class
can be renamed or moved without changing the wire. A change to its fields bumps its version and adds a pure
upcaster, ``fn(fields_at_vN) -> fields_at_vN+1``; a reader applies the chain in order, so that an old message
(from a peer not yet upgraded, or from the event log) is read as the current class. Each upcaster is tested
with a stored sample of the old version. Were `ActorReady` to gain a field, for example:

    @message("actor.ready", version=2)
    @attrs.frozen(kw_only=True)
    class ActorReady: ...

    @upcaster("actor.ready", from_version=1)
    def _ready_v1_to_v2(fields: dict[str, Any]) -> dict[str, Any]:
        fields["incarnation"] = 0
        return fields

Naming (eventsourcing, STYLE convention 6): events in the past tense, commands in the imperative.

This module also gives stable names to the VRRP value types that travel inside messages as members of the
``Input`` and ``Effect`` unions (see `ffo.bus.convert`, tagged unions).
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable
from typing import Final, TypeVar

import attrs

from ffo.bus.convert import ConversionError, RegistryError, register_type_name
from ffo.errors import LocalProtocolError, RemoteProtocolError
from ffo.vrrp import effects, inputs

__all__ = [
    "ActorExited",
    "ActorReady",
    "ActorStopping",
    "Heartbeat",
    "Hello",
    "MessageType",
    "NotAMessageError",
    "Stop",
    "UnknownTypeError",
    "UnknownVersionError",
    "Upcaster",
    "check_registry",
    "lookup",
    "message",
    "registered",
    "registration",
    "registration_of",
    "upcast",
    "upcaster",
]

C = TypeVar("C", bound=type)
Upcaster = Callable[[dict[str, object]], dict[str, object]]
"""Turns the fields of version N into the fields of version N+1; pure, may change and return its argument."""

_short = reprlib.Repr()
_short.maxstring = 60
_NAME: Final = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")


@attrs.frozen
class MessageType:
    """A registered message class: its stable `name` and its current `version`."""

    name: str
    version: int
    cls: type


class UnknownTypeError(RemoteProtocolError, LookupError):
    """No message class is registered under this type name."""

    def __init__(self, type_name: str) -> None:
        super().__init__(f"unknown message type {_short.repr(type_name)}")
        self.type_name = type_name


class UnknownVersionError(RemoteProtocolError):
    """A version this node cannot read: newer than its class, or older than its upcasters reach."""

    def __init__(self, type_name: str, version: int, detail: str) -> None:
        super().__init__(f"{type_name} v{version}: {detail}")
        self.type_name = type_name
        self.version = version


class NotAMessageError(LocalProtocolError, TypeError):
    """An object of a class that is not a registered message was given to the bus: a bug."""


_by_name: dict[str, MessageType] = {}
_by_class: dict[type, MessageType] = {}
_upcasters: dict[tuple[str, int], Upcaster] = {}


def message(name: str, *, version: int) -> Callable[[C], C]:
    """Register a frozen attrs class as the message `name` at schema `version` (≥ 1).

    Sets the class variables ``TYPE`` and ``VERSION``. A name or a class registered twice is a `RegistryError`.
    """
    if not _NAME.fullmatch(name):
        raise RegistryError(f"message type name {name!r} is not dotted lower_case words")
    if type(version) is not int or version < 1:
        raise RegistryError(f"{name}: version {version!r} must be an int ≥ 1")

    def register(cls: C) -> C:
        plain: type = cls  # attrs.has would narrow `cls` itself
        if not attrs.has(plain) or getattr(plain.__setattr__, "__name__", "") != "_frozen_setattrs":
            raise RegistryError(f"{cls.__qualname__}: a message must be a frozen attrs class")
        if name in _by_name:
            raise RegistryError(f"message type {name!r} is already {_by_name[name].cls.__qualname__}")
        if cls in _by_class:
            raise RegistryError(f"{cls.__qualname__} is already the message {_by_class[cls].name!r}")
        register_type_name(cls, name)
        setattr(cls, "TYPE", name)  # noqa: B010 - the class gains attributes mypy cannot see
        setattr(cls, "VERSION", version)  # noqa: B010
        _by_name[name] = _by_class[cls] = MessageType(name=name, version=version, cls=cls)
        return cls

    return register


def upcaster(type_name: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register `fn` as the pure step from version `from_version` of `type_name` to the next version."""
    if type(from_version) is not int or from_version < 1:
        raise RegistryError(f"{type_name}: from_version {from_version!r} must be an int ≥ 1")

    def register(fn: Upcaster) -> Upcaster:
        key = (type_name, from_version)
        if key in _upcasters:
            raise RegistryError(f"{type_name}: an upcaster from v{from_version} is already registered")
        _upcasters[key] = fn
        return fn

    return register


def registration(type_name: str) -> MessageType:
    """The message registered as `type_name`; `UnknownTypeError` if none is."""
    found = _by_name.get(type_name)
    if found is None:
        raise UnknownTypeError(type_name)
    return found


def registration_of(cls: type) -> MessageType:
    """The registration of message class `cls` (exactly: a subclass is not its parent's message)."""
    found = _by_class.get(cls)
    if found is None:
        raise NotAMessageError(f"{cls.__qualname__} is not a registered message class")
    return found


def lookup(type_name: str) -> type:
    """The class registered as `type_name`; `UnknownTypeError` if none is."""
    return registration(type_name).cls


def registered() -> tuple[MessageType, ...]:
    """Every registered message, by name."""
    return tuple(sorted(_by_name.values(), key=lambda found: found.name))


def upcast(type_name: str, version: int, fields: dict[str, object]) -> dict[str, object]:
    """`fields` of `type_name` at `version`, brought to its current version by the registered upcasters.

    Raises `UnknownTypeError`, `UnknownVersionError` (newer than ours, below 1, or no upcaster reaches it) or
    `ConversionError` (an upcaster could not make sense of the fields: they were not of that version).
    """
    current = registration(type_name).version
    if version > current:
        raise UnknownVersionError(type_name, version, f"newer than v{current}, the latest known here")
    if version < 1:
        raise UnknownVersionError(type_name, version, "versions start at 1")
    for step in range(version, current):
        fn = _upcasters.get((type_name, step))
        if fn is None:
            raise UnknownVersionError(type_name, version, f"no upcaster from v{step} to v{step + 1}")
        try:
            fields = fn(fields)
        except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
            raise ConversionError("", f"upcasting v{step} to v{step + 1} failed: {error!r}") from None
        if type(fields) is not dict:
            raise LocalProtocolError(f"the {type_name} upcaster from v{step} returned {type(fields).__name__}")
    return fields


def check_registry() -> list[str]:
    """Problems with the registrations, for a test: upcasters for unknown types or versions, gaps in chains."""
    problems = []
    for type_name, from_version in sorted(_upcasters):
        found = _by_name.get(type_name)
        if found is None:
            problems.append(f"upcaster for unknown message type {type_name!r}")
        elif from_version >= found.version:
            problems.append(f"{type_name}: upcaster from v{from_version}, but v{found.version} is the latest")
    for found in _by_name.values():
        steps = sorted(v for name, v in _upcasters if name == found.name and v < found.version)
        if steps and steps != list(range(steps[0], found.version)):
            problems.append(f"{found.name}: upcasters from {steps} leave a gap before v{found.version}")
    return problems


# -- the runtime's system messages (ffo.actors) -----------------------------------------------------------------


@message("actor.hello", version=1)
@attrs.frozen(kw_only=True)
class Hello:
    """Published by a joining client until it hears it back: both directions of the bus are then live."""

    actor: str
    nonce: str


@message("actor.ready", version=1)
@attrs.frozen(kw_only=True)
class ActorReady:
    """An actor finished starting (the ready handshake); `incarnation` counts its restarts."""

    actor: str
    pid: int
    incarnation: int


@message("actor.heartbeat", version=1)
@attrs.frozen(kw_only=True)
class Heartbeat:
    """An actor is alive; `loop_lag_ns` is how late its event loop woke for this beat."""

    actor: str
    pid: int
    seq: int
    loop_lag_ns: int


@message("actor.stop", version=1)
@attrs.frozen(kw_only=True)
class Stop:
    """Command: the actor named `actor` must stop (for `reason`)."""

    actor: str
    reason: str


@message("actor.stopping", version=1)
@attrs.frozen(kw_only=True)
class ActorStopping:
    """An actor is stopping (for `reason`): its absence from now on is expected."""

    actor: str
    reason: str


@message("actor.exited", version=1)
@attrs.frozen(kw_only=True)
class ActorExited:
    """The kernel saw an actor's process (or task) end: `how` it ended, and whether a stop was asked for.

    Other actors act on it at once (the kernel notices within milliseconds, heartbeats take seconds): the VIP
    actor speaks for a VRRP actor that died while master.
    """

    actor: str
    pid: int
    incarnation: int
    how: str
    expected: bool


# -- VRRP value types carried inside messages (members of the Input and Effect unions) --------------------------

_VALUE_TYPES: Final[dict[str, type]] = {
    "vrrp.started": inputs.Started,
    "vrrp.shutdown_requested": inputs.ShutdownRequested,
    "vrrp.advertisement_received": inputs.AdvertisementReceived,
    "vrrp.timer_expired": inputs.TimerExpired,
    "vrrp.priority_changed": inputs.PriorityChanged,
    "vrrp.interface_changed": inputs.InterfaceChanged,
    "vrrp.transitioned": effects.Transitioned,
    "vrrp.send_advertisement": effects.SendAdvertisement,
    "vrrp.set_timer": effects.SetTimer,
    "vrrp.cancel_timer": effects.CancelTimer,
    "vrrp.acquire_vips": effects.AcquireVips,
    "vrrp.release_vips": effects.ReleaseVips,
    "vrrp.announce_vips": effects.AnnounceVips,
    "vrrp.dropped": effects.Dropped,
}
for _name, _cls in _VALUE_TYPES.items():
    register_type_name(_cls, _name)
