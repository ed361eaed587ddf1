"""The deadline queue answers as a scan of every router would: next deadline, and who is due, in order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ffo.vrrp.deadlines import DeadlineQueue

ITEMS = tuple(f"vr{i}" for i in range(8))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.integers(0, len(ITEMS) - 1), st.none() | st.integers(0, 50)),
        st.tuples(st.just("pop"), st.integers(0, 60)),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_the_queue_agrees_with_a_scan_of_every_item(ops: list[tuple[str, int, int | None] | tuple[str, int]]) -> None:
    queue = DeadlineQueue(ITEMS)
    model: dict[int, int | None] = dict.fromkeys(range(len(ITEMS)))
    for op in ops:
        if op[0] == "set":
            _, index, deadline = op  # type: ignore[misc]
            queue.set(index, deadline)
            model[index] = deadline
        else:
            now = op[1]
            due = sorted(
                (deadline, index) for index, deadline in model.items() if deadline is not None and deadline <= now
            )
            assert queue.pop_due(now) == [(d, ITEMS[index]) for d, index in due]
            for _, index in due:
                model[index] = None
        live = [deadline for deadline in model.values() if deadline is not None]
        assert queue.next_deadline() == (min(live) if live else None)
        assert all(queue.deadline_of(index) == deadline for index, deadline in model.items())


def test_stale_entries_do_not_pile_up_behind_a_long_timer() -> None:
    """One router due in an hour, another re-armed every 10 ms for a long while: the heap stays small."""
    queue = DeadlineQueue(("slow", "busy"))
    queue.set(0, 3_600_000_000_000)
    for k in range(100_000):
        queue.set(1, k * 10_000_000 + 36_000_000)
    assert len(queue) <= 4 * 2 + 64
    assert queue.next_deadline() == 99_999 * 10_000_000 + 36_000_000
    assert queue.pop_due(3_600_000_000_000) == [(99_999 * 10_000_000 + 36_000_000, "busy"), (3_600_000_000_000, "slow")]
    assert queue.next_deadline() is None
