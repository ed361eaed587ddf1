"""How a stream is written, rotated and kept (pure): the knobs of `EventWriter`, with their defaults.

The defaults mirror `[events]` in the configuration (`ffo.config.EventLogSettings`). Ages are measured on
the wall clock, unlike every timer in ffo, because a segment's age must survive a reboot (the monotonic clock
restarts at boot); a step of the wall clock therefore moves rotation and retention, never a VRRP timer.
"""

from __future__ import annotations

from typing import Final

import attrs

from ffo.config import EventLogSettings

__all__ = ["LogPolicy"]

_MIB: Final = 1 << 20
_S: Final = 1_000_000_000
_DAY: Final = 86400 * _S
_positive = attrs.validators.and_(attrs.validators.instance_of(int), attrs.validators.gt(0))


@attrs.frozen(kw_only=True)
class LogPolicy:
    """Durability, rotation, retention and degraded-mode limits of one stream."""

    fsync_interval_ns: int = attrs.field(default=10_000_000, validator=_positive)
    """Group commit: records reach the OS at once and the disk within about this long (fdatasync)."""
    segment_max_bytes: int = attrs.field(default=64 * _MIB, validator=_positive)
    """A new segment starts before a record would take the active one past this size."""
    segment_max_age_ns: int = attrs.field(default=_DAY, validator=_positive)
    """...or when the active segment's first record is this old."""
    retain_bytes: int = attrs.field(default=1024 * _MIB, validator=_positive)
    """The oldest whole segments are deleted while the stream is larger than this (never the active one)."""
    retain_age_ns: int = attrs.field(default=30 * _DAY, validator=_positive)
    """...and while the oldest segment's records are all older than this."""
    max_pending_bytes: int = attrs.field(default=4 * _MIB, validator=_positive)
    """While the disk fails, records wait in memory up to this many bytes; later ones are dropped and counted."""
    retry_interval_ns: int = attrs.field(default=_S, validator=_positive)
    """While the disk fails, writing is tried again at most this often."""

    @classmethod
    def from_settings(cls, settings: EventLogSettings) -> LogPolicy:
        """The policy a node's `[events]` asks for (the degraded-mode memory limits keep their defaults)."""
        return cls(
            fsync_interval_ns=settings.fsync_interval_ns,
            segment_max_bytes=settings.segment_max_bytes,
            segment_max_age_ns=settings.segment_max_age_ns,
            retain_bytes=settings.retain_bytes,
            retain_age_ns=settings.retain_age_ns,
        )
