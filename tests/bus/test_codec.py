"""The bus codec and message registry: round trips, every decode reason, fuzzing, and upcasting a stored sample."""

from __future__ import annotations

from typing import Any

import attrs
import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ffo.bus import (
    MAX_BODY_BYTES,
    ActorReady,
    ActorStopping,
    ConversionError,
    DecodeError,
    DecodeReason,
    EncodeError,
    Envelope,
    Heartbeat,
    Hello,
    NotAMessageError,
    RegistryError,
    Stop,
    UnknownTypeError,
    UnknownVersionError,
    UnsupportedTypeError,
    check_registry,
    decode,
    encode,
    lookup,
    message,
    registered,
    registration_of,
    structure,
    upcast,
    upcaster,
)
from ffo.errors import LocalProtocolError, RemoteProtocolError
from ffo.vrrp.effects import Effect
from tests.bus.test_convert import effects

HEADER: dict[str, Any] = {"id": "n1/a:abc:1", "src": "n1/a", "ts": 1_767_225_600_000_000_000, "mono": 42, "cause": None}


def frames_of(topic: str, message: object, cause: str | None = None) -> list[bytes]:
    return encode(topic, message, **{**HEADER, "cause": cause})


def raw(body: object, topic: bytes = b"t") -> list[bytes]:
    return [topic, msgpack.packb(body)]


def envelope_map(type_name: str = "actor.stop", v: object = 1, fields: object = None, **change: object) -> object:
    body = {"type": type_name, "v": v, **HEADER, "body": {"actor": "a", "reason": "r"} if fields is None else fields}
    return {**body, **change}


def reason_of(frames: list[Any]) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decode(frames)
    assert isinstance(caught.value, RemoteProtocolError)
    return caught.value


# -- test messages ------------------------------------------------------------------------------------------------


@message("test.codec.effects_emitted", version=1)
@attrs.frozen(kw_only=True)
class EffectsEmitted:
    instance: str
    effects: tuple[Effect, ...]


@message("test.codec.interval_measured", version=2)
@attrs.frozen(kw_only=True)
class IntervalMeasured:
    """Version 2: version 1 had `interval_ms`; intervals are centiseconds now (and labels are new)."""

    name: str
    interval_cs: int
    labels: tuple[str, ...] = ()


@upcaster("test.codec.interval_measured", from_version=1)
def _interval_measured_v1_to_v2(fields: dict[str, Any]) -> dict[str, Any]:
    fields["interval_cs"] = fields.pop("interval_ms") // 10
    return fields


# A version-1 IntervalMeasured(name="web", interval_ms=1230), as encoded by the version-1 class (written once
# with encode(); never regenerate it: it stands for what an old peer or an old event log holds).
STORED_V1 = [
    b"test.codec",
    b"\x88\xa4type\xbctest.codec.interval_measured\xa1v\x01\xa2id\xb1n1/probe:a1b2c3:7\xa3src\xa8n1/probe"
    b"\xa2ts\xcf\x18\x86rQ\xed\xfa\x00\x00\xa4mono\xcf\x00\x00\x00\x01*\x05\xf2\x00\xa5cause\xb2n1/kernel:d4e5f6:1"
    b"\xa4body\x82\xa4name\xa3web\xabinterval_ms\xcd\x04\xce",
]


@message("test.codec.no_upcaster", version=2)
@attrs.frozen(kw_only=True)
class NoUpcaster:
    x: int


# -- round trips --------------------------------------------------------------------------------------------------

SYSTEM = [
    Hello(actor="n1/vrrp", nonce="0123456789abcdef"),
    ActorReady(actor="vrrp", pid=4242, incarnation=3),
    Heartbeat(actor="vrrp", pid=4242, seq=17, loop_lag_ns=120_000),
    Stop(actor="vrrp", reason="node shutdown"),
    ActorStopping(actor="vrrp", reason="stop requested"),
]


@pytest.mark.parametrize("sent", SYSTEM, ids=lambda m: type(m).__name__)
def test_system_messages_round_trip_with_their_envelope(sent: object) -> None:
    frames = frames_of("sys.x", sent, cause="n1/kernel:ff:9")
    assert frames[0] == b"sys.x" and len(frames) == 2
    name = registration_of(type(sent)).name
    assert decode(frames) == Envelope(
        topic="sys.x", type=name, v=1, message=sent, **{**HEADER, "cause": "n1/kernel:ff:9"}
    )


