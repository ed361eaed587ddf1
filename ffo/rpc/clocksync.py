"""A peer's clock offset and the link's round-trip time, NTP-style, from ping/pong timestamps.

With t1 (our wall clock when the ping left), t2 (theirs when it arrived), t3 (theirs when the pong left) and
t4 (ours when it arrived):

    offset = ((t2 - t1) + (t3 - t4)) / 2        how far their clock is ahead of ours
    delay  = (t4 - t1) - (t3 - t2)              the round trip, minus their processing time

The error of one sample's offset is at most half its delay (the path may be asymmetric), so, like NTP's clock
filter, the estimate is the sample with the smallest delay among the last few: a sample delayed by a busy
peer or a queue says little. Pure: the caller supplies every timestamp.
"""

from __future__ import annotations

from collections import deque

import attrs


@attrs.frozen(kw_only=True)
class ClockSample:
    offset_ns: int
    delay_ns: int


def sample(t1: int, t2: int, t3: int, t4: int) -> ClockSample:
    return ClockSample(offset_ns=((t2 - t1) + (t3 - t4)) // 2, delay_ns=max(0, (t4 - t1) - (t3 - t2)))


@attrs.define
class ClockFilter:
    """The best of the last `size` samples; `estimate` is None until the first one."""

    size: int = 8
    _samples: deque[ClockSample] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._samples = deque(maxlen=self.size)

    def add(self, t1: int, t2: int, t3: int, t4: int) -> ClockSample:
        new = sample(t1, t2, t3, t4)
        self._samples.append(new)
        return new

    @property
    def estimate(self) -> ClockSample | None:
        return min(self._samples, key=lambda item: item.delay_ns, default=None)

    def clear(self) -> None:
        """A link that went down may come back over another path: old samples no longer describe it."""
        self._samples.clear()
