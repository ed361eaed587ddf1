"""How the VRRP stream's records read in `ffo events` (registered with `ffo.eventlog.describe`)."""

from __future__ import annotations

from ffo.bus.convert import unstructure
from ffo.eventlog.describe import Described, describer
from ffo.vrrp import timers
from ffo.vrrp.cause import Cause, render
from ffo.vrrp.effects import AcquireVips, Dropped, Effect, ReleaseVips, SendAdvertisement, Transitioned
from ffo.vrrp.inputs import (
    AdvertisementReceived,
    Input,
    InterfaceChanged,
    PriorityChanged,
    ShutdownRequested,
    Started,
    TimerExpired,
)
from ffo.vrrp.record import InputApplied, InstanceConfigured, PeriodicRun, TransitionMade


def input_text(event: Input) -> str:
    if isinstance(event, AdvertisementReceived):
        advert = event.advertisement
        interval = timers.format_ns(timers.cs_to_ns(advert.interval_cs))
        return f"advertisement from {event.source} priority {advert.priority} interval {interval}"
    if isinstance(event, TimerExpired):
        name = "Adver_Timer" if event.timer.value == "adver" else "Master_Down timer"
        return f"{name} fired {timers.format_ns(event.lateness_ns)} late"
    if isinstance(event, PriorityChanged):
        reason = f" ({event.reason})" if event.reason else ""
        return f"priority set to {event.priority}{reason}"
    if isinstance(event, InterfaceChanged):
        return f"interface {'up' if event.up else 'down'}"
    if isinstance(event, Started):
        return "started"
    assert isinstance(event, ShutdownRequested)
    return "shutdown requested"


def effects_text(effects: tuple[Effect, ...]) -> str:
    parts = []
    for effect in effects:
        if isinstance(effect, SendAdvertisement):
            parts.append(f"sends priority {effect.priority}")
        elif isinstance(effect, AcquireVips):
            parts.append(f"adds {', '.join(str(vip) for vip in effect.vips)}")
        elif isinstance(effect, ReleaseVips):
            parts.append(f"removes {', '.join(str(vip) for vip in effect.vips)}")
        elif isinstance(effect, Dropped):
            parts.append(f"dropped: {effect.reason.value}")
    return "; ".join(parts)


def _cause_data(cause: Cause) -> dict[str, object]:
    data = unstructure(cause, Cause)
    assert isinstance(data, dict)
    return data


@describer(TransitionMade)
def _transition(record: TransitionMade) -> Described:
    change: Transitioned = record.transition
    did = effects_text(record.step.effects)
    summary = f"{change.from_role.value} -> {change.to_role.value}" + (f" ({did})" if did else "")
    return Described(
        instance=record.instance, summary=summary, cause=render(change.cause), cause_data=_cause_data(change.cause)
    )


@describer(InputApplied)
def _input(record: InputApplied) -> Described:
    did = effects_text(record.step.effects)
    return Described(instance=record.instance, summary=input_text(record.step.input) + (f" -> {did}" if did else ""))


@describer(PeriodicRun)
def _run(record: PeriodicRun) -> Described:
    span = timers.format_ns(record.last.now_ns - record.first.now_ns)
    first = record.first.input
    if isinstance(first, AdvertisementReceived):
        what = f"{record.count} x {input_text(first)} over {span}"
    else:
        what = f"{record.count} x Adver_Timer over {span}, worst {timers.format_ns(record.max_lateness_ns)} late"
    did = effects_text(record.first.effects)
    return Described(instance=record.instance, summary=what + (f" -> {did}" if did else ""))


@describer(InstanceConfigured)
def _configured(record: InstanceConfigured) -> Described:
    config = record.config
    interval = timers.format_ns(timers.cs_to_ns(config.advert_interval_cs))
    vips = ", ".join(str(vip) for vip in config.vips)
    summary = (
        f"configured: vrid {config.vrid} {config.family.name} v{config.version} priority {config.priority} "
        f"interval {interval} preempt {'on' if config.preempt else 'off'} VIPs {vips}"
    )
    return Described(instance=record.instance, summary=summary)
