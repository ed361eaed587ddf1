"""The kernel: the node's supervisor. It owns the bus and the control socket and keeps every actor running.

- Starts each actor as a direct child process (`ffo.actors.host`, PR_SET_PDEATHSIG = SIGTERM) or, in
  single-process mode, as a task of its own loop over `inproc://`.
- Marks an actor ready when its `ActorReady` arrives, and hung when `missed_heartbeats` heartbeats in a row
  are missing (a SIGSTOPped or wedged process): a hung process is SIGKILLed and restarted like a crash.
- Restarts a crashed actor after an exponential backoff; more than `restart_budget` crashes within
  `budget_window` exhaust the budget: the kernel says so clearly and stops the node (exit 1) rather than
  crash-looping.
- Shuts down in order on SIGTERM/SIGINT: VRRP first (its priority-0 advertisements let backups take over at
  once), then VIP, then the rest, each group sent `Stop` and given until the deadline, then SIGKILLed.
- Gives an actor with a `realtime_priority` (the VRRP actor: `[node] realtime_priority`, as keepalived's
  `vrrp_rt_priority`) SCHED_FIFO in its own process: the host applies it with `tune_for_timers` once the actor
  is ready. In single-process mode it is not applied at all, and the kernel says so: SCHED_FIFO is a property
  of a thread, and the one thread there runs the kernel and every actor, so it would make the whole node
  real-time (a busy plug-in could then starve the machine) instead of the one timing-critical actor.
- Writes the node's supervision history to its own event stream (`<state_dir>/events/kernel`): the node
  starting and stopping and every change of an actor's state with its reason (`ffo.actors.events`), so that
  `ffo events` shows a restarted VRRP actor next to the failover it caused. The log never holds the node up:
  a stream that cannot be opened is reported and the node runs without it; a stream another kernel holds
  (the same state_dir) is refused, as two daemons on one state directory are a mistake.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import signal
import sys
from collections import deque
from pathlib import Path
from typing import Any

import attrs
import zmq
import zmq.asyncio

from ffo.actors.base import Actor, ActorContext, command_topic
from ffo.actors.control import ControlServer
from ffo.actors.events import ActorChanged, NodeStarted, NodeStopped
from ffo.actors.host import load_factory, set_parent_death_signal
from ffo.bus.convert import unstructure
from ffo.bus.messages import ActorExited, ActorReady, Heartbeat, Stop
from ffo.bus.transport import BusClient, BusEndpoints, BusProxy, Transport, bind_addresses
from ffo.clock import Clock, SkewedClock, SystemClock
from ffo.eventlog.committer import run_group_commit
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.writer import EventWriter, StreamBusyError
from ffo.rpc.cluster import cluster_view
from ffo.rpc.events import ClusterStatus
from ffo.timing.process import MAX_RT_PRIORITY
from ffo.vrrp.status import VrrpStatus

log = logging.getLogger("ffo.kernel")
MS = 1_000_000
S = 1_000_000_000


@attrs.frozen(kw_only=True)
class ActorSpec:
    """One actor the kernel keeps running. `stop_order`: 0 stops first (VRRP), 1 next (VIP), 2 the rest."""

    name: str
    factory: str  # "package.module:ClassName"
    stop_order: int = 2
    options: dict[str, Any] = attrs.field(factory=dict)
    # SCHED_FIFO priority of the actor's process, 1..99; 0 = normal scheduling. Multi-process mode only.
    realtime_priority: int = attrs.field(
        default=0,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(0), attrs.validators.le(MAX_RT_PRIORITY)],
    )


@attrs.frozen(kw_only=True)
class SupervisionPolicy:
    heartbeat_interval_ns: int = 500 * MS
    missed_heartbeats: int = 4
    ready_timeout_ns: int = 15 * S
    backoff_initial_ns: int = 100 * MS
    backoff_max_ns: int = 5 * S
    restart_budget: int = 5  # crashes allowed within budget_window_ns
    budget_window_ns: int = 60 * S
    shutdown_deadline_ns: int = 5 * S


class ActorState(enum.Enum):
    NEW = "new"  # not started yet
    STARTING = "starting"
    READY = "ready"
    KILLED = "killed"  # hung, or past the shutdown deadline: SIGKILLed (or cancelled), its exit awaited
    BACKOFF = "backoff"
    STOPPED = "stopped"
    FAILED = "failed"


@attrs.define
class Supervised:
    spec: ActorSpec
    state: ActorState = ActorState.NEW
    incarnation: int = 0
    pid: int | None = None
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    actor: Actor | None = None
    started_ns: int = 0
    ready_ns: int | None = None
    exited_ns: int | None = None  # when the kernel saw the last incarnation end
    last_heartbeat_ns: int = 0
    loop_lag_ns: int = 0
    crashes: deque[int] = attrs.field(factory=deque)
    restarts: int = 0
    last_exit: str = ""
    exited: asyncio.Event = attrs.field(factory=asyncio.Event)

    def status(self, now_ns: int) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "state": self.state.value,
            "pid": self.pid,
            "incarnation": self.incarnation,
            "restarts": self.restarts,
            "last_exit": self.last_exit or None,
            "heartbeat_age_ms": round((now_ns - self.last_heartbeat_ns) / MS, 1) if self.last_heartbeat_ns else None,
            "loop_lag_ms": round(self.loop_lag_ns / MS, 3),
            "ready_after_ms": round((self.ready_ns - self.started_ns) / MS, 1) if self.ready_ns else None,
            "scheduling": scheduling_of(self.pid) if self.pid is not None else None,
        }


def scheduling_of(pid: int) -> str | None:
    """How Linux schedules `pid`'s main thread, as `SCHED_FIFO 10` or `SCHED_OTHER`; None if it is gone."""
    try:
        policy = os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK
        priority = os.sched_getparam(pid).sched_priority
    except OSError:
        return None
    name = _POLICY_NAMES.get(policy, f"policy {policy}")
    return f"{name} {priority}" if priority else name


