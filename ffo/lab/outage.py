"""The client's outage, read off the probe's echoes: the longest silence around a fault.

"Outage" is what a user of the VIP feels: the time between two consecutive replies, the last one before the
service stopped answering and the first one after it answered again. Around a fault at ``at_ns`` it is the
longest such gap that ends after ``at_ns`` — not simply "last reply before the fault, first after", because
the VIP can move well after the fault (after a restored link, the preempting master takes over only when its
Master_Down timer fires). With an echo every 10 ms, a gap of about 10 ms is no outage at all: `lost` says how
many echoes went unanswered inside the gap.

Pure: the probe's records in, one `Outage` out.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs

from ffo.lab.probe import Echo

__all__ = ["Outage", "measure_outage"]


@attrs.frozen(kw_only=True)
class Outage:
    """The longest silence around a fault (monotonic ns); `end_ns` is None when no reply came after it."""

    start_ns: int
    """The last reply before the silence (the fault's time when nothing had replied before it)."""
    end_ns: int | None
    """The first reply after the silence."""
    lost: int
    """Echoes sent during the silence that got no answer."""

    @property
    def duration_ns(self) -> int | None:
        return None if self.end_ns is None else self.end_ns - self.start_ns


def measure_outage(echoes: Sequence[Echo], at_ns: int, until_ns: int | None = None) -> Outage | None:
    """The longest gap between replies that ends after `at_ns`, among echoes sent before `until_ns`.

    None when nothing replied at all (the VIP was never reachable: there is no outage to measure).
    """
    considered = [echo for echo in echoes if until_ns is None or echo.sent_ns < until_ns]
    replies = sorted(echo.replied_ns for echo in considered if echo.replied_ns is not None)
    if not replies:
        return None
    before = [t for t in replies if t <= at_ns]
    after = [t for t in replies if t > at_ns]
    points = [before[-1] if before else at_ns, *after]
    if len(points) == 1:
        start, end = points[0], None
    else:
        start, end = max(itertools.pairwise(points), key=lambda pair: pair[1] - pair[0])
    lost = sum(
        1
        for echo in considered
        if echo.replied_ns is None and start < echo.sent_ns and (end is None or echo.sent_ns < end)
    )
    return Outage(start_ns=start, end_ns=end, lost=lost)
