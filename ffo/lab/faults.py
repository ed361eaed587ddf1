"""Network faults for the lab: random loss on a bridge port, and `tc netem` where the kernel has it.

Measured on the project's VMs (kernel 6.18, no loadable modules): ``CONFIG_NET_SCH_NETEM`` is not set, so
``tc qdisc … netem`` fails with "Specified qdisc kind is unknown", and neither ``nft`` nor ``iptables`` is
installed. What the kernel does have is the ``clsact`` qdisc and the BPF classifier, and classic BPF can read a
random number (the ``SKF_AD_RANDOM`` ancillary load), so `set_loss` drops packets at random with a four-instruction
classic-BPF program in direct-action mode (return 2 = ``TC_ACT_SHOT``, 0 = ``TC_ACT_OK``) — nothing to compile,
only iproute2. Each packet is dropped independently with the given probability, which is what ``netem loss P%``
does too.

The filter sits on the node's port *in the switch namespace*: the ingress hook of ``v-<node>`` sees what the node
sends, its egress hook what the bridge delivers to the node. So a daemon inside the node cannot see or undo it,
its carrier stays up (unlike `Lab.cut`), and 100 % loss both ways is a silent partition.

Delay and jitter need netem; without it, `apply_netem` raises `LabError` naming the missing kernel option, and
tests that need delay skip on `netem_available()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ffo.lab.namespaces import LabError, run_command

__all__ = [
    "Direction",
    "apply_netem",
    "clear_loss",
    "clear_netem",
    "netem_available",
    "random_drop_bytecode",
    "set_loss",
]

Direction = Literal["from", "to", "both"]
"""Which packets of a node a loss applies to: those it sends, those it receives, or both."""

_SKF_AD_RANDOM = (-0x1000 + 56) & 0xFFFFFFFF  # SKF_AD_OFF + SKF_AD_RANDOM, as the u32 `k` of a load
_LD_W_ABS, _JGE_K, _RET_K = 0x20, 0x35, 0x06
_TC_ACT_OK, _TC_ACT_SHOT = 0, 2
_HOOKS: dict[Direction, tuple[str, ...]] = {"from": ("ingress",), "to": ("egress",), "both": ("ingress", "egress")}


def random_drop_bytecode(percent: float) -> str:
    """The classic-BPF program, in ``tc … bpf bytecode`` syntax, that drops `percent` % of packets at random.

    ``A = random u32; if A >= threshold: return OK; return SHOT`` with threshold = percent/100 x 2^32, so a
    packet is dropped when its draw falls below the threshold. 100 % drops everything without drawing.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"loss {percent} % is not in 0..100")
    if percent >= 100:
        return f"1,{_RET_K} 0 0 {_TC_ACT_SHOT}"
    threshold = round(percent / 100 * 2**32)
    program = [
        (_LD_W_ABS, 0, 0, _SKF_AD_RANDOM),
        (_JGE_K, 1, 0, threshold),
        (_RET_K, 0, 0, _TC_ACT_SHOT),
        (_RET_K, 0, 0, _TC_ACT_OK),
    ]
    return ",".join([str(len(program)), *(f"{code} {jt} {jf} {k}" for code, jt, jf, k in program)])


def set_loss(namespace: str, device: str, percent: float, direction: Direction = "both") -> None:
    """Drop `percent` % of the packets crossing `device` (a bridge port) in `direction`; replaces any earlier loss."""
    clear_loss(namespace, device)
    if percent <= 0:
        return
    _tc(namespace, "qdisc", "add", "dev", device, "clsact")
    for hook in _HOOKS[direction]:
        _tc(
            namespace,
            *("filter", "add", "dev", device, hook, "pref", "1", "bpf", "da"),
            *("bytecode", random_drop_bytecode(percent)),
        )


def clear_loss(namespace: str, device: str) -> None:
    """Remove the loss filters (deleting the clsact qdisc removes both hooks' filters); no-op when none."""
    result = run_command(["tc", "-n", namespace, "qdisc", "del", "dev", device, "clsact"])
    if result.returncode != 0 and not _absent(result.stderr):
        raise LabError(f"tc qdisc del clsact on {device} in {namespace}: {result.stderr.strip()}")


def apply_netem(namespace: str, device: str, spec: str | Sequence[str]) -> None:
    """``tc qdisc replace dev DEVICE root netem SPEC`` (e.g. ``"delay 5ms 1ms"``): what `device` sends."""
    words = spec.split() if isinstance(spec, str) else list(spec)
    result = run_command(["tc", "-n", namespace, "qdisc", "replace", "dev", device, "root", "netem", *words])
    if result.returncode != 0:
        if "unknown" in result.stderr.lower():
            raise LabError("this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM); use Lab.loss for random loss")
        raise LabError(f"tc netem {' '.join(words)} on {device}: {result.stderr.strip()}")


def clear_netem(namespace: str, device: str) -> None:
    """Remove the root qdisc set by `apply_netem`; no-op when there is none."""
    result = run_command(["tc", "-n", namespace, "qdisc", "del", "dev", device, "root"])
    if result.returncode != 0 and not _absent(result.stderr):
        raise LabError(f"tc qdisc del root on {device} in {namespace}: {result.stderr.strip()}")


def netem_available(namespace: str, device: str) -> bool:
    """Whether the kernel accepts a netem qdisc on `device` (tries one and removes it)."""
    result = run_command(["tc", "-n", namespace, "qdisc", "replace", "dev", device, "root", "netem", "delay", "0ms"])
    if result.returncode != 0:
        return False
    clear_netem(namespace, device)
    return True


def _absent(stderr: str) -> bool:
    """tc's ways of saying there was nothing to delete."""
    return any(text in stderr for text in ("No such file", "Cannot delete", "Invalid handle", "Cannot find"))


def _tc(namespace: str, *args: str) -> None:
    result = run_command(["tc", "-n", namespace, *args])
    if result.returncode != 0:
        raise LabError(f"tc -n {namespace} {' '.join(args)}: {result.stderr.strip()}")