_POLICY_NAMES = {
    os.SCHED_OTHER: "SCHED_OTHER",
    os.SCHED_FIFO: "SCHED_FIFO",
    os.SCHED_RR: "SCHED_RR",
    os.SCHED_BATCH: "SCHED_BATCH",
    os.SCHED_IDLE: "SCHED_IDLE",
}


def describe_failure(error: BaseException) -> str:
    """`RuntimeError: told to crash` rather than `ExceptionGroup: unhandled errors in a TaskGroup`."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"


class _ShutdownCompleteError(Exception):
    """Ends the kernel's task group once every actor has stopped."""


class Kernel:
    def __init__(
        self,
        *,
        node: str,
        specs: tuple[ActorSpec, ...],
        run_dir: Path,
        single_process: bool = False,
        transport: Transport | None = None,
        policy: SupervisionPolicy | None = None,
        clock: Clock | None = None,
        events_dir: Path | None = None,
        log_policy: LogPolicy | None = None,
    ) -> None:
        self.node = node
        self.run_dir = run_dir
        self.single_process = single_process
        self.transport = transport or (Transport.INPROC if single_process else Transport.IPC)
        if not single_process and self.transport is Transport.INPROC:
            raise ValueError("inproc:// reaches no other process: use ipc or tcp for a multi-process node")
        self.policy = policy or SupervisionPolicy()
        self.clock = clock or SystemClock()
        self.actors = {spec.name: Supervised(spec=spec) for spec in specs}
        self.exit_code = 0
        self.endpoints: BusEndpoints | None = None
        self.ready = asyncio.Event()
        self._shutdown = asyncio.Event()
        self._stopping = False
        self.events_dir = events_dir
        self.log_policy = log_policy or LogPolicy()
        self.journal: EventWriter | None = None
        self._stop_reason = "stopped"
        self._vrrp_status: VrrpStatus | None = None  # the VRRP actor's last report, for `ffo status`
        self._cluster_status: ClusterStatus | None = None  # the RPC actor's, for `ffo status --cluster`

    # --- running ---

    def request_shutdown(self, reason: str) -> None:
        if not self._shutdown.is_set():
            log.info("shutting down: %s", reason)
            self._stop_reason = reason
        self._shutdown.set()

    async def _announce_exit(self, supervised: Supervised, pid: int | None) -> None:
        """Tell the other actors at once (`sys.exited`): heartbeats would take seconds to say it."""
        exited = ActorExited(
            actor=supervised.spec.name,
            pid=pid or 0,
            incarnation=supervised.incarnation,
            how=supervised.last_exit,
            expected=self._stopping,
        )
        with contextlib.suppress(zmq.ZMQError):
            await self.bus.publish(EXITED_TOPIC, exited)

    def _record(self, event: object) -> None:
        if self.journal is not None:
            self.journal.append(event)

    def _set_state(self, supervised: Supervised, state: ActorState, reason: str) -> None:
        """Every change of an actor's state goes through here, so that each one is in the event log."""
        before = supervised.state
        supervised.state = state
        if before is not state:
            self._record(
                ActorChanged(
                    actor=supervised.spec.name,
                    from_state=before.value,
                    to_state=state.value,
                    pid=supervised.pid,
                    incarnation=supervised.incarnation,
                    reason=reason,
                )
            )

    async def run(self) -> int:
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self.journal = self._open_journal()
        except StreamBusyError as error:
            log.error("%s: is another ffo running with this state_dir?", error)
            return 3
        try:
            return await self._run()
        finally:
            if self.journal is not None:
                self.journal.append(NodeStopped(node=self.node, reason=self._stop_reason, exit_code=self.exit_code))
                self.journal.close()

    def _open_journal(self) -> EventWriter | None:
        if self.events_dir is None:
            return None
        try:
            journal = EventWriter.open(
                self.events_dir / KERNEL_STREAM,
                node=self.node,
                stream=KERNEL_STREAM,
                clock=self.clock,
                policy=self.log_policy,
            )
        except OSError as error:  # not StreamBusyError (an FfoError): that one stops the node, in `run`
            log.error(
                "event log %s unavailable (%s): running without the kernel's event stream", self.events_dir, error
            )
            return None
        if journal.recovery is not None:
            log.warning("event log: %s", journal.recovery)
        return journal

    async def _run(self) -> int:
        # One context for the node's sockets; the proxy thread uses a synchronous shadow of it. Destroying the
        # asyncio context at the end closes every socket made through it (actors', the control socket, a test's
        # probe) before terminating, so shutdown never waits on a socket someone forgot.
        context = zmq.asyncio.Context()
        proxy = BusProxy(
            zmq.Context.shadow(context.underlying), bind_addresses(self.transport, self.node, self.run_dir)
        )
        self.endpoints = proxy.start()
        self._context = context
        self.bus = BusClient(context, self.endpoints, src=f"{self.node}/kernel", topics=("sys.",), clock=self.clock)
        control = ControlServer(
            context, self.run_dir / "control.sock", {"status": self.status, "cluster": self.cluster_status}
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_shutdown, signal.Signals(signum).name)
        try:
            await self.bus.join()
            log.info("node %s: bus %s, %d actor(s)", self.node, self.transport.value, len(self.actors))
            self._note_ignored_realtime()
            self._record(
                NodeStarted(
                    node=self.node,
                    pid=os.getpid(),
                    mode="single-process" if self.single_process else "processes",
                    actors=tuple(self.actors),
                )
            )
            self.ready.set()
            async with asyncio.TaskGroup() as group:
                if self.journal is not None:
                    group.create_task(run_group_commit(self.journal, self.log_policy.fsync_interval_ns))
                group.create_task(self._listen())
                group.create_task(self._watchdog())
                group.create_task(control.serve())
                for supervised in self.actors.values():
                    group.create_task(self._keep_running(supervised))
                group.create_task(self._shutdown_when_asked())
        except* _ShutdownCompleteError:
            pass
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            control.close()
            self.bus.close()
            proxy.stop()
            context.destroy(linger=0)
            proxy.join()
            self._remove_sockets()
        log.info("node %s stopped (exit %d)", self.node, self.exit_code)
        return self.exit_code

    def _note_ignored_realtime(self) -> None:
        if not self.single_process:
            return
        for supervised in self.actors.values():
            if supervised.spec.realtime_priority:
                log.warning(
                    "actor %s: realtime_priority %d is not applied in single-process mode: it would make the whole "
                    "node (kernel and every actor share one thread) real-time; run one process per actor for it",
                    supervised.spec.name,
                    supervised.spec.realtime_priority,
                )

    def status(self) -> dict[str, Any]:
        now = self.clock.monotonic_ns()
        vrrp = self._vrrp_status
        return {
            "node": self.node,
            "pid": os.getpid(),
            "mode": "single-process" if self.single_process else "multi-process",
            "bus": self.transport.value,
            "actors": [supervised.status(now) for supervised in self.actors.values()],
            "instances": [] if vrrp is None else [unstructure(instance) for instance in vrrp.instances],
            "vrrp_counters": {} if vrrp is None else dict(vrrp.counters),
            "event_log": None if self.journal is None else _writer_status(self.journal),
        }

    def cluster_status(self) -> dict[str, Any]:
        """`ffo status --cluster`: this node's instances and the RPC actor's last view of its peers."""
        vrrp = self._vrrp_status
        instances = [] if vrrp is None else [unstructure(instance) for instance in vrrp.instances]
        return cluster_view(self.node, instances, self._cluster_status)

    def _remove_sockets(self) -> None:
        if self.transport is Transport.IPC:
            for name in ("bus-in.sock", "bus-out.sock"):
                with contextlib.suppress(FileNotFoundError):
                    (self.run_dir / name).unlink()

    # --- supervision ---

    async def _keep_running(self, supervised: Supervised) -> None:
        policy = self.policy
        while not self._shutdown.is_set():
            await self._start(supervised)
            pid = supervised.pid
            supervised.last_exit = await self._wait_exit(supervised)
            await self._announce_exit(supervised, pid)
            supervised.exited_ns = self.clock.monotonic_ns()
            supervised.pid = None
            supervised.exited.set()
            if self._stopping:
                self._set_state(supervised, ActorState.STOPPED, f"node shutdown; it {supervised.last_exit}")
                return
            now = self.clock.monotonic_ns()
            crashes = supervised.crashes
            crashes.append(now)
            while crashes and now - crashes[0] > policy.budget_window_ns:
                crashes.popleft()
            if len(crashes) > policy.restart_budget:
                self._set_state(
                    supervised,
                    ActorState.FAILED,
                    f"it {supervised.last_exit}: {len(crashes)} crashes within {policy.budget_window_ns / S:.0f} s, "
                    "restart budget exhausted",
                )
                log.error(
                    "actor %s: %d crashes within %.0f s (last: %s): restart budget exhausted; stopping the node",
                    supervised.spec.name,
                    len(crashes),
                    policy.budget_window_ns / S,
                    supervised.last_exit,
                )
                self.exit_code = 1
                self.request_shutdown(f"actor {supervised.spec.name} keeps crashing")
                return
            backoff = min(policy.backoff_initial_ns * 2 ** (len(crashes) - 1), policy.backoff_max_ns)
            self._set_state(
                supervised, ActorState.BACKOFF, f"it {supervised.last_exit}; restarting in {backoff / MS:.0f} ms"
            )
            log.warning("actor %s %s; restarting in %.0f ms", supervised.spec.name, supervised.last_exit, backoff / MS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._shutdown.wait(), backoff / S)
            supervised.restarts += 1
        self._set_state(supervised, ActorState.STOPPED, "node shutdown")

    async def _start(self, supervised: Supervised) -> None:
        assert self.endpoints is not None
        spec = supervised.spec
        supervised.incarnation += 1
        supervised.pid = None
        self._set_state(supervised, ActorState.STARTING, "start" if supervised.incarnation == 1 else "restart")
        supervised.ready_ns = None
        supervised.exited.clear()
        supervised.started_ns = self.clock.monotonic_ns()
        if self.single_process:
            actor = load_factory(spec.factory)(
                ActorContext(
                    node=self.node,
                    name=spec.name,
                    endpoints=self.endpoints,
                    zmq_context=self._context,
                    heartbeat_interval_ns=self.policy.heartbeat_interval_ns,
                    incarnation=supervised.incarnation,
                    options=spec.options,
                    clock=self.clock,
                )
            )
            supervised.actor = actor
            supervised.pid = os.getpid()
            supervised.task = asyncio.create_task(actor.run(), name=f"actor-{spec.name}")
            return
        argv = [
            sys.executable,
            "-m",
            "ffo.actors.host",
            f"--node={self.node}",
            f"--name={spec.name}",
            f"--factory={spec.factory}",
            f"--publish={self.endpoints.publish}",
            f"--subscribe={self.endpoints.subscribe}",
            f"--heartbeat-ns={self.policy.heartbeat_interval_ns}",
            f"--incarnation={supervised.incarnation}",
            f"--kernel-pid={os.getpid()}",
            f"--options={json.dumps(spec.options)}",
            f"--realtime-priority={spec.realtime_priority}",
            f"--clock-skew-ns={self.clock.skew_ns if isinstance(self.clock, SkewedClock) else 0}",
        ]
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, preexec_fn=set_parent_death_signal
        )
        supervised.process = process
        supervised.pid = process.pid
        log.info("actor %s started (pid %d, incarnation %d)", spec.name, process.pid, supervised.incarnation)

    async def _wait_exit(self, supervised: Supervised) -> str:
        if supervised.task is not None:
            task = supervised.task
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
                return "was cancelled (hung)"
            except Exception as error:  # the actor boundary in single-process mode
                log.exception("actor %s failed", supervised.spec.name)
                return f"failed: {describe_failure(error)}"
            finally:
                supervised.task = None
                supervised.actor = None
            return "returned"
        assert supervised.process is not None
        code = await supervised.process.wait()
        supervised.process = None
        if code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    async def _listen(self) -> None:
        while True:
            envelope = await self.bus.receive()
            message = envelope.message
            if isinstance(message, VrrpStatus):
                self._vrrp_status = message
                continue
            if isinstance(message, ClusterStatus):
                self._cluster_status = message
                continue
            if not isinstance(message, ActorReady | Heartbeat):
                continue
            supervised = self.actors.get(message.actor)
            if supervised is None or message.pid != supervised.pid:
                continue  # a previous incarnation's last words
            now = self.clock.monotonic_ns()
            if isinstance(message, Heartbeat):
                supervised.last_heartbeat_ns = now
                supervised.loop_lag_ns = message.loop_lag_ns
            elif message.incarnation == supervised.incarnation:
                supervised.ready_ns = supervised.last_heartbeat_ns = now
                self._set_state(
                    supervised, ActorState.READY, f"ready {(now - supervised.started_ns) / MS:.1f} ms after start"
                )
                log.info("actor %s ready after %.1f ms", message.actor, (now - supervised.started_ns) / MS)

    async def _watchdog(self) -> None:
        policy = self.policy
        limit = policy.missed_heartbeats * policy.heartbeat_interval_ns
        while True:
            await asyncio.sleep(policy.heartbeat_interval_ns / S / 2)
            if self._stopping:
                continue
            now = self.clock.monotonic_ns()
            for supervised in self.actors.values():
                if supervised.state is ActorState.READY and now - supervised.last_heartbeat_ns > limit:
                    silent = (now - supervised.last_heartbeat_ns) / MS
                    log.error("actor %s is hung: no heartbeat for %.0f ms; killing it", supervised.spec.name, silent)
                    self._kill(supervised, f"hung: no heartbeat for {silent:.0f} ms")
                elif supervised.state is ActorState.STARTING and now - supervised.started_ns > policy.ready_timeout_ns:
                    log.error("actor %s did not become ready in time; killing it", supervised.spec.name)
                    self._kill(supervised, f"not ready {policy.ready_timeout_ns / S:.0f} s after start")

    def _kill(self, supervised: Supervised, reason: str) -> None:
        # Not READY or STARTING any more: the watchdog must not kill it twice.
        self._set_state(supervised, ActorState.KILLED, reason)
        if supervised.process is not None and supervised.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                supervised.process.kill()
        elif supervised.task is not None:
            supervised.task.cancel()

    # --- ordered shutdown ---

    async def _shutdown_when_asked(self) -> None:
        await self._shutdown.wait()
        self._stopping = True
        deadline = self.clock.monotonic_ns() + self.policy.shutdown_deadline_ns
        for order in sorted({supervised.spec.stop_order for supervised in self.actors.values()}):
            group = [s for s in self.actors.values() if s.spec.stop_order == order and (s.process or s.task)]
            for supervised in group:
                log.info("stopping actor %s", supervised.spec.name)
                await self.bus.publish(
                    command_topic(supervised.spec.name), Stop(actor=supervised.spec.name, reason="node shutdown")
                )
            # Stop over the bus first; a process that has not heard it soon gets SIGTERM; SIGKILL at the deadline.
            await self._wait_exited(group, min(1.0, self._seconds_until(deadline)))
            for supervised in group:
                if not supervised.exited.is_set() and supervised.process is not None:
                    with contextlib.suppress(ProcessLookupError):
                        supervised.process.terminate()
            await self._wait_exited(group, self._seconds_until(deadline))
            for supervised in group:
                if not supervised.exited.is_set():
                    log.error("actor %s did not stop by the deadline; killing it", supervised.spec.name)
                    self._kill(supervised, "did not stop by the shutdown deadline")
                    await supervised.exited.wait()
        raise _ShutdownCompleteError

    def _seconds_until(self, deadline_ns: int) -> float:
        return max(0, deadline_ns - self.clock.monotonic_ns()) / S

    @staticmethod
    async def _wait_exited(group: list[Supervised], timeout: float) -> None:
        waits = [asyncio.create_task(s.exited.wait()) for s in group if not s.exited.is_set()]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for task in pending:
            task.cancel()


KERNEL_STREAM = "kernel"
EXITED_TOPIC = "sys.exited"


def _writer_status(writer: EventWriter) -> dict[str, Any]:
    status = writer.status
    return {
        "stream": status.stream,
        "next_seq": status.next_seq,
        "degraded": status.degraded,
        "last_error": status.last_error,
        "pending": status.pending,
        "dropped": status.dropped,
        "syncs": status.syncs,
    }