def test_the_body_is_the_documented_map() -> None:
    frames = frames_of("sys.heartbeat", Heartbeat(actor="vrrp", pid=1, seq=2, loop_lag_ns=3))
    assert msgpack.unpackb(frames[1]) == {
        "type": "actor.heartbeat",
        "v": 1,
        **HEADER,
        "body": {"actor": "vrrp", "pid": 1, "seq": 2, "loop_lag_ns": 3},
    }


@given(st.lists(effects, max_size=5), st.text(max_size=10), st.none() | st.text(max_size=10))
def test_effects_round_trip_inside_a_message(sent: list[Effect], topic: str, cause: str | None) -> None:
    emitted = EffectsEmitted(instance="web", effects=tuple(sent))
    received = decode(frames_of(topic, emitted, cause=cause))
    assert (received.message, received.topic, received.cause) == (emitted, topic, cause)


def test_frames_may_be_any_bytes_buffer() -> None:
    topic, body = frames_of("sys.stop", Stop(actor="a", reason="r"))
    assert decode([bytearray(topic), memoryview(body)]).message == Stop(actor="a", reason="r")


# -- upcasting ----------------------------------------------------------------------------------------------------


def test_a_stored_version_1_sample_decodes_into_version_2() -> None:
    received = decode(STORED_V1)
    assert received.message == IntervalMeasured(name="web", interval_cs=123)
    assert (received.type, received.v, received.id, received.cause) == (
        "test.codec.interval_measured",
        1,
        "n1/probe:a1b2c3:7",
        "n1/kernel:d4e5f6:1",
    )
    assert (received.ts, received.mono) == (1_767_225_600_000_000_000, 5_000_000_000)


def test_the_current_version_is_not_upcast() -> None:
    sent = IntervalMeasured(name="web", interval_cs=5, labels=("a",))
    frames = frames_of("t", sent)
    assert msgpack.unpackb(frames[1])["v"] == 2
    assert decode(frames).message == sent


def test_upcast_applies_the_chain_and_refuses_what_it_cannot_reach() -> None:
    assert upcast("test.codec.interval_measured", 1, {"name": "n", "interval_ms": 100}) == {
        "name": "n",
        "interval_cs": 10,
    }
    with pytest.raises(UnknownVersionError, match="newer than v2"):
        upcast("test.codec.interval_measured", 3, {})
    with pytest.raises(UnknownVersionError, match="no upcaster from v1 to v2"):
        upcast("test.codec.no_upcaster", 1, {})
    with pytest.raises(UnknownTypeError):
        upcast("test.codec.nothing", 1, {})
    with pytest.raises(ConversionError, match="upcasting v1 to v2 failed: KeyError"):
        upcast("test.codec.interval_measured", 1, {"name": "n"})


# -- every decode reason ------------------------------------------------------------------------------------------

