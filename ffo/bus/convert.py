"""Frozen attrs values to msgpack-native data and back, driven by the classes' type hints.

cattrs' ideas without cattrs (STYLE §3): the model stays free of wire rules (no ``to_dict``); a converter for
each class is compiled once from ``typing.get_type_hints`` and cached; structuring is strict, as cattrs'
``forbid_extra_keys`` and its validation notes are, and every failure names the field path and the reason:
``advertisement.addresses[1]: not an IPv4 or IPv6 address``.

Wire forms (all msgpack-native: None, bool, int, float, str, bytes, list, map with str keys):

- ``int`` (64-bit range), ``float``, ``str``, ``bytes``, ``bool``, ``None`` as themselves. A bool is never an
  int here, nor an int a bool: ``True`` for a priority is an error both ways. An int is accepted for a float.
- ``X | None``: None, or X's form.
- an attrs class: a map of its fields by attribute name (``init=False`` fields are derived and not sent). An
  unknown key is an error; a missing key is an error unless the field has a default.
- a union of several attrs classes (``Effect``): the class's map plus ``"_type"``: its stable type name
  (cattrs' ``configure_tagged_union``). A stable name is registered with `register_type_name`, never taken
  from a qualname (STYLE convention 7); ``ffo.bus.messages`` names the message and VRRP value types.
- ``tuple[X, ...]`` and ``tuple[X, Y]``: a list. ``dict[str, X]``: a map.
- an Enum: its value (matched with its type too: ``True`` is not the member valued 1). ``Literal[...]``: the
  value itself.
- ``IPv4Address``, ``IPv6Address`` and ``IPv4Address | IPv6Address``: the address as a string.

Blame: `ConversionError` is the data's fault. Structuring remote data that raises it is the remote's fault
(the codec reports ``bad_fields``); unstructuring our own value that raises it is our bug (the codec raises
``EncodeError``). A type the converter cannot handle at all raises `UnsupportedTypeError` when its converter is
first compiled.

Pure: no I/O, no clock; the caches are filled on first use and never change meaning afterwards.
"""

from __future__ import annotations

import enum
import ipaddress
import reprlib
import types
import typing
from collections.abc import Callable
from typing import Final, TypeVar, cast, overload

import attrs

from ffo.errors import FfoError, LocalProtocolError

__all__ = [
    "TAG",
    "ConversionError",
    "RegistryError",
    "UnsupportedTypeError",
    "prepare",
    "register_type_name",
    "structure",
    "type_name_of",
    "unstructure",
]

T = TypeVar("T")
_Fn = Callable[[object], object]
_Pair = tuple[_Fn, _Fn]  # (unstructure, structure)

TAG: Final = "_type"
"""The key that names the class of a member of a tagged union."""

_INT_MIN: Final = -(2**63)
_INT_END: Final = 2**64  # msgpack integers: int64 and uint64
_ADDRESS_TYPES: Final = (ipaddress.IPv4Address, ipaddress.IPv6Address)
_ADDRESS_NAMES: Final[dict[type, str]] = {ipaddress.IPv4Address: "IPv4", ipaddress.IPv6Address: "IPv6"}
_NATIVE_SCALARS: Final = (bool, int, float, str, bytes, type(None))

_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40


