"""The ZAP handler: the verdicts on their own, then real CurveZMQ connections over TCP on loopback.

Each connection test watches the server socket's monitor for the handshake's outcome, so it knows the
attempt has been judged instead of guessing how long that takes; a message from an admitted peer then proves
the server is reading, and a quiet poll window after it shows nothing from the refused client slipped in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import attrs
import pytest
import zmq
import zmq.asyncio
from hypothesis import given
from hypothesis import strategies as st
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

from ffo.clock import FakeClock
from ffo.errors import LocalProtocolError
from ffo.net.ratelimit import DEFAULT_INTERVAL_NS
from ffo.rpc.keys import KeyPair
from ffo.rpc.zap import MAX_TRACKED_KEYS, ZAP_ENDPOINT, Verdict, ZapHandler, judge

DOMAIN = "ffo"
TIMEOUT_S = 10.0
"""Generous: only a broken handler comes near it."""
QUIET_MS = 300
"""How long a refused client gets to slip a message through after the server is shown to be reading."""
HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


def new_pair() -> KeyPair:
    public, secret = zmq.curve_keypair()
    return KeyPair(public=public, secret=secret)


def request(mechanism: bytes, *credentials: bytes, domain: bytes = b"ffo", request_id: bytes = b"7") -> list[bytes]:
    return [b"1.0", request_id, domain, b"192.0.2.1", b"", mechanism, *credentials]


B, C, MALLORY = new_pair(), new_pair(), new_pair()
ALLOWED = {B.public.decode(): "b", C.public.decode(): "c"}


# -- the verdicts (pure) -----------------------------------------------------------------------------------------


def test_a_known_curve_key_is_admitted_with_its_peer_name_as_user_id() -> None:
    decision = judge(request(b"CURVE", z85.decode(B.public)), allowed=ALLOWED, domain=DOMAIN)
    assert decision.verdict is Verdict.ACCEPTED
    assert decision.reply() == [b"1.0", b"7", b"200", b"OK", b"b", b""]


def test_an_unknown_curve_key_is_refused_and_named_in_z85() -> None:
    decision = judge(request(b"CURVE", z85.decode(MALLORY.public)), allowed=ALLOWED, domain=DOMAIN)
    assert decision.verdict is Verdict.UNKNOWN_KEY
    assert decision.key == MALLORY.public.decode()
    assert decision.address == "192.0.2.1"
    assert decision.reply() == [b"1.0", b"7", b"400", b"unknown key", b"", b""]


@pytest.mark.parametrize(
    ("frames", "insecure", "verdict", "status"),
    [
        (request(b"NULL"), False, Verdict.MECHANISM, b"400"),
        (request(b"NULL"), True, Verdict.ACCEPTED, b"200"),
        (request(b"PLAIN", b"user", b"password"), False, Verdict.MECHANISM, b"400"),
        (request(b"PLAIN", b"user", b"password"), True, Verdict.MECHANISM, b"400"),
        (request(b"GSSAPI", b"principal"), True, Verdict.MECHANISM, b"400"),
        (request(b"CURVE", z85.decode(B.public), domain=b"other"), False, Verdict.DOMAIN, b"400"),
        (request(b"NULL", domain=b""), True, Verdict.DOMAIN, b"400"),
    ],
)
def test_mechanisms_and_domains(frames: list[bytes], insecure: bool, verdict: Verdict, status: bytes) -> None:
    decision = judge(frames, allowed=ALLOWED, insecure=insecure, domain=DOMAIN)
    assert (decision.verdict, decision.status) == (verdict, status)
    assert decision.reply()[4] == b""  # no User-Id: NULL names nobody, and a refusal names nobody either


def test_any_domain_is_served_when_none_is_configured() -> None:
    frames = request(b"CURVE", z85.decode(B.public), domain=b"")
    assert judge(frames, allowed=ALLOWED).verdict is Verdict.ACCEPTED


@pytest.mark.parametrize(
    ("frames", "request_id"),
    [
        ([], b""),
        ([b"garbage"], b""),
        ([b"1.0", b"42", b"ffo", b"127.0.0.1", b""], b"42"),
        ([b"2.0", b"42", b"ffo", b"127.0.0.1", b"", b"CURVE", b"k" * 32], b"42"),
        (request(b"CURVE", b"k" * 31), b"7"),
        (request(b"CURVE"), b"7"),
        (request(b"CURVE", b"k" * 32, b"k" * 32), b"7"),
    ],
)
def test_a_malformed_request_gets_500_and_its_request_id_back(frames: list[bytes], request_id: bytes) -> None:
    decision = judge(frames, allowed=ALLOWED, insecure=True, domain=DOMAIN)
    assert decision.verdict is Verdict.MALFORMED
    reply = decision.reply()
    assert reply[:3] == [b"1.0", request_id, b"500"]
    assert reply[3].startswith(b"malformed: ")


def test_null_with_credentials_is_malformed_even_when_insecure() -> None:
    assert judge(request(b"NULL", b"x"), allowed=ALLOWED, insecure=True).verdict is Verdict.MALFORMED


def test_addresses_and_mechanisms_are_made_safe_for_a_log_line() -> None:
    frames = [b"1.0", b"1", b"ffo", b"10.0.0.1\nforged line\x1b[31m" + b"x" * 100, b"", b"EVIL\r\n"]
    decision = judge(frames, allowed=ALLOWED)
    assert decision.verdict is Verdict.MECHANISM
    assert decision.address.startswith("10.0.0.1\\nforged line\\x1b[31m")
    assert decision.address.isprintable() and len(decision.address) < 100
    assert decision.mechanism == "EVIL\\r\\n"


frame = st.binary(max_size=48)
plausible = st.builds(
    lambda version, rest, mechanism, credentials: [version, *rest, mechanism, *credentials],
    st.sampled_from([b"1.0", b"1.1", b""]),
    st.lists(frame, min_size=4, max_size=4),
    st.sampled_from([b"CURVE", b"NULL", b"PLAIN", b"GSSAPI", b""]),
    st.lists(st.one_of(frame, st.binary(min_size=32, max_size=32)), max_size=3),
)


@given(st.one_of(st.lists(frame, max_size=10), plausible), st.booleans(), st.sampled_from([None, DOMAIN]))
def test_any_frames_get_a_well_formed_reply(frames: list[bytes], insecure: bool, domain: str | None) -> None:
    decision = judge(frames, allowed=ALLOWED, insecure=insecure, domain=domain)
    reply = decision.reply()
    assert len(reply) == 6
    assert reply[0] == b"1.0"
    assert reply[2] in (b"200", b"400", b"500")
    assert (reply[2] == b"200") == (decision.verdict is Verdict.ACCEPTED)
    if reply[4]:
        assert reply[4].decode() in ALLOWED.values()


def test_an_allowlist_key_that_is_not_z85_is_a_bug() -> None:
    context = zmq.asyncio.Context()
    try:
        with pytest.raises(LocalProtocolError):
            ZapHandler(context, {b"short": "b"})
    finally:
        context.destroy(linger=0)


# -- real connections --------------------------------------------------------------------------------------------


@attrs.define
class Harness:
    """A ZAP handler and a ROUTER server in one context, and the clients a test connects to it."""

    context: zmq.asyncio.Context
    handler: ZapHandler
    server: zmq.asyncio.Socket
    monitor: zmq.asyncio.Socket
    endpoint: str
    server_keys: KeyPair
    clients: list[zmq.asyncio.Socket] = attrs.field(factory=list)

    def client(self, keys: KeyPair | None, *, server_key: bytes | None = None) -> zmq.asyncio.Socket:
        """A DEALER connecting with `keys` (None: the NULL mechanism), trusting `server_key` as the server's."""
        sock = self.context.socket(zmq.DEALER)
        sock.linger = 0
        if keys is not None:
            sock.curve_publickey = keys.public
            sock.curve_secretkey = keys.secret
            sock.curve_serverkey = server_key if server_key is not None else self.server_keys.public
        sock.connect(self.endpoint)
        self.clients.append(sock)
        return sock

    def zap_client(self) -> zmq.asyncio.Socket:
        """A REQ socket talking to the handler directly, as libzmq does, to send it anything at all."""
        sock = self.context.socket(zmq.REQ)
        sock.linger = 0
        sock.connect(ZAP_ENDPOINT)
        self.clients.append(sock)
        return sock

    async def wait_for_handshake(self, wanted: int) -> tuple[int, int]:
        """The next monitor (event, value) among `wanted` (a handshake's outcome), skipping connects and such."""
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                event = parse_monitor_message(await self.monitor.recv_multipart())
                if event["event"] & wanted:
                    return int(event["event"]), int(event["value"])

    async def receive(self) -> tuple[bytes, str]:
        """The next message at the server and the User-Id ZAP gave its connection."""
        async with asyncio.timeout(TIMEOUT_S):
            _routing_id, payload = await self.server.recv_multipart(copy=False)
        return payload.bytes, str(payload.get("User-Id"))

    async def assert_quiet(self) -> None:
        assert not await self.server.poll(QUIET_MS), "a message arrived that must not have"


