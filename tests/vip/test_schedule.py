"""The announcement schedule: keepalived's defaults, spacing, refresh, and refused settings."""

from __future__ import annotations

import itertools

import pytest

from ffo.vip.schedule import Announcement, AnnounceSettings, Phase, announcements

S = 1_000_000_000
MS = 1_000_000


def plan(settings: AnnounceSettings, start: int = 1000, limit: int = 50) -> list[tuple[int, Phase, int]]:
    return [(a.at_ns, a.phase, a.copy) for a in itertools.islice(announcements(settings, start), limit)]


def test_keepalived_defaults_five_now_five_after_five_seconds_then_nothing() -> None:
    assert plan(AnnounceSettings()) == [(1000, Phase.TAKEOVER, n) for n in range(1, 6)] + [
        (1000 + 5 * S, Phase.DELAYED, n) for n in range(1, 6)
    ]


def test_interval_spaces_the_copies_of_a_burst() -> None:
    settings = AnnounceSettings(repeat=3, interval_ns=10 * MS, delay_ns=0)
    assert plan(settings, start=0) == [
        (0, Phase.TAKEOVER, 1),
        (10 * MS, Phase.TAKEOVER, 2),
        (20 * MS, Phase.TAKEOVER, 3),
    ]


def test_refresh_is_endless_and_merged_in_time_order() -> None:
    settings = AnnounceSettings(repeat=2, delay_ns=2 * S, refresh_ns=S, refresh_repeat=1)
    assert plan(settings, start=0, limit=7) == [
        (0, Phase.TAKEOVER, 1),
        (0, Phase.TAKEOVER, 2),
        (S, Phase.REFRESH, 1),
        (2 * S, Phase.DELAYED, 1),  # the delayed burst goes before a refresh due at the same time
        (2 * S, Phase.DELAYED, 2),
        (2 * S, Phase.REFRESH, 1),
        (3 * S, Phase.REFRESH, 1),
    ]
    times = [a.at_ns for a in itertools.islice(announcements(settings, 0), 1000)]
    assert times == sorted(times)


def test_repeat_zero_sends_only_refreshes() -> None:
    settings = AnnounceSettings(repeat=0, refresh_ns=S)
    assert plan(settings, start=0, limit=2) == [(S, Phase.REFRESH, 1), (2 * S, Phase.REFRESH, 1)]
    assert plan(AnnounceSettings(repeat=0)) == []


def test_announcement_is_a_plain_value() -> None:
    first = next(announcements(AnnounceSettings(), 7))
    assert first == Announcement(at_ns=7, phase=Phase.TAKEOVER, copy=1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"repeat": -1}, "repeat must not be negative"),
        ({"interval_ns": -5}, "interval_ns must not be negative"),
        ({"refresh_ns": 10, "refresh_repeat": 3, "interval_ns": 10}, "not longer than one refresh burst"),
    ],
)
def test_refused_settings(fields: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AnnounceSettings(**fields)