class ConversionError(FfoError, ValueError):
    """Data that does not fit its type: `path` names the field (``advertisement.addresses[1]``), `reason` why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def within(self, segment: str) -> ConversionError:
        """The same error seen one level up, where `segment` (a field name or ``[index]``) led to it."""
        if not self.path:
            path = segment
        elif self.path.startswith("["):
            path = segment + self.path
        else:
            path = f"{segment}.{self.path}"
        return ConversionError(path, self.reason)


class UnsupportedTypeError(LocalProtocolError, TypeError):
    """A class or annotation the converter cannot carry: a bug in a message definition."""


class RegistryError(LocalProtocolError, ValueError):
    """A stable type name registered twice, or for two classes: a bug at import time."""


def _wrong(expected: str, value: object) -> ConversionError:
    return ConversionError("", f"expected {expected}, got {type(value).__name__} {_short.repr(value)}")


# -- stable type names ------------------------------------------------------------------------------------------

_names: dict[type, str] = {}
_named: dict[str, type] = {}


def register_type_name(cls: type, name: str) -> None:
    """Give `cls` the stable `name` that tags it in unions; one name per class and one class per name."""
    if _named.get(name, cls) is not cls:
        raise RegistryError(f"type name {name!r} is already used by {_named[name].__qualname__}")
    if _names.get(cls, name) != name:
        raise RegistryError(f"{cls.__qualname__} is already named {_names[cls]!r}")
    _names[cls] = name
    _named[name] = cls


def type_name_of(cls: type) -> str | None:
    """The stable type name of `cls`, if it has one."""
    return _names.get(cls)


# -- scalars ----------------------------------------------------------------------------------------------------


def _un_int(value: object) -> object:
    if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
        if _INT_MIN <= value < _INT_END:
            return int(value)
        raise ConversionError("", f"{value} does not fit a 64-bit integer")
    raise _wrong("an int", value)


def _st_int(data: object) -> object:
    if type(data) is int:
        return data
    raise _wrong("an int", data)


def _un_float(value: object) -> object:
    if type(value) is float:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise ConversionError("", f"{value} does not fit a float") from None
    raise _wrong("a float", value)


def _st_float(data: object) -> object:
    if type(data) is float:
        return data
    if type(data) is int:
        return float(data)  # msgpack ints are at most 64 bits: no overflow
    raise _wrong("a float", data)


def _bool(value: object) -> object:
    if type(value) is bool:
        return value
    raise _wrong("a bool", value)


def _str(value: object) -> object:
    if type(value) is str:
        return value
    raise _wrong("a str", value)


def _un_bytes(value: object) -> object:
    if type(value) is bytes:
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise _wrong("bytes", value)


def _st_bytes(data: object) -> object:
    if type(data) is bytes:
        return data
    raise _wrong("bytes", data)


def _none(value: object) -> object:
    if value is None:
        return None
    raise _wrong("None", value)


_SCALARS: Final[dict[object, _Pair]] = {
    int: (_un_int, _st_int),
    float: (_un_float, _st_float),
    bool: (_bool, _bool),
    str: (_str, _str),
    bytes: (_un_bytes, _st_bytes),
    type(None): (_none, _none),
    None: (_none, _none),
}


# -- compiling --------------------------------------------------------------------------------------------------

_cache: dict[object, _Pair] = {}
_plans: dict[type, _ClassPlan] = {}


class _Pending:
    """What one compilation builds, published to the caches only when complete: a recursive class refers to
    itself while it is being built, and no other caller may see it half-built."""

    def __init__(self) -> None:
        self.pairs: dict[object, _Pair] = {}
        self.plans: dict[type, _ClassPlan] = {}

    def plan(self, cls: type) -> _ClassPlan:
        _compile(cls, self)
        return self.plans.get(cls) or _plans[cls]


def _converters(tp: object) -> _Pair:
    found = _cache.get(tp)
    if found is None:
        pending = _Pending()
        found = _compile(tp, pending)
        _plans.update(pending.plans)
        _cache.update(pending.pairs)
    return found


def _compile(tp: object, pending: _Pending) -> _Pair:
    found = _cache.get(tp) or pending.pairs.get(tp)
    if found is not None:
        return found
    pair = _build(tp, pending)
    pending.pairs[tp] = pair
    return pair


def _build(tp: object, pending: _Pending) -> _Pair:
    scalar = _SCALARS.get(tp)
    if scalar is not None:
        return scalar
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _union(args, pending)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _homogeneous_tuple(_compile(args[0], pending))
    if origin is tuple and Ellipsis not in args:
        return _fixed_tuple(tuple(_compile(arg, pending) for arg in args))
    if origin is dict and len(args) == 2:
        if args[0] is not str:
            raise UnsupportedTypeError(f"{tp}: only str keys can go on the wire")
        return _dict(_compile(args[1], pending))
    if origin is typing.Literal:
        return _literal(args)
    if isinstance(tp, typing.NewType):
        return _compile(tp.__supertype__, pending)
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return _enum(tp)
        if tp in _ADDRESS_TYPES:
            return _addresses((tp,))
        if attrs.has(tp):
            plan = _ClassPlan(tp)
            pair = pending.pairs[tp] = (plan.unstructure, plan.structure)  # before the fields: recursion
            pending.plans[tp] = plan
            plan.finish(_field_plans(tp, pending))
            return pair
    raise UnsupportedTypeError(f"no wire form for {tp!r}")


def _union(args: tuple[object, ...], pending: _Pending) -> _Pair:
    members = tuple(arg for arg in args if arg is not type(None))
    optional = len(members) < len(args)
    if all(member in _ADDRESS_TYPES for member in members):
        inner = _addresses(cast(tuple[type, ...], members))
    elif len(members) == 1:
        inner = _compile(members[0], pending)
    elif all(isinstance(member, type) and attrs.has(member) for member in members):
        inner = _tagged(cast(tuple[type, ...], members), pending)
    else:
        names = " | ".join(getattr(arg, "__name__", repr(arg)) for arg in args)
        raise UnsupportedTypeError(f"{names}: a union must be X | None, of attrs classes, or of IP addresses")
    return _optional(inner) if optional else inner


def _optional(inner: _Pair) -> _Pair:
    un, st = inner

    def unstructure(value: object) -> object:
        return None if value is None else un(value)

    def structure(data: object) -> object:
        return None if data is None else st(data)

    return unstructure, structure


def _homogeneous_tuple(item: _Pair) -> _Pair:
    un, st = item

    def unstructure(value: object) -> object:
        if type(value) is not tuple:
            raise _wrong("a tuple", value)
        out = []
        for index, element in enumerate(value):
            try:
                out.append(un(element))
            except ConversionError as error:
                raise error.within(f"[{index}]") from None
        return out

    def structure(data: object) -> object:
        if type(data) is not list and type(data) is not tuple:
            raise _wrong("a list", data)
        out = []
        for index, element in enumerate(cast(list[object], data)):
            try:
                out.append(st(element))
            except ConversionError as error:
                raise error.within(f"[{index}]") from None
        return tuple(out)

    return unstructure, structure


def _fixed_tuple(items: tuple[_Pair, ...]) -> _Pair:
    def convert(value: object, expected: type, which: int) -> list[object]:
        if type(value) is not expected and type(value) is not tuple:
            raise _wrong("a list" if which else "a tuple", value)
        elements = cast(tuple[object, ...], value)
        if len(elements) != len(items):
            raise ConversionError("", f"expected {len(items)} items, got {len(elements)}")
        out = []
        for index, (element, pair) in enumerate(zip(elements, items, strict=True)):
            try:
                out.append(pair[which](element))
            except ConversionError as error:
                raise error.within(f"[{index}]") from None
        return out

    def unstructure(value: object) -> object:
        return convert(value, tuple, 0)

    def structure(data: object) -> object:
        return tuple(convert(data, list, 1))

    return unstructure, structure


def _dict(item: _Pair) -> _Pair:
    def convert(value: object, which: int) -> dict[str, object]:
        if type(value) is not dict:
            raise _wrong("a map", value)
        out: dict[str, object] = {}
        for key, element in cast(dict[object, object], value).items():
            if type(key) is not str:
                raise ConversionError(f"[{_short.repr(key)}]", "keys must be str")
            try:
                out[key] = item[which](element)
            except ConversionError as error:
                raise error.within(f"[{key!r}]") from None
        return out

    def unstructure(value: object) -> object:
        return convert(value, 0)

    def structure(data: object) -> object:
        return convert(data, 1)

    return unstructure, structure


def _literal(values: tuple[object, ...]) -> _Pair:
    if not all(type(value) in _NATIVE_SCALARS for value in values):
        raise UnsupportedTypeError(f"Literal{list(values)}: only scalar literals can go on the wire")
    allowed = {(type(value), value) for value in values}
    expected = "one of " + ", ".join(map(repr, values))

    def check(value: object) -> object:
        try:
            if (type(value), value) in allowed:
                return value
        except TypeError:  # unhashable: a list or a map
            pass
        raise _wrong(expected, value)

    return check, check


def _enum(cls: type[enum.Enum]) -> _Pair:
    members = {(type(member.value), member.value): member for member in cls}
    if not all(kind in _NATIVE_SCALARS for kind, _ in members):
        raise UnsupportedTypeError(f"{cls.__qualname__}: enum values must be scalars to go on the wire")
    expected = f"a {cls.__name__} value (" + ", ".join(repr(value) for _, value in members) + ")"

    def unstructure(value: object) -> object:
        if type(value) is cls:
            return value.value
        raise _wrong(f"a {cls.__name__}", value)

    def structure(data: object) -> object:
        try:
            found = members.get((type(data), data))
        except TypeError:  # unhashable
            found = None
        if found is None:
            raise _wrong(expected, data)
        return found

    return unstructure, structure


# Parsing an address string costs ~5 µs and printing one ~1 µs, while a node sees few distinct addresses:
# both are memoized, in tables that are emptied when full so that a peer sending made-up addresses cannot
# grow them.
_ADDRESS_MEMO_SIZE: Final = 4096
_address_of: dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}
_text_of: dict[object, str] = {}


def _addresses(kinds: tuple[type, ...]) -> _Pair:
    allowed = frozenset(kinds)
    names = " or ".join(name for kind, name in _ADDRESS_NAMES.items() if kind in kinds)

    def unstructure(value: object) -> object:
        if type(value) not in allowed:
            raise _wrong(f"an {names} address", value)
        text = _text_of.get(value)
        if text is None:
            if len(_text_of) >= _ADDRESS_MEMO_SIZE:
                _text_of.clear()
            text = _text_of[value] = str(value)
        return text

    def structure(data: object) -> object:
        if type(data) is not str:
            raise _wrong(f"an {names} address string", data)
        address = _address_of.get(data)
        if address is None:
            try:
                address = ipaddress.ip_address(data)
            except ValueError:
                raise ConversionError("", f"not an {names} address: {_short.repr(data)}") from None
            if len(_address_of) >= _ADDRESS_MEMO_SIZE:
                _address_of.clear()
            _address_of[data] = address
        if type(address) not in allowed:
            raise ConversionError("", f"not an {names} address: {_short.repr(data)}")
        return address

    return unstructure, structure


def _tagged(classes: tuple[type, ...], pending: _Pending) -> _Pair:
    by_class: dict[type, tuple[str, _ClassPlan]] = {}
    by_tag: dict[str, _ClassPlan] = {}
    for cls in classes:
        name = _names.get(cls)
        if name is None:
            raise UnsupportedTypeError(f"{cls.__qualname__} is in a union but has no stable type name")
        plan = pending.plan(cls)
        if any(field[0] == TAG for field in plan.fields):
            raise UnsupportedTypeError(f"{cls.__qualname__} has a field named {TAG!r}, the union tag")
        by_class[cls] = (name, plan)
        by_tag[name] = plan
    expected = ", ".join(map(repr, by_tag))

    def unstructure(value: object) -> object:
        found = by_class.get(type(value))
        if found is None:
            raise _wrong(f"one of {', '.join(cls.__name__ for cls in classes)}", value)
        name, plan = found
        return {TAG: name, **plan.unstructure_fields(value)}

    def structure(data: object) -> object:
        if type(data) is not dict:
            raise _wrong("a map", data)
        fields = cast(dict[object, object], data)
        if TAG not in fields:
            raise ConversionError(TAG, f"missing: the union tag (one of {expected})")
        tag = fields[TAG]
        plan = by_tag.get(tag) if type(tag) is str else None
        if plan is None:
            raise ConversionError(TAG, f"unknown type {_short.repr(tag)} (expected one of {expected})")
        return plan.build(fields, tagged=True)

    return unstructure, structure


# -- attrs classes ----------------------------------------------------------------------------------------------

_Field = tuple[str, str, _Fn, _Fn, bool]  # name (wire key), alias (init argument), unstructure, structure, required


class _ClassPlan:
    """How one attrs class goes to the wire and back; `fields` is filled in after it is cached (recursion).

    Each direction has a fast path (one comprehension, no bookkeeping) and, only when that fails, a slow path
    that finds the field to blame: the two agree, as they apply the same converters to the same data.
    """

    __slots__ = ("cls", "fields", "getters", "setters")

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.fields: tuple[_Field, ...] = ()
        self.getters: tuple[tuple[str, _Fn], ...] = ()
        self.setters: tuple[tuple[str, str, _Fn], ...] = ()

    def finish(self, fields: tuple[_Field, ...]) -> None:
        self.fields = fields
        self.getters = tuple((name, un) for name, _, un, _, _ in fields)
        self.setters = tuple((name, alias, st) for name, alias, _, st, _ in fields)

    def unstructure_fields(self, value: object) -> dict[str, object]:
        try:
            return {name: un(getattr(value, name)) for name, un in self.getters}
        except ConversionError:
            pass
        for name, un in self.getters:
            try:
                un(getattr(value, name))
            except ConversionError as error:
                raise error.within(name) from None
        raise AssertionError("unreachable: the fast path failed but no field does")

    def unstructure(self, value: object) -> object:
        if type(value) is not self.cls:
            raise _wrong(f"a {self.cls.__name__}", value)
        return self.unstructure_fields(value)

    def structure(self, data: object) -> object:
        if type(data) is not dict:
            raise _wrong("a map", data)
        return self.build(cast(dict[object, object], data), tagged=False)

    def build(self, data: dict[object, object], *, tagged: bool) -> object:
        if len(data) == len(self.setters) + tagged:  # every field present: the fast path may apply
            try:
                kwargs = {alias: st(data[name]) for name, alias, st in self.setters}
            except (KeyError, ConversionError):
                kwargs = self._checked_arguments(data, tagged)
        else:
            kwargs = self._checked_arguments(data, tagged)
        try:
            return self.cls(**kwargs)
        except (ValueError, TypeError, FfoError) as error:
            raise ConversionError("", f"{self.cls.__name__} refused it: {error}") from None

    def _checked_arguments(self, data: dict[object, object], tagged: bool) -> dict[str, object]:
        kwargs: dict[str, object] = {}
        used = 1 if tagged else 0
        for name, alias, _, st, required in self.fields:
            if name in data:
                used += 1
                try:
                    kwargs[alias] = st(data[name])
                except ConversionError as error:
                    raise error.within(name) from None
            elif required:
                raise ConversionError(name, "missing")
        if used != len(data):
            known = {field[0] for field in self.fields} | ({TAG} if tagged else set())
            extra = sorted(_short.repr(key) if type(key) is not str else key for key in data if key not in known)
            raise ConversionError(extra[0], f"unknown field of {self.cls.__name__}")
        return kwargs


def _field_plans(cls: type, pending: _Pending) -> tuple[_Field, ...]:
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError) as error:
        raise UnsupportedTypeError(f"{cls.__qualname__}: its annotations do not resolve: {error}") from None
    plans = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        if field.name not in hints:
            raise UnsupportedTypeError(f"{cls.__qualname__}.{field.name} has no type annotation")
        try:
            un, st = _compile(hints[field.name], pending)
        except UnsupportedTypeError as error:
            raise UnsupportedTypeError(f"{cls.__qualname__}.{field.name}: {error}") from None
        plans.append((field.name, field.alias or field.name, un, st, field.default is attrs.NOTHING))
    return tuple(plans)


# -- the API ----------------------------------------------------------------------------------------------------


def unstructure(obj: object, tp: object = None) -> object:
    """`obj` as msgpack-native data, converted as type `tp` (default: its own class).

    Pass the union (``unstructure(effect, Effect)``) to get the tagged form. Raises `ConversionError` if `obj`
    does not match its annotations, `UnsupportedTypeError` if the type has no wire form.
    """
    return _converters(type(obj) if tp is None else tp)[0](obj)


def prepare(*types: object) -> None:
    """Compile the converters of `types` now rather than at their first use (a few ms for a nested record):
    a timing-critical actor calls it at start-up so that its first transition is not the one that pays."""
    for tp in types:
        _converters(tp)


@overload
def structure(data: object, tp: type[T]) -> T: ...
@overload
def structure(data: object, tp: object) -> object: ...
def structure(data: object, tp: object) -> object:
    """The value of type `tp` (a class, or a type expression such as ``Effect`` or ``int | None``) that `data`
    describes. Raises `ConversionError` naming the field path; `UnsupportedTypeError` for a type with no wire
    form.
    """
    return _converters(tp)[1](data)
