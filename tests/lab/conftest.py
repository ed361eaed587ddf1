"""Namespace-lab fixtures: the root/iproute2 skip and the session-end leftover check."""

from tests.lab.support import no_leftover_namespaces, require_netns

__all__ = ["no_leftover_namespaces", "require_netns"]
