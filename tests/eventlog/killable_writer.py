"""A writer process for test_kill: appends for ever, acknowledging each seq on stdout once `append` returned.

    python -m tests.eventlog.killable_writer DIR

Each acknowledgement is written with one unbuffered os.write, after `append` returned: whatever the parent
reads was appended before the process died.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ffo.clock import SystemClock
from ffo.eventlog.policy import LogPolicy
from ffo.eventlog.writer import EventWriter
from tests.eventlog.helpers import NODE, Tick


def main(directory: Path) -> None:
    policy = LogPolicy(segment_max_bytes=16 << 10)  # rotate often: kills land around rotations too
    writer = EventWriter.open(directory, node=NODE, stream="kill", clock=SystemClock(), policy=policy)
    n = 0
    while True:
        seq = writer.append(Tick(n=n, note="k" * (n % 64)))
        os.write(sys.stdout.fileno(), f"{seq}\n".encode())
        n += 1


if __name__ == "__main__":
    main(Path(sys.argv[1]))
