"""keepalived as a peer in the lab: a config written for one lab node, run in the foreground, stopped by PID.

ffo must interoperate with keepalived on the wire (issue 5), so the interop tests, the failover benchmark and
the lab put the real keepalived (the Debian package, 2.2.7 here) in a node namespace next to ffo daemons. This
module is the one place that knows how to do that without ever meeting a system instance:

- everything keepalived reads or writes lives in a directory the caller owns: the config (``--use-file``), the
  parent's and the VRRP child's pid files (``--pid``, ``--vrrp_pid``), its console log, and the state file its
  notify script appends to; nothing goes to syslog (``--no-syslog``), so no system log fills up either;
- it runs in the foreground (``--dont-fork``) and VRRP only (``--vrrp``), started through `Lab.exec`, so the
  PID we hold is keepalived's parent and the lab stops it when it goes down;
- it is stopped by that PID only: SIGTERM (keepalived's shutdown: a master sends priority 0, RFC 9568 §6.4.3)
  or SIGKILL of the parent *and* of the VRRP child named in its pid file (a crash: nothing is sent).

Why a notify script rather than the log: keepalived runs ``notify`` on every state change with the instance
name, the new state and the priority as arguments; the script appends one line per change, which is the
state history as keepalived itself decided it, in order, independent of log wording and log buffering (the
console log is kept for people and for a few assertions on what keepalived complained about).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Literal

import attrs

from ffo.lab.namespaces import stop_process
from ffo.lab.netns import Lab

__all__ = [
    "KEEPALIVED",
    "Keepalived",
    "KeepalivedInstance",
    "StateChange",
    "keepalived_unavailable",
    "keepalived_version",
    "render_config",
]

KEEPALIVED: Final = "keepalived"
KeepalivedState = Literal["MASTER", "BACKUP", "FAULT", "STOP"]


def keepalived_version() -> tuple[int, ...] | None:
    """keepalived's version, e.g. (2, 2, 7), from ``keepalived --version``; None if it cannot be run."""
    try:
        done = subprocess.run([KEEPALIVED, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"Keepalived v(\d+(?:\.\d+)*)", done.stdout + done.stderr)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def keepalived_unavailable() -> str | None:
    """Why keepalived cannot run here (a reason for `pytest.skip`), or None when it can."""
    if shutil.which(KEEPALIVED) is None:
        return "keepalived is not installed (Debian: apt-get install keepalived)"
    return None


@attrs.frozen(kw_only=True)
class KeepalivedInstance:
    """One ``vrrp_instance`` block: the subset of keepalived's keywords that ffo has an equivalent for."""

    vrid: int
    priority: int
    vips: tuple[str, ...]
    """With their prefix, as ffo writes them (``192.0.2.100/24``); the family of the first sets the instance's."""
    name: str = "ffo_interop"
    interface: str = "eth0"
    advert_interval_cs: int = 100
    """keepalived's ``advert_int`` is in (fractional) seconds; ffo and the wire count centiseconds."""
    version: Literal[2, 3] = 3
    initial_state: Literal["MASTER", "BACKUP"] = "BACKUP"
    """``state MASTER`` makes a non-owner keepalived take over at once instead of after Master_Down_Interval."""
    preempt: bool = True
    unicast_source: str | None = None
    unicast_peers: tuple[str, ...] = ()
    v3_checksum_as_v2: bool = False
    """The IPv4 VRRPv3 checksum without the pseudo-header (ffo's ``plain`` form): keepalived 2.2.8 and later
    only; 2.2.7 refuses the keyword, and the plain form altogether ("Invalid VRRPv3 checksum")."""

    def __attrs_post_init__(self) -> None:
        if not self.vips:
            raise ValueError("a keepalived instance needs at least one VIP")
        if self.version == 2 and self.advert_interval_cs % 100:
            raise ValueError(f"VRRPv2 advertises whole seconds, not {self.advert_interval_cs} cs")
        if not 1 <= self.advert_interval_cs <= 4095:
            raise ValueError(f"advert_interval_cs {self.advert_interval_cs} is not in 1..4095")

    @property
    def ipv6(self) -> bool:
        return ipaddress.ip_interface(self.vips[0]).version == 6

    def render(self, notify: Path | None) -> str:
        """The ``vrrp_instance`` block."""
        seconds = f"{self.advert_interval_cs // 100}.{self.advert_interval_cs % 100:02d}".rstrip("0").rstrip(".")
        lines = [
            f"vrrp_instance {self.name} {{",
            f"    state {self.initial_state}",
            f"    interface {self.interface}",
            f"    virtual_router_id {self.vrid}",
            f"    priority {self.priority}",
            f"    advert_int {seconds}",
            f"    version {self.version}",
        ]
        if not self.preempt:
            lines.append("    nopreempt")
        if self.v3_checksum_as_v2:
            lines.append("    v3_checksum_as_v2")
        if self.unicast_source is not None:
            lines.append(f"    unicast_src_ip {self.unicast_source}")
        if self.unicast_peers:
            lines += ["    unicast_peer {", *(f"        {peer}" for peer in self.unicast_peers), "    }"]
        if notify is not None:
            lines.append(f"    notify {shlex.quote(str(notify))}")
        lines += ["    virtual_ipaddress {", *(f"        {vip}" for vip in self.vips), "    }", "}"]
        return "\n".join(lines) + "\n"


def render_config(instances: Sequence[KeepalivedInstance], *, router_id: str, notify: Path | None = None) -> str:
    """A whole keepalived.conf for a lab node.

    ``script_user root`` stops keepalived looking for its ``keepalived_script`` user (absent on most hosts)
    to run the notify script; no ``vrrp_strict``, so keepalived adds no firewall rules and runs in accept mode
    as ffo does by default; the VRRP version is given per instance, so instances may mix 2 and 3.
    """
    head = f"global_defs {{\n    router_id {router_id}\n    script_user root\n}}\n"
    return head + "".join(instance.render(notify) for instance in instances)


NOTIFY_SCRIPT: Final = """\
#!/bin/sh
# Written by ffo.lab.keepalived. keepalived runs it as: notify TYPE NAME STATE PRIORITY.
printf '%s %s %s %s\\n' "$(date +%s.%N)" "$2" "$3" "$4" >> {states}
"""


@attrs.frozen(kw_only=True)
class StateChange:
    """One line of the notify script's file: keepalived entered `state` (wall-clock `time`, seconds)."""

    time: float
    instance: str
    state: str
    priority: int | None


class Keepalived:
    """One keepalived (VRRP only, in the foreground) in a lab node; everything it writes is in `directory`."""

    def __init__(
        self,
        lab: Lab,
        node: str,
        directory: Path,
        instances: Sequence[KeepalivedInstance],
        *,
        router_id: str | None = None,
    ) -> None:
        self.lab = lab
        self.node = node
        self.directory = directory
        self.instances = tuple(instances)
        self.config = directory / "keepalived.conf"
        self.log = directory / "keepalived.log"
        self.states_file = directory / "states"
        self.notify = directory / "notify.sh"
        self.pid_file = directory / "keepalived.pid"
        self.vrrp_pid_file = directory / "vrrp.pid"
        self.router_id = router_id or f"ffo_lab_{node}"
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls,
        lab: Lab,
        node: str,
        directory: Path,
        instances: Sequence[KeepalivedInstance],
        *,
        router_id: str | None = None,
    ) -> Keepalived:
        """Write the files and start keepalived in `node`'s namespace (see `run`)."""
        daemon = cls(lab, node, directory, instances, router_id=router_id)
        daemon.run()
        return daemon

    def argv(self) -> list[str]:
        return [
            KEEPALIVED,
            "--dont-fork",
            "--vrrp",
            "--log-console",
            "--log-detail",
            "--no-syslog",
            "--use-file",
            str(self.config),
            "--pid",
            str(self.pid_file),
            "--vrrp_pid",
            str(self.vrrp_pid_file),
        ]

    def prepare(self) -> list[str]:
        """Write the config and the notify script, clear stale pid files; return the command to run.

        Apart from `run` for a launcher that starts keepalived its own way (a detached ``ffo lab up``, which
        later stops it by the PID in `pid_file` from another process).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self.notify.write_text(NOTIFY_SCRIPT.format(states=shlex.quote(str(self.states_file))))
        self.notify.chmod(0o755)
        self.config.write_text(render_config(self.instances, router_id=self.router_id, notify=self.notify))
        for stale in (self.pid_file, self.vrrp_pid_file):  # a crashed run's pid files would make it refuse
            stale.unlink(missing_ok=True)
        return self.argv()

    def run(self) -> None:
        """(Re)start keepalived through `Lab.exec`; the state file keeps the history of earlier runs."""
        if self.running():
            raise RuntimeError(f"keepalived in {self.node} is already running (pid {self.pid})")
        argv = self.prepare()
        with self.log.open("ab") as log:
            self.process = self.lab.exec(self.node, argv, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def vrrp_child(self) -> int | None:
        """The VRRP child's PID from its pid file (keepalived forks it even with ``--dont-fork``)."""
        try:
            return int(self.vrrp_pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    # -- stopping ----------------------------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, as an operator's ``systemctl stop``: a master sends priority 0 and removes its VIPs."""
        if self.process is None:
            return None
        return stop_process(self.process, timeout)

    def kill(self) -> None:
        """SIGKILL the parent and the VRRP child (by their PIDs): a crash, after which nothing is sent.

        The child first: killed alone, the parent would notice and restart it (or stop it with SIGTERM,
        which sends priority 0), which is not a crash.
        """
        if not self.running():
            return
        assert self.process is not None
        child = self.vrrp_child()
        if child is not None and _child_of(child, self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(10)

    # -- observing ---------------------------------------------------------------------------------------------

    def output(self) -> str:
        """keepalived's console log so far (every run of this object)."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def history(self) -> list[StateChange]:
        """Every state change the notify script recorded, oldest first."""
        try:
            lines = self.states_file.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        changes = []
        for line in lines:
            words = line.split()
            if len(words) < 3:
                continue  # a line being written
            priority = int(words[3]) if len(words) > 3 and words[3].isdigit() else None
            changes.append(StateChange(time=float(words[0]), instance=words[1], state=words[2], priority=priority))
        return changes

    def state(self, instance: str | None = None) -> str | None:
        """The latest state keepalived entered for `instance` (default: the first), or None before any."""
        name = instance or self.instances[0].name
        changes = [change.state for change in self.history() if change.instance == name]
        return changes[-1] if changes else None

    def wait_state(
        self, state: KeepalivedState, *, instance: str | None = None, timeout: float = 30.0, since: int = 0
    ) -> None:
        """Poll until keepalived's latest state is `state` (counting only history entries from index `since`)."""
        name = instance or self.instances[0].name

        def reached() -> bool:
            changes = [c.state for c in self.history()[since:] if c.instance == name]
            return bool(changes) and changes[-1] == state

        _poll(reached, timeout, lambda: f"keepalived in {self.node} to enter {state}:\n{self.output()[-3000:]}")


def _child_of(pid: int, parent: int) -> bool:
    """Whether `pid` is still a child of `parent` (a pid file can outlive its process and the PID be reused)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return int(stat.read().rsplit(")", 1)[-1].split()[1]) == parent
    except (OSError, IndexError, ValueError):
        return False


def _poll(condition: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what()}")
        time.sleep(0.02)