BAD = [
    (DecodeReason.BAD_FRAMES, [b"t"], "1 frames, expected 2"),
    (DecodeReason.BAD_FRAMES, [b"t", b"\x80", b""], "3 frames"),
    (DecodeReason.BAD_FRAMES, [b"\xff", b"\x80"], "is not UTF-8"),
    (DecodeReason.BAD_FRAMES, ["t", b"\x80"], "a frame is a str, not bytes"),
    (DecodeReason.BAD_FRAMES, [b"t", bytearray(MAX_BODY_BYTES + 1)], "a 1048577-byte frame"),
    (DecodeReason.BAD_FRAMES, [bytes(1025), b"\x80"], "a 1025-byte frame"),
    (DecodeReason.NOT_MSGPACK, [b"t", b""], ""),
    (DecodeReason.NOT_MSGPACK, [b"t", b"\xc1"], "FormatError"),
    (DecodeReason.NOT_MSGPACK, [b"t", b"\x80\x80"], "ExtraData"),
    (DecodeReason.NOT_MSGPACK, [b"t", b"\xcd\x01"], "incomplete"),
    (DecodeReason.NOT_MSGPACK, [b"t", b"\xa2\xff\xfe"], "UnicodeDecodeError"),
    (DecodeReason.NOT_MSGPACK, [b"t", b"\x81\x01\x02"], "map key"),
    (DecodeReason.NOT_MSGPACK, raw(msgpack.ExtType(1, b"x")), "max_ext_len"),
    (DecodeReason.NOT_MSGPACK, raw(msgpack.Timestamp(1, 0)), "max_ext_len"),
    (DecodeReason.NOT_MSGPACK, [b"t", b"\x91" * 5000], "StackError"),
    (DecodeReason.BAD_ENVELOPE, raw([1, 2]), "the body is a list, not a map"),
    (
        DecodeReason.BAD_ENVELOPE,
        raw({"type": "actor.stop"}),
        "missing body, cause, id, mono, src, ts, v",
    ),
    (DecodeReason.BAD_ENVELOPE, raw(envelope_map(extra=1)), "envelope keys: unknown 'extra'"),
    (DecodeReason.BAD_ENVELOPE, raw(envelope_map(type=1)), "'type' is a int 1"),
    (DecodeReason.BAD_ENVELOPE, raw(envelope_map(v=True)), "'v' is a bool True"),
    (DecodeReason.BAD_ENVELOPE, raw(envelope_map(id=b"x")), "'id' is a bytes"),
    (DecodeReason.BAD_ENVELOPE, raw(envelope_map(src=None)), "'src' is a NoneType"),
    (DecodeReason.BAD_ENVELOPE, raw(envelope_map(ts=1.5)), "'ts' is a float"),
    (DecodeReason.BAD_ENVELOPE, raw(envelope_map(mono="1")), "'mono' is a str"),
    (DecodeReason.BAD_ENVELOPE, raw(envelope_map(cause=7)), "'cause' is a int"),
    (DecodeReason.BAD_ENVELOPE, raw(envelope_map(body=[])), "'body' is a list"),
    (DecodeReason.UNKNOWN_TYPE, raw(envelope_map("actor.unknown")), "unknown message type 'actor.unknown'"),
    (DecodeReason.UNKNOWN_VERSION, raw(envelope_map(v=2)), "actor.stop v2: newer than v1"),
    (DecodeReason.UNKNOWN_VERSION, raw(envelope_map(v=0)), "versions start at 1"),
    (DecodeReason.UNKNOWN_VERSION, raw(envelope_map("test.codec.no_upcaster", fields={"x": 1})), "no upcaster"),
    (DecodeReason.BAD_FIELDS, raw(envelope_map(fields={"actor": "a"})), "actor.stop v1: reason: missing"),
    (DecodeReason.BAD_FIELDS, raw(envelope_map(fields={"actor": 1, "reason": ""})), "actor: expected a str"),
    (DecodeReason.BAD_FIELDS, raw(envelope_map(fields={"actor": "a", "reason": "", "x": 0})), "x: unknown field"),
    (
        DecodeReason.BAD_FIELDS,
        raw(envelope_map("test.codec.interval_measured", fields={"name": "web"})),
        "upcasting v1 to v2 failed: KeyError('interval_ms')",
    ),
    (
        DecodeReason.BAD_FIELDS,
        raw(envelope_map("test.codec.effects_emitted", fields={"instance": "i", "effects": [{"_type": "x"}]})),
        "effects[0]._type: unknown type 'x'",
    ),
]


@pytest.mark.parametrize(("reason", "frames", "detail"), BAD, ids=[f"{r.value}-{i}" for i, (r, _, _) in enumerate(BAD)])
def test_each_decode_reason(reason: DecodeReason, frames: list[Any], detail: str) -> None:
    error = reason_of(frames)
    assert error.reason is reason
    assert detail in error.detail
    assert str(error).startswith(f"{reason.value}: ")


def test_every_reason_is_exercised() -> None:
    assert {reason for reason, _, _ in BAD} == set(DecodeReason)


def test_the_error_names_only_registered_types_and_stays_short() -> None:
    assert reason_of(raw(envelope_map(v=9))).type_name == "actor.stop"
    assert reason_of([b"t", b"\xc1"]).type_name is None
    flood = reason_of(raw(envelope_map("x" * 100_000)))
    assert flood.type_name is None and len(str(flood)) < 120


# -- fuzzing: decode raises only DecodeError -----------------------------------------------------------------------

native = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
type_names = st.sampled_from([found.name for found in registered()] + ["nope", ""])


