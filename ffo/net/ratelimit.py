"""At most one log line per key per interval, and how many were held back — pure, `now` is an argument.

RFC 9568 §7.1: a receiver MUST discard an invalid advertisement and SHOULD log the event, "subject to rate
limiting". A flood of bad packets (a misconfigured peer at 10 ms intervals sends 100 a second) must neither
fill the disk nor slow the receive path, yet the first occurrence of each kind should be seen at once, and
the line that ends a quiet period should say how many were suppressed during it.
"""

from __future__ import annotations

from collections.abc import Hashable

import attrs

__all__ = ["DEFAULT_INTERVAL_NS", "RateLimiter"]

DEFAULT_INTERVAL_NS = 10_000_000_000
"""One line per reason per 10 s."""


@attrs.define(kw_only=True)
class RateLimiter:
    """Lets one event per key through every `interval_ns`, counting the ones it holds back.

    `allow(key, now_ns)` returns None when the event must not be logged, otherwise the number of events of
    that key suppressed since the last one allowed (0 the first time). Keys are few (one per reject reason),
    so the table never needs trimming.
    """

    interval_ns: int = DEFAULT_INTERVAL_NS
    _last_ns: dict[Hashable, int] = attrs.field(factory=dict, init=False)
    _suppressed: dict[Hashable, int] = attrs.field(factory=dict, init=False)

    def allow(self, key: Hashable, now_ns: int) -> int | None:
        last = self._last_ns.get(key)
        if last is not None and now_ns - last < self.interval_ns:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._last_ns[key] = now_ns
        return self._suppressed.pop(key, 0)

    def suppressed(self, key: Hashable) -> int:
        """Events of `key` held back since the last one allowed."""
        return self._suppressed.get(key, 0)
