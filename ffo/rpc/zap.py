"""Who may talk to this node: an asyncio ZAP handler (ZeroMQ RFC 27) that admits only the peers' CURVE keys.

libzmq asks the handler bound at ``inproc://zeromq.zap.01`` in the socket's context about every new connection
to a CURVE server socket (and to a NULL one that has a ZAP domain). The request carries the client's
long-term public key; the reply says yes or no and, for yes, a User-Id that libzmq attaches to every message
from that connection, so the RPC server reads who sent a request from ``frame.get("User-Id")``: the peer's
configured name, never anything the peer claims about itself.

- A key in the allowlist is admitted (200) with its peer's name as User-Id.
- Any other key is refused (400), logged at WARNING with the key in Z85 and the client's address
  (rate-limited per key: a peer retrying every 100 ms must not fill the disk) and counted, per key and in
  total. Per-key bookkeeping stops at `MAX_TRACKED_KEYS` distinct keys, so a flood of made-up keys costs a
  counter, not memory.
- Mechanisms other than CURVE are refused (400), except NULL in insecure mode (`[rpc] insecure = true`),
  which exists for labs and says so in a warning every time the handler starts.
- A request that is not RFC 27 at all gets 500 (the handler cannot process it) and is counted; the judging is
  a total function of the frames, so no request can stop the handler.

The handler is written here rather than taken from `zmq.auth`, whose authenticators run a thread (or an
IP-address-first policy) and do not expose the per-key counts and rate-limited reports ffo needs.

Order matters, because libzmq fails open: with no handler bound, a CURVE server admits every client key
(the "Stonehouse" pattern). Construct the handler, which binds at once, before any CURVE server socket
accepts connections, and close those sockets before the handler; a server socket with ``zap_enforce_domain``
set refuses connections outright while no handler is bound.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import attrs
import zmq
import zmq.asyncio
from zmq.utils import z85

from ffo.clock import Clock, SystemClock
from ffo.errors import LocalProtocolError
from ffo.net.ratelimit import RateLimiter

__all__ = ["MAX_TRACKED_KEYS", "ZAP_ENDPOINT", "Decision", "Verdict", "ZapHandler", "ZapStatistics", "judge"]

log = logging.getLogger("ffo.rpc.auth")

ZAP_ENDPOINT: Final = "inproc://zeromq.zap.01"
ZAP_VERSION: Final = b"1.0"
MAX_TRACKED_KEYS: Final = 256
"""Distinct refused keys counted (and rate-limited) one by one; any further key is counted in the total only."""
_CURVE_KEY_BYTES: Final = 32
_Z85_KEY_LENGTH: Final = 40
_REQUEST_FRAMES: Final = 6  # version, request id, domain, address, routing id, mechanism (+ credentials)
_SHOWN_BYTES: Final = 64  # of an address or mechanism echoed into a log line


class Verdict(enum.Enum):
    """What the handler made of a request; the value names its counter."""

    ACCEPTED = "accepted"
    UNKNOWN_KEY = "unknown_key"
    MECHANISM = "mechanism"
    DOMAIN = "domain"
    MALFORMED = "malformed"


@attrs.frozen(kw_only=True)
class Decision:
    """The answer to one ZAP request, with what the logs and counters need to know about it."""

    verdict: Verdict
    request_id: bytes
    status: bytes
    """RFC 27: 200 admitted, 400 refused, 500 the request could not be processed."""
    text: str
    user_id: str = ""
    key: str | None = None
    """The client's CURVE public key in Z85, when the request carried one."""
    address: str = ""
    mechanism: str = ""

    def reply(self) -> list[bytes]:
        """The reply frames: version, request id, status code, status text, user id, metadata (none)."""
        user_id = self.user_id.encode() if self.status == b"200" else b""
        return [ZAP_VERSION, self.request_id, self.status, self.text.encode(), user_id, b""]


