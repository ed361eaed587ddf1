"""The process an actor runs in when the node runs one process per actor: `python -m ffo.actors.host ...`.

The kernel starts it as a direct child with PR_SET_PDEATHSIG = SIGTERM (set between fork and exec), so the
child hears of the kernel's death at once, even of a SIGKILL; SIGTERM then stops the actor the normal way,
which lets a VIP actor release what it holds. This module is the actor's boundary: the only place in the
process that catches `Exception`, logs it and exits non-zero so the kernel restarts it.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

import zmq.asyncio

from ffo.actors.base import Actor, ActorContext
from ffo.bus.transport import BusEndpoints
from ffo.clock import node_clock

PR_SET_PDEATHSIG = 1
EXIT_KERNEL_GONE = 3


def set_parent_death_signal(signum: int = signal.SIGTERM) -> None:
    """Ask Linux to send `signum` when our parent dies (prctl PR_SET_PDEATHSIG). For `preexec_fn`."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def load_factory(path: str) -> type[Actor]:
    """`package.module:ClassName` -> the actor class."""
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"actor factory {path!r} is not of the form package.module:ClassName")
    factory = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(factory, type) and issubclass(factory, Actor)):
        raise TypeError(f"{path} is not an Actor subclass")
    return factory


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ffo-actor")
    parser.add_argument("--node", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--factory", required=True)
    parser.add_argument("--publish", required=True)
    parser.add_argument("--subscribe", required=True)
    parser.add_argument("--heartbeat-ns", type=int, required=True)
    parser.add_argument("--incarnation", type=int, required=True)
    parser.add_argument("--kernel-pid", type=int, required=True)
    parser.add_argument("--options", default="{}", help="the actor's settings, as JSON")
    parser.add_argument("--clock-skew-ns", type=int, default=0, help="tests only: move the wall clock")
    parser.add_argument("--realtime-priority", type=int, default=0, help="SCHED_FIFO priority 1..99; 0: normal")
    return parser.parse_args(argv)


async def _serve(actor: Actor) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, actor.request_stop, signal.Signals(signum).name)
    await actor.run()


def tuner(log: logging.Logger, realtime_priority: int) -> Callable[[], None]:
    """What the actor calls between its `setup` and its first timer (`ActorContext.after_setup`): freeze the
    start-up heap out of later collections (the full collection before it pauses the loop for tens of ms, so it
    must not run while timers do) and, if asked, take SCHED_FIFO for this thread (the event loop's). A refused
    real-time request is a warning, not a failure."""

    def tune() -> None:
        from ffo.timing import tune_for_timers  # ~12 ms of imports, paid after the bus handshake

        for note in tune_for_timers(realtime_priority):
            refused = note.startswith(f"realtime_priority {realtime_priority} not applied")
            log.log(logging.WARNING if refused else logging.INFO, "%s", note)

    return tune


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=os.environ.get("FFO_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s {args.node}/{args.name}[%(process)d] %(levelname)s %(message)s",
    )
    log = logging.getLogger(f"ffo.actor.{args.name}")
    if os.getppid() != args.kernel_pid:
        log.error("the kernel (pid %d) is already gone; not starting", args.kernel_pid)
        return EXIT_KERNEL_GONE
    context = zmq.asyncio.Context()
    try:
        actor_class = load_factory(args.factory)
        actor = actor_class(
            ActorContext(
                node=args.node,
                name=args.name,
                endpoints=BusEndpoints(publish=args.publish, subscribe=args.subscribe),
                zmq_context=context,
                heartbeat_interval_ns=args.heartbeat_ns,
                incarnation=args.incarnation,
                options=json.loads(args.options),
                after_setup=tuner(log, args.realtime_priority),
                clock=node_clock(args.clock_skew_ns),
            )
        )
        asyncio.run(_serve(actor))
    except Exception:  # the actor boundary: log, exit non-zero, let the kernel restart us
        log.exception("actor %s failed", args.name)
        return 1
    finally:
        context.destroy(linger=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
