"""The pure modules of ffo.net stay pure (the same rule as tests/test_purity.py, for this package)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_purity import FORBIDDEN, imported_roots

ROOT = Path(__file__).resolve().parents[2] / "ffo" / "net"


@pytest.mark.parametrize("module", ["receive.py", "ratelimit.py"])
def test_pure_module_imports_nothing_impure(module: str) -> None:
    assert not imported_roots(ROOT / module) & FORBIDDEN
