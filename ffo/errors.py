"""The root of ffo's exceptions, split by who is to blame.

Following h11: a `RemoteProtocolError` means a peer (or a file, or a user) sent us something we refuse; it is
counted and dropped or reported, never a crash. A `LocalProtocolError` means our own code misused an API: a bug.
"""

from __future__ import annotations


class FfoError(Exception):
    """Every error ffo raises on purpose derives from this."""


class RemoteProtocolError(FfoError):
    """Input from outside (network, file, user) that ffo refuses."""


class LocalProtocolError(FfoError):
    """ffo's own code broke a rule: a bug, never caused by input from outside."""


class ConfigError(FfoError):
    """A configuration problem, naming the key path and the reason (`instance[0].vrid: ...`)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{path}: {reason}" for path, reason in problems))
