"""`ffo run -c FILE [--single-process]`: the daemon, in the foreground, until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from ffo.actors.kernel import ActorSpec, Kernel
from ffo.clock import node_clock
from ffo.config import ConfigUnreadable, NodeConfig, load_config
from ffo.errors import ConfigError
from ffo.eventlog.policy import LogPolicy


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run the daemon in the foreground")
    parser.add_argument("-c", "--config", required=True, type=Path, metavar="FILE")
    parser.add_argument(
        "--single-process", action="store_true", help="run every actor as a task of one process (inproc bus)"
    )
    parser.set_defaults(run=run)


REALTIME_ACTOR = "vrrp"
"""The actor that gets `[node] realtime_priority` (keepalived's `vrrp_rt_priority`): the one serving VRRP timers."""


VRRP_FACTORY = "ffo.actors.vrrp:VrrpActor"
VIP_FACTORY = "ffo.actors.vip:VipActor"
RPC_FACTORY = "ffo.actors.rpc:RpcActor"


def actor_specs(config: NodeConfig, config_path: Path | None = None) -> tuple[ActorSpec, ...]:
    """The actors a node runs: the built-in VRRP and VIP actors when the config has instances (VRRP stops
    first, so that its priority-0 advertisements and VIP releases go out while the rest still runs; VIP
    next), the RPC actor when it has `[rpc]`, then the `[[actor]]` entries.

    The actor named "vrrp" gets `[node] realtime_priority` (keepalived's `vrrp_rt_priority`); every other
    actor runs with normal scheduling.
    """
    built_in: list[ActorSpec] = []
    if config.instances and config_path is not None:
        options = {"config": str(config_path.resolve())}
        built_in += [
            ActorSpec(
                name=REALTIME_ACTOR,
                factory=VRRP_FACTORY,
                stop_order=0,
                options=options,
                realtime_priority=config.realtime_priority,
            ),
            ActorSpec(name="vip", factory=VIP_FACTORY, stop_order=1, options=options),
        ]
    if config.rpc is not None and config_path is not None:
        options = {"config": str(config_path.resolve())}
        built_in.append(ActorSpec(name="rpc", factory=RPC_FACTORY, stop_order=2, options=options))
    return (
        *built_in,
        *(
            ActorSpec(
                name=actor.name,
                factory=actor.factory,
                stop_order=actor.stop_order,
                options=actor.options,
                realtime_priority=config.realtime_priority if actor.name == REALTIME_ACTOR else 0,
            )
            for actor in config.actors
        ),
    )


def load(path: Path) -> NodeConfig | int:
    """The config, or the exit code after saying what is wrong with it."""
    try:
        return load_config(path)
    except ConfigUnreadable as error:
        print(f"ffo: cannot read {path}: {error.reason}", file=sys.stderr)
        return 3
    except ConfigError as error:
        for key_path, reason in error.problems:
            print(f"{key_path}: {reason}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    config = load(args.config)
    if isinstance(config, int):
        return config
    logging.basicConfig(
        level=os.environ.get("FFO_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s {config.name}/kernel[%(process)d] %(levelname)s %(message)s",
    )
    kernel = Kernel(
        node=config.name,
        specs=actor_specs(config, args.config),
        run_dir=config.run_dir,
        single_process=args.single_process,
        events_dir=config.events_dir,
        log_policy=LogPolicy.from_settings(config.events),
        clock=node_clock(config.test_clock_skew_ns),
    )
    if config.test_clock_skew_ns:
        logging.getLogger("ffo").warning(
            "[node] test_clock_skew = %+.3f s: this node's wall clock is made wrong on purpose (tests only)",
            config.test_clock_skew_ns / 1e9,
        )
    try:
        return asyncio.run(kernel.run())
    except PermissionError as error:
        print(f"ffo: {error} (the daemon needs root)", file=sys.stderr)
        return 3
