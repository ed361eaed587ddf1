"""The random-drop program that stands in for netem loss (pure: no namespace needed)."""

from __future__ import annotations

import pytest

from ffo.lab.faults import random_drop_bytecode


def test_the_threshold_is_the_loss_fraction_of_the_u32_range() -> None:
    assert random_drop_bytecode(25) == "4,32 0 0 4294963256,53 1 0 1073741824,6 0 0 2,6 0 0 0"


def test_total_loss_drops_without_drawing() -> None:
    assert random_drop_bytecode(100) == "1,6 0 0 2"


@pytest.mark.parametrize("percent", [-1, 100.5])
def test_out_of_range_is_refused(percent: float) -> None:
    with pytest.raises(ValueError, match=r"not in 0\.\.100"):
        random_drop_bytecode(percent)