def judge(
    frames: Sequence[bytes], *, allowed: Mapping[str, str], insecure: bool = False, domain: str | None = None
) -> Decision:
    """Decide one ZAP request (pure, total: any list of frames yields a Decision).

    `allowed` maps Z85 public keys to peer names; `domain`, when given, is the only ZAP domain served.
    """
    request_id = frames[1] if len(frames) > 1 else b""
    if len(frames) < _REQUEST_FRAMES:
        return _malformed(request_id, f"{len(frames)} frames, a request has at least {_REQUEST_FRAMES}")
    version, _, request_domain, raw_address, _routing_id, raw_mechanism, *credentials = frames
    if version != ZAP_VERSION:
        return _malformed(request_id, f"version {_shown(version)}, expected 1.0")
    address, mechanism = _shown(raw_address), _shown(raw_mechanism)
    if domain is not None and request_domain != domain.encode():
        return Decision(
            verdict=Verdict.DOMAIN, request_id=request_id, status=b"400", text="unknown domain",
            address=address, mechanism=mechanism,
        )  # fmt: skip
    if raw_mechanism == b"CURVE":
        return _judge_curve(request_id, credentials, allowed=allowed, address=address)
    if raw_mechanism == b"NULL" and insecure:
        if credentials:
            return _malformed(request_id, f"NULL request with {len(credentials)} credential frames")
        return Decision(
            verdict=Verdict.ACCEPTED, request_id=request_id, status=b"200", text="OK (insecure)",
            address=address, mechanism=mechanism,
        )  # fmt: skip
    return Decision(
        verdict=Verdict.MECHANISM, request_id=request_id, status=b"400", text="mechanism not allowed",
        address=address, mechanism=mechanism,
    )  # fmt: skip


def _judge_curve(request_id: bytes, credentials: list[bytes], *, allowed: Mapping[str, str], address: str) -> Decision:
    if len(credentials) != 1 or len(credentials[0]) != _CURVE_KEY_BYTES:
        sizes = [len(credential) for credential in credentials]
        return _malformed(request_id, f"CURVE credentials of sizes {sizes}, expected one 32-byte key")
    key = z85.encode(credentials[0]).decode("ascii")
    peer = allowed.get(key)
    if peer is None:
        return Decision(
            verdict=Verdict.UNKNOWN_KEY, request_id=request_id, status=b"400", text="unknown key",
            key=key, address=address, mechanism="CURVE",
        )  # fmt: skip
    return Decision(
        verdict=Verdict.ACCEPTED, request_id=request_id, status=b"200", text="OK",
        user_id=peer, key=key, address=address, mechanism="CURVE",
    )  # fmt: skip


def _malformed(request_id: bytes, detail: str) -> Decision:
    return Decision(verdict=Verdict.MALFORMED, request_id=request_id, status=b"500", text=f"malformed: {detail}")


def _shown(raw: bytes) -> str:
    """Bytes from a request made safe for one log line: at most 64, printable ASCII, the rest escaped."""
    return raw[:_SHOWN_BYTES].decode("latin-1").encode("unicode_escape").decode("ascii")


@attrs.frozen(kw_only=True)
class ZapStatistics:
    """A snapshot of the handler's counters (trio's `statistics()` idiom: an immutable record)."""

    accepted: int
    refused_unknown_key: int
    refused_mechanism: int
    refused_domain: int
    malformed: int
    refused_by_key: dict[str, int]
    """Refusals per Z85 key, for the first `MAX_TRACKED_KEYS` distinct keys."""

    @property
    def refused_total(self) -> int:
        """Every request answered with anything but 200."""
        return self.refused_unknown_key + self.refused_mechanism + self.refused_domain + self.malformed


