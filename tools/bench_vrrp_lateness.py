"""Timer lateness inside real VRRP actors: idle and with both cores busy, without and with SCHED_FIFO.

    .venv/bin/python tools/bench_vrrp_lateness.py [--interval 10ms] [--seconds 20]

Two `ffo run` daemons in lab namespaces (priorities 200 and 100) advertise at `--interval`; after `--seconds`
the master's Adver_Timer lateness and the backup's (its Master_Down timer is re-armed by every advertisement,
so the master's figures are the ones that count) are read from `ffo status --json`: p50/p99 over the recent
timers, max since start. "loaded" runs one busy loop per core in the host namespace meanwhile (started and
stopped by PID). keepalived's reference: its down timer fires ~0.25 ms after the bound (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ffo.lab import Lab

REPO = Path(__file__).resolve().parents[1]


def write_config(root: Path, node: str, priority: int, interval: str, realtime: int) -> Path:
    directory = root / node
    directory.mkdir(parents=True)
    config = directory / "ffo.toml"
    config.write_text(
        f'[node]\nname = "{node}"\nrun_dir = "{directory}/run"\nstate_dir = "{directory}/state"\n'
        f"realtime_priority = {realtime}\n\n"
        f'[[instance]]\nname = "web"\ninterface = "eth0"\nvrid = 51\npriority = {priority}\n'
        f'advert_interval = "{interval}"\nvips = ["192.0.2.100/24"]\n'
    )
    return config


def status(config: Path) -> dict[str, object] | None:
    done = subprocess.run(
        [sys.executable, "-m", "ffo.cli.main", "status", "-c", str(config), "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    return json.loads(done.stdout) if done.returncode == 0 else None


def measure(interval: str, seconds: float, realtime: int, loaded: bool) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="ffo-lat-"))
    burners: list[subprocess.Popen[bytes]] = []
    try:
        with Lab("ffo-bench", nodes=2) as lab:
            configs = {n: write_config(root, n, p, interval, realtime) for n, p in (("n1", 200), ("n2", 100))}
            daemons = [
                lab.exec(
                    n, [sys.executable, "-m", "ffo.cli.main", "run", "-c", str(c)], cwd=REPO, stderr=subprocess.DEVNULL
                )
                for n, c in configs.items()
            ]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                report = status(configs["n1"])
                if report and report["instances"] and report["instances"][0]["state"] == "MASTER":  # type: ignore[index]
                    break
                time.sleep(0.2)
            if loaded:
                burners = [
                    subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)
                ]
            time.sleep(seconds)
            report = status(configs["n1"])
            for daemon in daemons:
                daemon.send_signal(signal.SIGTERM)
            for daemon in daemons:
                daemon.wait(30)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
        shutil.rmtree(root, ignore_errors=True)
    if not report or not report["instances"]:
        raise RuntimeError("no status from the master")
    late = report["instances"][0]["timer_lateness_ms"]  # type: ignore[index]
    return {key: float(value) for key, value in late.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", default="10ms")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(f"master's Adver_Timer lateness at {args.interval}, {args.seconds:.0f} s per case (ms)")
    print(f"{'case':34} {'p50':>8} {'p99':>8} {'max':>8}")
    for loaded in (False, True):
        for realtime in (0, 50):
            late = measure(args.interval, args.seconds, realtime, loaded)
            case = f"{'both cores busy' if loaded else 'idle'}, {'SCHED_FIFO 50' if realtime else 'SCHED_OTHER'}"
            print(f"{case:34} {late['p50']:8.3f} {late['p99']:8.3f} {late['max']:8.3f}", flush=True)


if __name__ == "__main__":
    main()
