"""tune_for_timers: always freezes the heap, asks for SCHED_FIFO only when told to, never fails on a refusal."""

from __future__ import annotations

import errno
import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ffo.timing.process import tune_for_timers

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfreeze")
def test_priority_zero_only_freezes_the_heap() -> None:
    policy = os.sched_getscheduler(0)
    notes = tune_for_timers(0)
    assert len(notes) == 1
    assert notes[0].startswith("gc:")
    assert gc.get_freeze_count() > 0
    assert os.sched_getscheduler(0) == policy


@pytest.mark.parametrize("priority", [150, 100, -1, True])
def test_priority_outside_0_to_99_is_a_config_bug(priority: int) -> None:
    with pytest.raises(ValueError, match=r"not in 0\.\.99"):
        tune_for_timers(priority)


@pytest.mark.usefixtures("unfreeze")
def test_a_refused_realtime_request_is_a_note_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int, policy: int, param: os.sched_param) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    notes = tune_for_timers(50)
    assert len(notes) == 2
    assert "not applied" in notes[1]
    assert "CAP_SYS_NICE" in notes[1]


CHILD = """
import json, os, subprocess, sys
from ffo.timing import tune_for_timers
notes = tune_for_timers(10)
grandchild = subprocess.run(
    [sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"], capture_output=True, text=True, check=True
)
print(json.dumps({"notes": notes, "policy": os.sched_getscheduler(0), "priority": os.sched_getparam(0).sched_priority,
                  "grandchild": int(grandchild.stdout)}))
"""


def test_realtime_request_applies_or_explains_and_is_not_inherited() -> None:
    """In a child process, so the test run itself never turns real-time."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, cwd=REPO, timeout=60
    )
    report = json.loads(result.stdout)
    note = report["notes"][1]
    if "not applied" in note:  # an unprivileged CI runner
        assert report["policy"] == os.SCHED_OTHER
        return
    assert "applied: SCHED_FIFO" in note
    assert report["policy"] & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO
    assert report["priority"] == 10
    assert report["grandchild"] == os.SCHED_OTHER
