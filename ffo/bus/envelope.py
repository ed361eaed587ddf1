"""The envelope every bus message travels in (DESIGN §2, STYLE convention 8).

On the wire (`ffo.bus.codec`) it is two ZeroMQ frames: the topic, alone in the first frame so that SUB prefix
filtering needs no decoding (zguide's Clone pattern keys frame 0 the same way), then one msgpack map:

    {"type": "actor.heartbeat", "v": 1, "id": "lb1/vrrp:1f2e3d:42", "src": "lb1/vrrp",
     "ts": <wall-clock ns>, "mono": <monotonic ns>, "cause": <id> | None, "body": {<the message's fields>}}

`cause` is the id of the message that led to this one (jupyter's ``parent_header``), so that a chain of events
can be followed back to what started it. Wall-clock `ts` is for people; `mono` orders events on one host.
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["ENVELOPE_KEYS", "Envelope"]

ENVELOPE_KEYS: Final = ("type", "v", "id", "src", "ts", "mono", "cause", "body")
"""The keys of the msgpack map in the second frame, all required, no others."""


@attrs.frozen(kw_only=True)
class Envelope:
    """One received (or recorded) bus message with its metadata."""

    topic: str
    """The first frame: what subscribers filter on (``sys.heartbeat``, ``cmd.vrrp``...)."""
    type: str
    """The stable type name of `message` (``actor.heartbeat``)."""
    v: int
    """The schema version it was sent with; `message` has been upcast to its class's current version."""
    id: str
    """Unique per sender: ``<src>:<random per start>:<sequence>``."""
    src: str
    """The sender, ``<node>/<actor>``."""
    ts: int
    """Wall-clock time of sending, ns since the epoch: for display only."""
    mono: int
    """The sender's monotonic clock at sending, ns: orders one host's messages."""
    cause: str | None
    """The id of the message that led to this one, if any."""
    message: object
    """The message itself: an instance of the registered class `type`."""
