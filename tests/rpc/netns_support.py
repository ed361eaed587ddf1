"""`ffo run` nodes in lab namespaces with a VRRP instance *and* RPC links over CurveZMQ on the lab segment.

Each node listens for its peers on its own lab address (``tcp://192.0.2.1x:7400``), so RPC and VRRP share the
node's one cable: a partition of the cable (`Lab.loss` at 100 %) cuts both, while `block_vrrp` drops only IP
protocol 112 on the node's bridge port and leaves RPC's TCP alone, the one way on this segment to make two
masters that still hear each other over RPC (a split brain that `ffo status --cluster` must flag).

Everything is observed as an operator would: the CLI for status and replay, and the event files (read with
`ffo.eventlog.reader`, as `ffo events` does) for what each node recorded and what it holds of the others.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import attrs

from ffo.lab import Lab, stop_process
from ffo.lab.faults import clear_loss
from ffo.lab.namespaces import LabError, run_command
from tests.rpc.support import REPO, TIMEOUT_S, ffo, records

RPC_PORT: Final = 7400
VRID: Final = 51
VIP: Final = "192.0.2.100/24"
HEARTBEAT_S: Final = 1.0
LIVENESS: Final = 3
"""The RPC actor's link bound: a peer is down after this many heartbeats without an answer."""

_ETH_P_IP_OFFSET, _IP_PROTOCOL_OFFSET = 12, 14 + 9
_LDH_ABS, _LDB_ABS, _JEQ_K, _RET_K = 0x28, 0x30, 0x15, 0x06
_TC_ACT_OK, _TC_ACT_SHOT = 0, 2
_ETH_P_IP, _IPPROTO_VRRP = 0x0800, 112


def vrrp_drop_bytecode() -> str:
    """Classic BPF, in ``tc … bpf bytecode`` syntax, that drops IPv4 packets of protocol 112 and passes the rest.

    ``if ethertype != IPv4: OK; if ip.protocol != 112: OK; SHOT``. cls_bpf runs a program with the Ethernet
    header at offset 0 on both hooks (it pushes the MAC header back on ingress), so the offsets are 12 and
    14 + 9; the lab's frames carry no VLAN tag and IPv4 has its protocol at a fixed place whatever its options.
    """
    program = [
        (_LDH_ABS, 0, 0, _ETH_P_IP_OFFSET),
        (_JEQ_K, 0, 3, _ETH_P_IP),
        (_LDB_ABS, 0, 0, _IP_PROTOCOL_OFFSET),
        (_JEQ_K, 0, 1, _IPPROTO_VRRP),
        (_RET_K, 0, 0, _TC_ACT_SHOT),
        (_RET_K, 0, 0, _TC_ACT_OK),
    ]
    return ",".join([str(len(program)), *(f"{code} {jt} {jf} {k}" for code, jt, jf, k in program)])


def block_vrrp(lab: Lab, node: str) -> None:
    """Drop every VRRP packet the node sends, on its bridge port in the switch namespace (out of its reach).

    Only ingress (what the node sends) is filtered: blocking every node's sends isolates their VRRP from
    each other completely, while ARP, TCP and therefore RPC keep flowing.
    """
    port = lab.port(node)
    clear_loss(lab.switch, port)
    for argv in (
        ["qdisc", "add", "dev", port, "clsact"],
        ["filter", "add", "dev", port, "ingress", "pref", "1", "bpf", "da", "bytecode", vrrp_drop_bytecode()],
    ):
        done = run_command(["tc", "-n", lab.switch, *argv])
        if done.returncode != 0:
            raise LabError(f"tc {' '.join(argv)}: {done.stderr.strip()}")


def unblock_vrrp(lab: Lab, node: str) -> None:
    """Undo `block_vrrp` (the clsact qdisc goes, and its filters with it)."""
    clear_loss(lab.switch, lab.port(node))


def generate_keys(keys: Path, names: list[str]) -> None:
    """One CURVE key pair per node with `ffo keygen`, as an operator makes them."""
    for name in names:
        ffo("keygen", "--out", str(keys), "--name", name, check=True)