def decodes_or_refuses(frames: list[Any]) -> None:
    try:
        received = decode(frames)
    except DecodeError:
        return
    assert isinstance(received, Envelope)


@given(st.lists(st.binary(max_size=64), max_size=4))
def test_random_frames_raise_only_decode_error(frames: list[bytes]) -> None:
    decodes_or_refuses(frames)


@given(type_names, st.integers(-1, 3), st.dictionaries(st.text(max_size=12), native, max_size=5))
def test_random_fields_raise_only_decode_error(type_name: str, v: int, fields: dict[str, object]) -> None:
    decodes_or_refuses(raw(envelope_map(type_name, v=v, fields=fields)))


@given(st.sampled_from([*SYSTEM, EffectsEmitted(instance="i", effects=())]), st.data())
def test_damaged_encodings_raise_only_decode_error(sent: object, data: st.DataObject) -> None:
    body = bytearray(frames_of("t", sent)[1])
    for _ in range(data.draw(st.integers(1, 4))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    decodes_or_refuses([b"t", bytes(body[:cut])])
    decodes_or_refuses([b"t", bytes(body)])


# -- encode refuses our own mistakes -------------------------------------------------------------------------------


@attrs.frozen
class Unregistered:
    x: int


def test_encode_refuses_what_cannot_go_on_the_wire() -> None:
    with pytest.raises(NotAMessageError):
        frames_of("t", Unregistered(x=1))
    with pytest.raises(EncodeError, match=r"^actor.heartbeat: seq: expected an int, got str '1'"):
        frames_of("t", Heartbeat(actor="a", pid=1, seq="1", loop_lag_ns=0))  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="bad envelope"):
        encode("t", Stop(actor="a", reason="r"), **{**HEADER, "ts": 1.5})
    with pytest.raises(EncodeError, match="too large"):
        frames_of("t", Stop(actor="a", reason="r" * MAX_BODY_BYTES))
    with pytest.raises(EncodeError):
        frames_of("\ud800", Stop(actor="a", reason="r"))
    for error in (NotAMessageError, EncodeError):
        assert issubclass(error, LocalProtocolError)


# -- the registry --------------------------------------------------------------------------------------------------


def test_registry_lookups() -> None:
    assert lookup("actor.heartbeat") is Heartbeat
    assert (Heartbeat.TYPE, Heartbeat.VERSION) == ("actor.heartbeat", 1)  # type: ignore[attr-defined]
    assert IntervalMeasured.VERSION == 2  # type: ignore[attr-defined]
    with pytest.raises(UnknownTypeError):
        lookup("actor.nothing")
    names = [found.name for found in registered()]
    assert {"actor.hello", "actor.ready", "actor.heartbeat", "actor.stop", "actor.stopping"} <= set(names)


def test_registry_is_consistent_and_every_message_compiles() -> None:
    assert check_registry() == []
    for found in registered():
        try:
            structure({}, found.cls)
        except ConversionError:
            pass  # missing fields: fine, it compiled
        except UnsupportedTypeError as error:  # pragma: no cover - the failure being tested for
            pytest.fail(f"{found.name}: {error}")


@attrs.frozen(kw_only=True)
class Spare:
    x: int


@attrs.define
class Mutable:
    x: int


def test_registration_mistakes_are_bugs() -> None:
    with pytest.raises(RegistryError, match="already"):
        message("actor.stop", version=1)(Spare)
    with pytest.raises(RegistryError, match="already"):
        message("test.codec.stop_again", version=1)(Stop)
    with pytest.raises(RegistryError, match="frozen attrs class"):
        message("test.codec.mutable", version=1)(Mutable)
    with pytest.raises(RegistryError, match="dotted lower_case"):
        message("Test.Codec", version=1)
    with pytest.raises(RegistryError, match="≥ 1"):
        message("test.codec.zero", version=0)
    with pytest.raises(RegistryError, match="already registered"):
        upcaster("test.codec.interval_measured", from_version=1)(_interval_measured_v1_to_v2)
    with pytest.raises(RegistryError, match="≥ 1"):
        upcaster("test.codec.interval_measured", from_version=0)
    assert issubclass(RegistryError, LocalProtocolError)
    assert "test.codec.mutable" not in {found.name for found in registered()}
