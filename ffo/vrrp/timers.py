"""VRRP timer arithmetic in integer nanoseconds (RFC 9568 §6.1, RFC 3768 §6.1).

Intervals travel in centiseconds as on the wire; durations are computed in integer nanoseconds so that no
precision is lost (FRR truncates Skew_Time to centiseconds and shows 210 ms for priority 200 at 1 s; the exact
value is 218.75 ms). All functions are pure.
"""

from __future__ import annotations

NS_PER_CS = 10_000_000
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


def cs_to_ns(centiseconds: int) -> int:
    return centiseconds * NS_PER_CS


def skew_time_ns(priority: int, interval_cs: int, version: int) -> int:
    """Skew_Time: how much longer a lower-priority Backup waits before taking over.

    v3 (RFC 9568 §6.1): ((256 - Priority) * Active_Adver_Interval) / 256.
    v2 (RFC 3768 §6.1): (256 - Priority) / 256 seconds, independent of the interval.
    """
    if version == 2:
        return (256 - priority) * NS_PER_S // 256
    return (256 - priority) * cs_to_ns(interval_cs) // 256


def master_down_interval_ns(priority: int, interval_cs: int, version: int) -> int:
    """Master_Down_Interval (RFC 9568 calls it Active_Down_Interval): 3 x interval + Skew_Time."""
    return 3 * cs_to_ns(interval_cs) + skew_time_ns(priority, interval_cs, version)


def format_ns(duration_ns: int) -> str:
    """A duration for people: `361.2 ms`, `3.609 s`, `250 µs`."""
    magnitude = abs(duration_ns)
    if magnitude >= 10 * NS_PER_S:
        return f"{duration_ns / NS_PER_S:.2f} s"
    if magnitude >= NS_PER_S:
        return f"{duration_ns / NS_PER_S:.3f} s"
    if magnitude >= NS_PER_MS:
        return f"{duration_ns / NS_PER_MS:.1f} ms"
    return f"{duration_ns / 1000:.0f} µs"
