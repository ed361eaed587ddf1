"""One log line per key per interval, counting what was held back."""

from __future__ import annotations

from ffo.net.ratelimit import RateLimiter

S = 1_000_000_000


def test_first_passes_then_one_per_interval_with_the_suppressed_count() -> None:
    limiter = RateLimiter(interval_ns=10 * S)
    assert limiter.allow("bad_ttl", 0) == 0
    assert limiter.allow("bad_ttl", 1 * S) is None
    assert limiter.allow("bad_ttl", 9 * S) is None
    assert limiter.suppressed("bad_ttl") == 2
    assert limiter.allow("bad_ttl", 10 * S) == 2
    assert limiter.allow("bad_ttl", 10 * S + 1) is None


def test_keys_are_independent() -> None:
    limiter = RateLimiter(interval_ns=10 * S)
    assert limiter.allow("bad_ttl", 0) == 0
    assert limiter.allow("bad_checksum", 1) == 0
    assert limiter.allow(("send", "ENETDOWN"), 2) == 0