class ZapHandler:
    """The ZAP handler of one ZeroMQ context: binds on construction, answers in `serve`, stops on `close`.

    Run `serve()` as a task; cancel it, then `close()`. Only one handler can be bound per context: a second
    raises `zmq.ZMQError` (EADDRINUSE).
    """

    def __init__(
        self,
        context: zmq.asyncio.Context,
        allowed: Mapping[bytes, str],
        *,
        insecure: bool = False,
        domain: str | None = None,
        clock: Clock | None = None,
        on_refused: Callable[[str, str], None] | None = None,
    ) -> None:
        """`allowed` maps Z85 public keys (as `ffo.rpc.keys.load_public` returns them) to peer names.

        `on_refused(key, address)` is called the first time each unknown key is refused (of the first
        `MAX_TRACKED_KEYS`), for callers that record refusals as events.
        """
        self._allowed = {_z85_text(key): name for key, name in allowed.items()}
        self._insecure = insecure
        self._domain = domain
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._on_refused = on_refused
        self._limiter = RateLimiter()
        self._counts = dict.fromkeys(Verdict, 0)
        self._by_key: dict[str, int] = {}
        self._first_address: dict[str, str] = {}
        self._socket = context.socket(zmq.REP)
        self._socket.linger = 0
        try:
            self._socket.bind(ZAP_ENDPOINT)
        except zmq.ZMQError:
            self._socket.close()
            raise

    async def serve(self) -> None:
        """Answer requests until cancelled; one at a time, as each is decided without waiting on anything."""
        if self._insecure:
            log.warning("insecure mode: peer links are not authenticated or encrypted; NULL connections are admitted")
        while True:
            frames = await self._socket.recv_multipart()
            decision = judge(frames, allowed=self._allowed, insecure=self._insecure, domain=self._domain)
            self._record(decision)
            await self._socket.send_multipart(decision.reply())

    def close(self) -> None:
        self._socket.close(linger=0)

    def statistics(self) -> ZapStatistics:
        return ZapStatistics(
            accepted=self._counts[Verdict.ACCEPTED],
            refused_unknown_key=self._counts[Verdict.UNKNOWN_KEY],
            refused_mechanism=self._counts[Verdict.MECHANISM],
            refused_domain=self._counts[Verdict.DOMAIN],
            malformed=self._counts[Verdict.MALFORMED],
            refused_by_key=dict(self._by_key),
        )

    def refused_keys(self) -> tuple[tuple[str, str], ...]:
        """Each tracked refused key (Z85) with the address it first came from, in the order first seen."""
        return tuple(self._first_address.items())

    def _record(self, decision: Decision) -> None:
        self._counts[decision.verdict] += 1
        if decision.verdict is Verdict.ACCEPTED:
            log.debug("admitted %r (%s) from %s", decision.user_id, decision.mechanism, decision.address)
            return
        limit_key: tuple[str, str] = (decision.verdict.value, decision.mechanism)
        if decision.verdict is Verdict.UNKNOWN_KEY:
            assert decision.key is not None  # judge sets it for every CURVE verdict
            limit_key = ("key", decision.key if self._track(decision.key, decision.address) else "")
        suppressed = self._limiter.allow(limit_key, self._clock.monotonic_ns())
        if suppressed is None:
            return
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        if decision.verdict is Verdict.UNKNOWN_KEY:
            log.warning("refused a CURVE connection from %s: unknown key %s%s", decision.address, decision.key, more)
        elif decision.verdict is Verdict.MALFORMED:
            log.warning("answered a malformed ZAP request with 500: %s%s", decision.text, more)
        else:
            log.warning(
                "refused a %s connection from %s: %s%s", decision.mechanism, decision.address, decision.text, more
            )

    def _track(self, key: str, address: str) -> bool:
        """Count a refusal of `key`; False once `MAX_TRACKED_KEYS` other keys are already tracked."""
        if key in self._by_key:
            self._by_key[key] += 1
            return True
        if len(self._by_key) >= MAX_TRACKED_KEYS:
            return False
        self._by_key[key] = 1
        self._first_address[key] = address
        if self._on_refused is not None:
            self._on_refused(key, address)
        return True


def _z85_text(key: bytes) -> str:
    """An allowlist key as text, checked: a bad one is a bug in the caller (keys.py validates files)."""
    if len(key) != _Z85_KEY_LENGTH or not key.isascii():
        raise LocalProtocolError(f"allowlist key {key!r} is not a {_Z85_KEY_LENGTH}-character Z85 key")
    return key.decode("ascii")
