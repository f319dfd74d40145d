"""Eq. 7 on hand-worked examples, empty foregrounds, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flare_uda.pseudolabel import pseudo_label_uncertainty, uncertainties
from flare_uda.volume import Volume


def test_eq7_hand_worked():
    y1 = np.array([0, 1, 1, 2])
    y2 = np.array([0, 1, 2, 2])  # 1 change, |y2 > 0| = 3 -> 1/3
    y3 = np.array([1, 1, 2, 2])  # 1 change, |y3 > 0| = 4 -> 1/4
    assert pseudo_label_uncertainty([y1, y2]) == pytest.approx(1 / 3)
    assert pseudo_label_uncertainty([y1, y2, y3]) == pytest.approx((1 / 3 + 1 / 4) / 2)


def test_eq7_counts_label_swaps_and_uses_later_round_foreground():
    y1 = np.array([[[1, 1, 2, 2, 0, 0]]], np.uint8)
    y2 = np.array([[[2, 2, 1, 1, 0, 0]]], np.uint8)  # 4 swaps / 4 foreground
    y3 = np.array([[[2, 2, 1, 1, 0, 3]]], np.uint8)  # 1 change / 5 foreground
    vols = [Volume(y, (2.0, 1.0, 1.0)) for y in (y1, y2, y3)]
    assert pseudo_label_uncertainty(vols) == pytest.approx((1.0 + 0.2) / 2)


def test_eq7_identical_is_zero_and_empty_cases():
    y = np.array([0, 3, 3])
    assert pseudo_label_uncertainty([y, y, y]) == 0.0
    empty = np.zeros(3, int)
    assert pseudo_label_uncertainty([empty, empty]) == 0.0  # nothing changed
    assert math.isinf(pseudo_label_uncertainty([y, empty]))  # the organ vanished
    assert math.isinf(pseudo_label_uncertainty([y, empty, y]))
    # empty first round is fine: the later round's foreground is the denominator
    assert pseudo_label_uncertainty([empty, y]) == pytest.approx(1.0)


def test_uncertainties_over_history():
    y = np.array([0, 1])
    assert uncertainties({"a": [y, y], "b": [y, np.array([1, 1])]}) == {"a": 0.0, "b": 0.5}


def test_eq7_errors():
    y = np.zeros((2, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="at least 2 label maps, got 1"):
        pseudo_label_uncertainty([y])
    with pytest.raises(ValueError, match="share one shape"):
        pseudo_label_uncertainty([y, np.zeros((2, 2, 3), np.uint8)])
    with pytest.raises(ValueError, match="integers"):
        pseudo_label_uncertainty([y, y.astype(float)])
    with pytest.raises(TypeError, match="sequence of label maps"):
        pseudo_label_uncertainty(y)
