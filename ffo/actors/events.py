"""The kernel's event stream: the node's supervision history (what started, crashed, hung, was restarted).

"What happened?" after an incident is often about ffo itself: was the VRRP actor restarted, and when? So
every change of an actor's supervision state is an event in the kernel's stream (`<state_dir>/events/kernel`),
next to the VRRP actor's transitions in the merged timeline.
"""

from __future__ import annotations

import attrs

from ffo.bus.messages import message
from ffo.eventlog.describe import Described, describer


@message("kernel.node_started", version=1)
@attrs.frozen(kw_only=True)
class NodeStarted:
    node: str
    pid: int
    mode: str
    """`processes` (one process per actor) or `single-process`."""
    actors: tuple[str, ...]


@message("kernel.actor_changed", version=1)
@attrs.frozen(kw_only=True)
class ActorChanged:
    """An actor's supervision state changed (starting, ready, backoff, stopped, failed), and why."""

    actor: str
    from_state: str
    to_state: str
    pid: int | None
    incarnation: int
    reason: str


@message("kernel.node_stopped", version=1)
@attrs.frozen(kw_only=True)
class NodeStopped:
    node: str
    reason: str
    exit_code: int


@describer(NodeStarted)
def _started(event: NodeStarted) -> Described:
    actors = ", ".join(event.actors) or "no actors"
    return Described(
        instance=None, summary=f"node {event.node} started (kernel pid {event.pid}, {event.mode}): {actors}"
    )


@describer(ActorChanged)
def _changed(event: ActorChanged) -> Described:
    pid = f" pid {event.pid}" if event.pid is not None else ""
    summary = f"actor {event.actor} {event.from_state} -> {event.to_state} (incarnation {event.incarnation}{pid})"
    return Described(instance=None, summary=summary, cause=event.reason or None)


@describer(NodeStopped)
def _stopped(event: NodeStopped) -> Described:
    return Described(instance=None, summary=f"node {event.node} stopped (exit {event.exit_code})", cause=event.reason)