@attrs.define
class LabRpcNode:
    """One `ffo run` in a lab node: one VRRP instance on ``eth0`` and RPC links to its peers on the segment."""

    lab: Lab
    name: str
    root: Path
    keys: Path
    priority: int
    interval: str = "100ms"
    process: subprocess.Popen[bytes] | None = None

    @property
    def directory(self) -> Path:
        return self.root / self.name

    @property
    def config(self) -> Path:
        return self.directory / "ffo.toml"

    @property
    def state_dir(self) -> Path:
        return self.directory / "state"

    @property
    def endpoint(self) -> str:
        return f"tcp://{self.lab.ipv4(self.name)}:{RPC_PORT}"

    def write_config(self, peers: list[LabRpcNode]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            "[node]",
            f'name = "{self.name}"',
            f'run_dir = "{self.directory}/run"',
            f'state_dir = "{self.state_dir}"',
            "",
            "[rpc]",
            f'listen = "{self.endpoint}"',
            f'secret_key_file = "{self.keys / (self.name + ".key_secret")}"',
        ]
        for peer in peers:
            lines += [
                "",
                "[[rpc.peers]]",
                f'name = "{peer.name}"',
                f'endpoint = "{peer.endpoint}"',
                f'public_key_file = "{self.keys / (peer.name + ".key")}"',
            ]
        lines += [
            "",
            "[[instance]]",
            'name = "web"',
            'interface = "eth0"',
            f"vrid = {VRID}",
            f"priority = {self.priority}",
            f'advert_interval = "{self.interval}"',
            f'vips = ["{VIP}"]',
        ]
        self.config.write_text("\n".join(lines) + "\n")

    # -- running -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        with (self.directory / "daemon.log").open("ab") as log:
            self.process = self.lab.exec(
                self.name,
                [sys.executable, "-m", "ffo.cli.main", "run", "-c", str(self.config)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> int | None:
        """SIGTERM (a clean shutdown), SIGKILL if it lingers; the exit status, or None if it never ran."""
        process, self.process = self.process, None
        return None if process is None else stop_process(process, TIMEOUT_S)

    def log_text(self) -> str:
        path = self.directory / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- observing through the CLI -------------------------------------------------------------------------------

    def state(self) -> str | None:
        """The instance's VRRP state from ``ffo status --json``; None while the daemon does not answer."""
        done = ffo("status", "-c", str(self.config), "--json")
        if done.returncode != 0:
            return None
        instances: list[dict[str, Any]] = json.loads(done.stdout)["instances"]
        return str(instances[0]["state"]) if instances else None

    def cluster(self) -> tuple[int, dict[str, Any]] | None:
        """``ffo status --cluster --json``: its exit code and view; None while the daemon does not answer."""
        done = ffo("status", "-c", str(self.config), "--cluster", "--json")
        if done.returncode not in (0, 1):
            return None
        view: dict[str, Any] = json.loads(done.stdout)
        return done.returncode, view

    def cluster_text(self) -> tuple[int, str]:
        done = ffo("status", "-c", str(self.config), "--cluster")
        return done.returncode, done.stdout

    def replay(self) -> subprocess.CompletedProcess[str]:
        return ffo("replay", "--dir", str(self.state_dir))

    # -- observing the files -------------------------------------------------------------------------------------

    def own_records(self) -> dict[str, list[tuple[Any, ...]]]:
        return records(self.state_dir / "events")

    def replica_of(self, source: LabRpcNode) -> dict[str, list[tuple[Any, ...]]]:
        return records(self.state_dir / "replica" / source.name)

    def recorded(self, event_type: str, stream: str = "rpc") -> list[tuple[Any, ...]]:
        """This node's own records of `event_type` in `stream` (tuples as `tests.rpc.support.records` makes)."""
        return [row for row in self.own_records().get(stream, []) if row[5] == event_type]


def replica_matches(holder: LabRpcNode, source: LabRpcNode) -> bool:
    """`holder` holds every stream of `source`, record for record, and nothing `source` does not have.

    A stream with no records yet (a backup's VIP actor has done nothing) has nothing to hold: it is left out.
    """
    mine = {stream: rows for stream, rows in holder.replica_of(source).items() if rows}
    theirs = {stream: rows for stream, rows in source.own_records().items() if rows}
    return bool(theirs) and mine == theirs


def all_replicas_match(nodes: list[LabRpcNode]) -> bool:
    return all(replica_matches(holder, source) for holder in nodes for source in nodes if holder is not source)


def masters(view: dict[str, Any]) -> list[str]:
    """The nodes a cluster view shows as master of the VRID, reachable or not."""
    return sorted(
        node["name"]
        for node in view["nodes"]
        for instance in node["instances"]
        if instance["vrid"] == VRID and instance["state"] == "MASTER"
    )


def reachable(view: dict[str, Any]) -> dict[str, bool]:
    return {node["name"]: bool(node["reachable"]) for node in view["nodes"]}
