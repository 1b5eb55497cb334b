import math

import pytest

from pimpmyllama.training.schedule import lr_factor


def test_warmup_then_cosine_by_hand():
    # 10 steps, 2 of warmup
    factors = [lr_factor(s, 10, 2, "cosine") for s in range(10)]
    assert factors[:2] == [0.5, 1.0]
    assert factors[2] == pytest.approx(1.0)  # progress 0 after warmup
    assert factors[6] == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 8)))
    assert lr_factor(10, 10, 2, "cosine") == pytest.approx(0.0)


def test_linear_and_constant():
    assert [round(lr_factor(s, 5, 0, "linear"), 3) for s in range(5)] == [1.0, 0.8, 0.6, 0.4, 0.2]
    assert {lr_factor(s, 5, 1, "constant") for s in range(5)} == {1.0}
