"""Encode and decode rates of the bus codec (ffo.bus.codec): envelope + converter + msgpack, no sockets.

    .venv/bin/python tools/bench_codec_bus.py [--seconds 0.5] [--repeat 5]

Cases: a Heartbeat (4 scalar fields), and a VRRP `Transitioned` effect (with its Cause: 9 optional fields, an
address, enums) wrapped in a message as a member of the tagged `Effect` union. Each rate is the best of
`--repeat` runs of about `--seconds` each.
"""

from __future__ import annotations

import argparse
import functools
import time

import attrs
from benchlib import rate, sample_cause

from ffo.bus import Heartbeat, decode, encode, message
from ffo.vrrp.effects import Effect, Transitioned
from ffo.vrrp.state import Role


@message("bench.effect_emitted", version=1)
@attrs.frozen(kw_only=True)
class EffectEmitted:
    instance: str
    effect: Effect


def cases() -> list[tuple[str, str, object]]:
    cause = sample_cause()
    transitioned = Transitioned(from_role=Role.BACKUP, to_role=Role.MASTER, cause=cause)
    return [
        ("Heartbeat", "sys.heartbeat", Heartbeat(actor="vrrp", pid=4242, seq=1234, loop_lag_ns=120_000)),
        ("Transitioned effect in a message", "vrrp.web", EffectEmitted(instance="web", effect=transitioned)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="Encode and decode rates of the bus codec.")
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one run (default 0.5)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the best is kept (default 5)")
    args = parser.parse_args()
    print(f"{'case':<34} {'bytes':>5} {'encode/s':>10} {'decode/s':>10} {'µs/enc':>7} {'µs/dec':>7}")
    for name, topic, sent in cases():
        encode_one = functools.partial(
            encode,
            topic,
            sent,
            id="lb1/vrrp:1a2b3c:123456",
            src="lb1/vrrp",
            ts=time.time_ns(),
            mono=time.monotonic_ns(),
            cause="lb1/vrrp:1a2b3c:123455",
        )
        frames = encode_one()
        assert decode(frames).message == sent
        encodes = rate(encode_one, args.seconds, args.repeat)
        decodes = rate(functools.partial(decode, frames), args.seconds, args.repeat)
        size = sum(map(len, frames))
        print(f"{name:<34} {size:>5} {encodes:>10,.0f} {decodes:>10,.0f} {1e6 / encodes:>7.2f} {1e6 / decodes:>7.2f}")


if __name__ == "__main__":
    main()