@contextlib.asynccontextmanager
async def harness(
    *,
    curve: bool = True,
    insecure: bool = False,
    clock: FakeClock | None = None,
    on_refused: Callable[[str, str], None] | None = None,
) -> AsyncIterator[Harness]:
    context = zmq.asyncio.Context()
    # The handler binds before the server exists: a CURVE server with no handler admits everyone.
    handler = ZapHandler(
        context,
        {B.public: "b", C.public: "c"},
        insecure=insecure,
        domain=DOMAIN,
        clock=clock if clock is not None else FakeClock(),
        on_refused=on_refused,
    )
    server_keys = new_pair()
    server = context.socket(zmq.ROUTER)
    server.linger = 0
    if curve:
        server.curve_secretkey = server_keys.secret
        server.curve_publickey = server_keys.public
        server.curve_server = True
    server.zap_domain = DOMAIN.encode()
    monitor = server.get_monitor_socket(HANDSHAKE_FAILED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
    port = server.bind_to_random_port("tcp://127.0.0.1")
    serving = asyncio.create_task(handler.serve())
    rig = Harness(
        context=context,
        handler=handler,
        server=server,
        monitor=monitor,
        endpoint=f"tcp://127.0.0.1:{port}",
        server_keys=server_keys,
    )
    try:
        yield rig
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        for sock in rig.clients:
            sock.close(linger=0)
        server.disable_monitor()
        monitor.close(linger=0)
        server.close(linger=0)
        handler.close()
        context.term()


@pytest.mark.asyncio
async def test_known_keys_connect_and_each_message_is_named_by_its_peer() -> None:
    async with harness() as rig:
        rig.client(B).send(b"from b")
        first = await rig.receive()
        rig.client(C).send(b"from c")
        second = await rig.receive()
        assert {first, second} == {(b"from b", "b"), (b"from c", "c")}
        stats = rig.handler.statistics()
        assert stats.accepted == 2
        assert stats.refused_total == 0


@pytest.mark.asyncio
async def test_an_unknown_key_is_refused_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ffo.rpc.auth")
    first_refusals: list[tuple[str, str]] = []
    async with harness(on_refused=lambda key, address: first_refusals.append((key, address))) as rig:
        rig.client(MALLORY).send(b"intruder")
        assert await rig.wait_for_handshake(HANDSHAKE_FAILED) == (zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400)
        rig.client(B).send(b"hello")
        assert await rig.receive() == (b"hello", "b")
        await rig.assert_quiet()
        key = MALLORY.public.decode()
        stats = rig.handler.statistics()
        assert stats.refused_unknown_key == stats.refused_total >= 1
        assert stats.refused_by_key == {key: stats.refused_unknown_key}
        assert rig.handler.refused_keys() == ((key, "127.0.0.1"),)
        assert first_refusals == [(key, "127.0.0.1")]
    [record] = [record for record in caplog.records if key in record.getMessage()]
    assert record.levelno == logging.WARNING
    assert "127.0.0.1" in record.getMessage()


@pytest.mark.asyncio
async def test_refusals_of_one_key_are_reported_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ffo.rpc.auth")
    clock = FakeClock()
    key = MALLORY.public.decode()

    async def refuse_one_more() -> None:
        rig.client(MALLORY)
        await rig.wait_for_handshake(zmq.EVENT_HANDSHAKE_FAILED_AUTH)

    def reports() -> list[str]:
        return [record.getMessage() for record in caplog.records if key in record.getMessage()]

    async with harness(clock=clock) as rig:
        await refuse_one_more()
        await refuse_one_more()
        await refuse_one_more()
        assert len(reports()) == 1
        clock.advance(DEFAULT_INTERVAL_NS)
        await refuse_one_more()
        assert rig.handler.statistics().refused_by_key[key] == 4
    assert len(reports()) == 2
    assert reports()[1].endswith("(2 more since the last report)")


@pytest.mark.asyncio
async def test_per_key_bookkeeping_stops_at_its_bound_but_every_refusal_is_counted() -> None:
    async with harness() as rig:
        asker = rig.zap_client()
        for _ in range(MAX_TRACKED_KEYS + 5):
            await asker.send_multipart(request(b"CURVE", z85.decode(new_pair().public)))
            async with asyncio.timeout(TIMEOUT_S):
                assert (await asker.recv_multipart())[2] == b"400"
        stats = rig.handler.statistics()
        assert stats.refused_unknown_key == MAX_TRACKED_KEYS + 5
        assert len(stats.refused_by_key) == len(rig.handler.refused_keys()) == MAX_TRACKED_KEYS


@pytest.mark.asyncio
async def test_a_client_trusting_the_wrong_server_key_never_gets_through() -> None:
    async with harness() as rig:
        rig.client(B, server_key=new_pair().public).send(b"lost")
        await rig.wait_for_handshake(HANDSHAKE_FAILED)
        rig.client(C).send(b"from c")
        assert await rig.receive() == (b"from c", "c")
        await rig.assert_quiet()
        stats = rig.handler.statistics()
        assert stats.accepted == 1  # the failed handshake never got as far as asking ZAP
        assert stats.refused_total == 0


@pytest.mark.asyncio
async def test_a_null_client_cannot_reach_a_curve_server() -> None:
    async with harness() as rig:
        rig.client(None).send(b"plaintext")
        event, _ = await rig.wait_for_handshake(HANDSHAKE_FAILED)
        assert event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        rig.client(B).send(b"hello")
        assert await rig.receive() == (b"hello", "b")
        await rig.assert_quiet()


@pytest.mark.asyncio
async def test_null_connections_are_refused_by_zap_in_secure_mode(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ffo.rpc.auth")
    async with harness(curve=False) as rig:
        rig.client(None).send(b"plaintext")
        outcome = await rig.wait_for_handshake(HANDSHAKE_FAILED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        assert outcome == (zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400)
        await rig.assert_quiet()
        stats = rig.handler.statistics()
        assert (stats.refused_mechanism, stats.accepted) == (1, 0)
    assert any("refused a NULL connection from 127.0.0.1" in record.getMessage() for record in caplog.records)


@pytest.mark.asyncio
async def test_insecure_mode_admits_null_and_warns_when_it_starts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ffo.rpc.auth")
    async with harness(curve=False, insecure=True) as rig:
        rig.client(None).send(b"plaintext")
        assert await rig.receive() == (b"plaintext", "")  # NULL proves no identity: nobody's name
        assert rig.handler.statistics().accepted == 1
    warnings = [record for record in caplog.records if "not authenticated" in record.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


@pytest.mark.asyncio
async def test_secure_mode_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ffo.rpc.auth")
    async with harness() as rig:
        rig.client(B).send(b"hello")
        await rig.receive()
    assert caplog.records == []


@pytest.mark.asyncio
async def test_malformed_requests_get_an_error_reply_and_the_handler_keeps_serving() -> None:
    garbage: list[list[bytes]] = [
        [b"garbage"],
        [b"1.0", b"1"],
        [b"9.9", b"2", b"ffo", b"127.0.0.1", b"", b"CURVE", b"k" * 32],
        request(b"CURVE", b"short", request_id=b"3"),
        request(b"CURVE", request_id=b"4"),
        request(b"KERBEROS", b"ticket", request_id=b"5"),
        [b"\xff" * 1000] * 20,
    ]
    async with harness() as rig:
        asker = rig.zap_client()
        for frames in garbage:
            await asker.send_multipart(frames)
            async with asyncio.timeout(TIMEOUT_S):
                reply = await asker.recv_multipart()
            assert len(reply) == 6 and reply[0] == b"1.0", reply
            assert reply[2] in (b"400", b"500"), reply
            assert reply[4] == b"", reply
        stats = rig.handler.statistics()
        assert (stats.malformed, stats.refused_mechanism, stats.accepted) == (6, 1, 0)
        rig.client(B).send(b"still here")
        assert await rig.receive() == (b"still here", "b")


@pytest.mark.asyncio
async def test_statistics_are_a_snapshot() -> None:
    async with harness() as rig:
        rig.client(MALLORY)
        await rig.wait_for_handshake(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        snapshot = rig.handler.statistics()
        snapshot.refused_by_key.clear()
        assert rig.handler.statistics().refused_by_key == {MALLORY.public.decode(): 1}


@pytest.mark.asyncio
async def test_a_context_has_one_handler() -> None:
    async with harness() as rig:
        with pytest.raises(zmq.ZMQError) as caught:
            ZapHandler(rig.context, {})
        assert caught.value.errno == zmq.EADDRINUSE
