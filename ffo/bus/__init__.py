"""The node bus: envelopes, message registry, codec and converter (pure), and the ZeroMQ transport.

The pure modules are re-exported here; the transport (`ffo.bus.transport`, which imports zmq) is imported
from its module, so that importing `ffo.bus` stays free of I/O libraries.
"""

from ffo.bus.codec import MAX_BODY_BYTES, MAX_TOPIC_BYTES, DecodeError, DecodeReason, EncodeError, decode, encode
from ffo.bus.convert import (
    TAG,
    ConversionError,
    RegistryError,
    UnsupportedTypeError,
    register_type_name,
    structure,
    type_name_of,
    unstructure,
)
from ffo.bus.envelope import ENVELOPE_KEYS, Envelope
from ffo.bus.messages import (
    ActorReady,
    ActorStopping,
    Heartbeat,
    Hello,
    MessageType,
    NotAMessageError,
    Stop,
    UnknownTypeError,
    UnknownVersionError,
    Upcaster,
    check_registry,
    lookup,
    message,
    registered,
    registration,
    registration_of,
    upcast,
    upcaster,
)

__all__ = [
    "ENVELOPE_KEYS",
    "MAX_BODY_BYTES",
    "MAX_TOPIC_BYTES",
    "TAG",
    "ActorReady",
    "ActorStopping",
    "ConversionError",
    "DecodeError",
    "DecodeReason",
    "EncodeError",
    "Envelope",
    "Heartbeat",
    "Hello",
    "MessageType",
    "NotAMessageError",
    "RegistryError",
    "Stop",
    "UnknownTypeError",
    "UnknownVersionError",
    "UnsupportedTypeError",
    "Upcaster",
    "check_registry",
    "decode",
    "encode",
    "lookup",
    "message",
    "register_type_name",
    "registered",
    "registration",
    "registration_of",
    "structure",
    "type_name_of",
    "unstructure",
    "upcast",
    "upcaster",
]
