"""The RPC actor: this node's authenticated links to its peers, event-log resync, and the cluster view.

Sockets (ZeroMQ over TCP, CurveZMQ unless `[rpc] insecure = true`):

- a ROUTER bound on `[rpc] listen` answers peers (`ffo.rpc.responder`): pings, with this node's status and
  stream heads, and ranges of stored event frames. The ZAP handler (`ffo.rpc.zap`) admits only the
  configured peers' public keys and names each message's sender (ZAP User-Id);
- one DEALER per `[[rpc.peers]]` entry asks that peer: a ping every second (`ffo.rpc.link`: up/down, round
  trip, clock offset), and, while the peer offers records this node lacks, one bounded batch at a time, stored
  in `<state_dir>/replica/<node>/<stream>/` (`ffo.rpc.replica`).

What the actor learns goes into its stream (``rpc``: links up and down, clock offsets, gaps, catch-ups) and,
every second, to the kernel as `ClusterStatus` on ``sys.cluster`` for `ffo status --cluster`. It runs in its
own process: a large resync reads and writes files here and never delays the VRRP actor's timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any, ClassVar, Final

import attrs
import zmq
import zmq.asyncio

from ffo.actors.base import Actor
from ffo.bus.envelope import Envelope
from ffo.config import NodeConfig, RpcPeer, RpcSettings, load_config
from ffo.eventlog.committer import run_group_commit
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.writer import EventWriter
from ffo.rpc.events import (
    CLUSTER_TOPIC,
    ClockOffsetMeasured,
    ClusterStatus,
    PeerLinkDown,
    PeerLinkUp,
    PeerRefused,
    PeerStatus,
    ResyncCaughtUp,
    ResyncGap,
)
from ffo.rpc.keys import load_peer_keys, load_public, load_secret
from ffo.rpc.link import PeerLink, rewound, wanted
from ffo.rpc.replica import ReplicaStore
from ffo.rpc.responder import Responder
from ffo.rpc.wire import (
    MAX_REPLY_BYTES,
    MAX_REQUEST_BYTES,
    ErrorReply,
    EventsReply,
    EventsRequest,
    Ping,
    Pong,
    WireError,
    decode_reply,
    encode,
)
from ffo.rpc.zap import ZapHandler
from ffo.vrrp.status import InstanceStatus, VrrpStatus

RPC_STREAM: Final = "rpc"
TICK_S: Final = 0.05
STATUS_EVERY_NS: Final = 1_000_000_000
REQUEST_TIMEOUT_NS: Final = 10_000_000_000
BATCH_RECORDS: Final = 2_000
BATCH_BYTES: Final = 1024 * 1024
ZAP_DOMAIN: Final = "ffo"


@attrs.define
class _Fetch:
    """One events request in flight: at most one per link, and never two for the same stream."""

    link: str
    request_id: int
    node: str
    stream: str
    from_seq: int
    sent_ns: int


@attrs.define
class _CatchUp:
    """Records fetched from a peer since its link came up, until nothing more is offered."""

    started_ns: int
    records: int = 0
    done: bool = False


class RpcActor(Actor):
    subscriptions: ClassVar[tuple[str, ...]] = ("sys.status",)

    async def setup(self) -> None:
        self.config: NodeConfig = load_config(Path(str(self.context.options["config"])))
        if self.config.rpc is None:
            raise ValueError("the RPC actor needs an [rpc] table in the config")
        settings: RpcSettings = self.config.rpc
        self.insecure = settings.insecure
        clock = self.context.clock
        policy = LogPolicy.from_settings(self.config.events)
        self.journal = EventWriter.open(
            self.config.events_dir / RPC_STREAM, node=self.config.name, stream=RPC_STREAM, clock=clock, policy=policy
        )
        self.replica = ReplicaStore.open(self.config.state_dir / "replica", local_node=self.config.name, policy=policy)
        self._instances: tuple[InstanceStatus, ...] = ()
        self.responder = Responder(
            node=self.config.name,
            events_dir=self.config.events_dir,
            replica=self.replica,
            instances=lambda: self._instances,
        )
        self.session = int.from_bytes(os.urandom(8), "big")
        self._next_id = 0
        self._status_due_ns = 0
        self.counters: dict[str, int] = {}
        self._fetches: dict[str, _Fetch] = {}
        self._catch_up: dict[str, _CatchUp] = {}
        self._outstanding: dict[str, dict[int, int]] = {}  # link → request id → wall ns it was sent (pings)
        self.links = {peer.name: PeerLink(name=peer.name, endpoint=peer.endpoint) for peer in settings.peers}
        self._open_sockets(settings)

    def _open_sockets(self, settings: RpcSettings) -> None:
        context = self.context.zmq_context
        allowed = {} if settings.insecure else load_peer_keys(settings.peers)
        self.zap = ZapHandler(
            context,
            allowed,
            insecure=settings.insecure,
            domain=ZAP_DOMAIN,
            clock=self.context.clock,
            on_refused=self._refused,
        )
        keys = None if settings.insecure else load_secret(settings.secret_key_file)
        self.server = context.socket(zmq.ROUTER)
        self.server.linger = 0
        self.server.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        self.server.setsockopt(zmq.ROUTER_HANDOVER, 1)
        if keys is not None:
            self.server.curve_secretkey = keys.secret
            self.server.curve_publickey = keys.public
            self.server.curve_server = True
            self.server.zap_domain = ZAP_DOMAIN.encode()
            self.server.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)  # no handler answering: refuse, never admit
        self.server.bind(settings.listen)
        self.clients: dict[str, zmq.asyncio.Socket] = {}
        for peer in settings.peers:
            self.clients[peer.name] = self._client_socket(context, peer, keys)

    @staticmethod
    def _client_socket(context: zmq.asyncio.Context, peer: RpcPeer, keys: Any) -> zmq.asyncio.Socket:
        sock = context.socket(zmq.DEALER)
        sock.linger = 0
        sock.setsockopt(zmq.IMMEDIATE, 1)  # nothing queues up for a peer that is not connected
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_REPLY_BYTES)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        if keys is not None:
            sock.curve_serverkey = load_public(peer.public_key_file)
            sock.curve_publickey = keys.public
            sock.curve_secretkey = keys.secret
        sock.connect(peer.endpoint)
        return sock

    async def main(self) -> None:
        self.started_ns = self.context.clock.monotonic_ns()
        async with asyncio.TaskGroup() as group:
            group.create_task(run_group_commit(self.journal, self.config.events.fsync_interval_ns))
            group.create_task(self.zap.serve())
            group.create_task(self._serve())
            group.create_task(self._sync_replica())
            for name, sock in self.clients.items():
                group.create_task(self._listen(name, sock))
            group.create_task(self._tick())

    async def teardown(self) -> None:
        for sock in getattr(self, "clients", {}).values():
            sock.close(linger=0)
        if hasattr(self, "server"):
            self.server.close(linger=0)
        if hasattr(self, "zap"):
            self.zap.close()
        if hasattr(self, "replica"):
            self.replica.close()
        if hasattr(self, "journal"):
            self.journal.close()

    async def handle(self, envelope: Envelope) -> None:
        message = envelope.message
        if isinstance(message, VrrpStatus):
            self._instances = message.instances

    def _count(self, key: str, by: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + by

    # -- serving peers ------------------------------------------------------------------------------------------

    async def _serve(self) -> None:
        clock = self.context.clock
        while True:
            frames = await self.server.recv_multipart(copy=False)
            if len(frames) != 2:
                self._count("requests_malformed")
                continue
            identity, body = frames
            peer = self._sender(identity, body)
            reply = self.responder.answer(peer, body.bytes, wall_ns=clock.wall_ns, now_ns=clock.monotonic_ns())
            self._count("requests_answered")
            with contextlib.suppress(zmq.Again):
                await self.server.send_multipart([identity.bytes, reply], flags=zmq.NOBLOCK)
            await asyncio.sleep(0)  # as in `_listen`: a queue of requests must not starve the heartbeat

    def _sender(self, identity: zmq.Frame, body: zmq.Frame) -> str:
        """Who sent a request: the peer name the ZAP handler vouched for, or (insecure) its connection."""
        if self.insecure:
            return f"connection {identity.bytes.hex()}"
        return str(body.get("User-Id"))

    # -- asking peers -------------------------------------------------------------------------------------------

    def _send(self, link: str, message: Ping | EventsRequest) -> bool:
        """Send without waiting; False (and counted) when the peer is not connected (ZMQ_IMMEDIATE).

        A zmq.asyncio socket does not raise for a non-blocking send that cannot go out: it returns a finished
        future holding `zmq.Again`, which must be read here (unread, it would also be logged as never retrieved).
        """
        sent = asyncio.ensure_future(self.clients[link].send(encode(message), flags=zmq.NOBLOCK))
        failure = sent.exception() if sent.done() else None
        if failure is not None:
            self._count("requests_not_sent" if isinstance(failure, zmq.Again) else "requests_failed")
            return False
        return True

    def _request_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def _tick(self) -> None:
        clock = self.context.clock
        while True:
            now = clock.monotonic_ns()
            for link in self.links.values():
                if link.ping_due(now):
                    request_id = self._request_id()
                    t1 = clock.wall_ns()
                    if self._send(link.name, Ping(session=self.session, id=request_id, t1=t1)):
                        pending = self._outstanding.setdefault(link.name, {})
                        pending[request_id] = now
                        for old in [key for key, sent in pending.items() if now - sent > link.silence_bound_ns]:
                            del pending[old]
                change = link.check(now, self.started_ns)
                if change is not None:
                    self._append(PeerLinkDown(peer=link.name, endpoint=link.endpoint, silent_ns=change.silent_ns))
                    self.log.warning("link to %s down: silent for %.1f s", link.name, change.silent_ns / 1e9)
                    self._fetches.pop(link.name, None)
                    self._catch_up.pop(link.name, None)
                    self._status_due_ns = 0
            self._expire_fetches(now)
            if now >= self._status_due_ns:
                self._status_due_ns = now + STATUS_EVERY_NS
                await self.bus.publish(CLUSTER_TOPIC, self.cluster_status(now))
            await asyncio.sleep(TICK_S)

    async def _listen(self, name: str, sock: zmq.asyncio.Socket) -> None:
        clock = self.context.clock
        link = self.links[name]
        while True:
            body = await sock.recv()
            t4 = clock.wall_ns()
            now = clock.monotonic_ns()
            try:
                reply = decode_reply(body)
            except WireError as error:
                self._count(f"replies_refused_{error.problem.value}")
                continue
            if isinstance(reply, Pong):
                if self._outstanding.get(name, {}).pop(reply.id, None) is None:
                    self._count("replies_unexpected")
                    continue
                if reply.node != name:
                    self._count("replies_wrong_node")
                    continue
                self._on_pong(link, reply, t4, now)
            elif isinstance(reply, EventsReply):
                fetch = self._fetches.get(name)
                if fetch is None or fetch.request_id != reply.id:
                    self._count("replies_unexpected")
                    continue
                del self._fetches[name]
                # Ask for the next batch before storing this one: the peer reads and sends it while this node
                # stores (one request at a time made resync take the sum of both sides' CPU).
                same_stream = reply.node == fetch.node and reply.stream == fetch.stream
                if reply.frames and same_stream and reply.next_seq <= reply.head:
                    self._request(link, fetch.node, fetch.stream, reply.next_seq, now)
                self._on_events(link, fetch, reply)
            else:
                self._on_error(name, reply)
            self._next_fetch(link, now)
            # A receive that finds a reply already queued completes without yielding, and during a resync one
            # always is: give the heartbeat and the other links their turn after every reply.
            await asyncio.sleep(0)

    def _on_pong(self, link: PeerLink, pong: Pong, t4: int, now: int) -> None:
        change = link.on_pong(pong, t4, now)
        if change is not None and change.sample is not None:
            self._append(
                PeerLinkUp(
                    peer=link.name,
                    endpoint=link.endpoint,
                    rtt_ns=change.sample.delay_ns,
                    offset_ns=change.sample.offset_ns,
                )
            )
            self.log.info("link to %s up", link.name)
            self._status_due_ns = 0  # the kernel's view changes now, not at the next periodic report
            self._catch_up[link.name] = _CatchUp(started_ns=now)
            for stream, (held, offered) in rewound(link.offered, self._held(), peer=link.name).items():
                self._count("streams_rewound")
                self.log.error(
                    "%s offers %d records of its stream %s but this node holds %d: its log was reset or restored; "
                    "its new records reuse seqs held here and are NOT merged (move %s aside to start over)",
                    link.name,
                    offered,
                    stream,
                    held,
                    self.replica.stream_dir(link.name, stream),
                )
        logged = link.offset_to_log()
        if logged is not None:
            self._append(ClockOffsetMeasured(peer=link.name, offset_ns=logged.offset_ns, rtt_ns=logged.delay_ns))

    def _on_error(self, name: str, reply: ErrorReply) -> None:
        self._count(f"peer_errors_{reply.problem}")
        self.log.warning("peer %s refused a request: %s (%s)", name, reply.problem, reply.detail)
        fetch = self._fetches.get(name)
        if fetch is not None and fetch.request_id == reply.id:
            del self._fetches[name]

    # -- resync -------------------------------------------------------------------------------------------------

    def _next_fetch(self, link: PeerLink, now: int) -> None:
        """Ask `link` for the next batch it offers that this node lacks, unless one is already in flight."""
        if not link.up or link.name in self._fetches:
            return
        busy = frozenset((fetch.node, fetch.stream) for fetch in self._fetches.values())
        todo = wanted(link.offered, self._held(), own_node=self.config.name, busy=busy)
        if not todo:
            progress = self._catch_up.get(link.name)
            if progress is not None and not progress.done and not busy:
                progress.done = True
                self._append(
                    ResyncCaughtUp(peer=link.name, records=progress.records, took_ns=now - progress.started_ns)
                )
            return
        first = todo[0]
        self._request(link, first.node, first.stream, first.from_seq, now)

    def _request(self, link: PeerLink, node: str, stream: str, from_seq: int, now: int) -> None:
        """Send one bounded events request to `link`; it is the link's one request in flight."""
        request = EventsRequest(
            session=self.session,
            id=self._request_id(),
            node=node,
            stream=stream,
            from_seq=from_seq,
            max_records=BATCH_RECORDS,
            max_bytes=BATCH_BYTES,
        )
        if self._send(link.name, request):
            self._fetches[link.name] = _Fetch(
                link=link.name, request_id=request.id, node=node, stream=stream, from_seq=from_seq, sent_ns=now
            )

    def _held(self) -> dict[str, dict[str, int]]:
        held: dict[str, dict[str, int]] = {}
        for (node, stream), seq in self.replica.heads().items():
            held.setdefault(node, {})[stream] = seq
        return held

    def _on_events(self, link: PeerLink, fetch: _Fetch, reply: EventsReply) -> None:
        if reply.node != fetch.node or reply.stream != fetch.stream:
            self._count("replies_wrong_stream")
            return
        if reply.first_seq > fetch.from_seq:
            self._record_gap(link.name, fetch, reply.first_seq, reply.missing_reason or "not sent by the peer")
        if not reply.frames:
            return
        result = self.replica.store(fetch.node, fetch.stream, reply.frames)
        self._count("records_fetched", result.stored)
        self._count("records_duplicate", result.duplicates)
        if result.rejected:
            self._count("records_rejected", len(result.rejected))
            self.log.warning(
                "%s sent %d bad records of %s/%s: %s",
                link.name,
                len(result.rejected),
                fetch.node,
                fetch.stream,
                result.rejected[0],
            )
        progress = self._catch_up.get(link.name)
        if progress is not None:
            progress.records += result.stored
        ahead = self._fetches.get(link.name)
        if (result.rejected or result.gap is not None) and ahead is not None and ahead.stream == fetch.stream:
            # The batch already asked for starts past what was stored: forget it (its reply will be counted as
            # unexpected) and ask again from the replica's head.
            del self._fetches[link.name]

    def _record_gap(self, peer: str, fetch: _Fetch, resume_seq: int, reason: str) -> None:
        if resume_seq <= fetch.from_seq:
            return
        self.replica.skip_to(fetch.node, fetch.stream, resume_seq, reason)
        self._append(
            ResyncGap(
                peer=peer,
                node=fetch.node,
                stream=fetch.stream,
                first_seq=fetch.from_seq,
                last_seq=resume_seq - 1,
                reason=reason,
            )
        )
        self.log.warning(
            "%s/%s: records %d..%d are missing (%s, from %s)",
            fetch.node,
            fetch.stream,
            fetch.from_seq,
            resume_seq - 1,
            reason,
            peer,
        )

    def _expire_fetches(self, now: int) -> None:
        for name, fetch in list(self._fetches.items()):
            if now - fetch.sent_ns > REQUEST_TIMEOUT_NS:
                del self._fetches[name]
                self._count("fetches_timed_out")

    async def _sync_replica(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(self.replica.sync)

    # -- reporting ----------------------------------------------------------------------------------------------

    def _refused(self, key: str, address: str) -> None:
        """A refused key goes in the stream the first time (the ZAP handler logs every one, rate-limited)."""
        self._append(PeerRefused(key=key, address=address))

    def _append(self, event: object) -> None:
        self.journal.append(event)

    def cluster_status(self, now: int) -> ClusterStatus:
        peers = []
        for link in self.links.values():
            estimate = link.clock.estimate
            peers.append(
                PeerStatus(
                    name=link.name,
                    endpoint=link.endpoint,
                    reachable=link.up,
                    rtt_ms=None if estimate is None or not link.up else estimate.delay_ns / 1e6,
                    clock_offset_ms=None if estimate is None or not link.up else estimate.offset_ns / 1e6,
                    instances=link.instances,
                    last_heard_ms=None if link.last_heard_ns is None else (now - link.last_heard_ns) / 1e6,
                )
            )
        counters = dict(self.counters)
        counters.update({f"refused_{key}": count for key, count in self.responder.refused.items()})
        counters["records_served"] = self.responder.served_records
        counters["connections_refused"] = self.zap.statistics().refused_total
        return ClusterStatus(node=self.config.name, peers=tuple(peers), counters=counters)
