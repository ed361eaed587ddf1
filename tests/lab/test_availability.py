"""Where namespaces cannot be made, the tests skip with a reason a person can act on (no namespace needed)."""

from __future__ import annotations

import os
import shutil

import pytest

from ffo.lab import namespaces, netns_unavailable


def test_non_root_is_told_to_be_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(namespaces, "_availability", False)  # not probed yet
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert netns_unavailable() == "network namespaces need root"


def test_missing_iproute2_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(namespaces, "_availability", False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    assert netns_unavailable() == "`ip` (iproute2) is not installed"
