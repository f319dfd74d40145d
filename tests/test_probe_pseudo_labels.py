"""The label edits of ``benchmarks/probe_pseudo_labels.py`` on known label maps."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

from probe_pseudo_labels import dice, fill_holes, largest_component  # noqa: E402


def test_largest_component_keeps_each_organs_biggest_part():
    label = np.zeros((1, 6, 12), np.uint8)
    label[0, 1:4, 1:4] = 1  # 9 voxels of organ 1
    label[0, 5, 10] = 1  # a stray voxel of organ 1
    label[0, 1, 8] = 2  # organ 2: one voxel, kept
    out = largest_component(label)
    assert (out == 1).sum() == 9 and out[0, 5, 10] == 0 and out[0, 1, 8] == 2


def test_fill_holes_gives_enclosed_background_to_the_organ():
    label = np.zeros((3, 7, 7), np.uint8)
    label[:, 1:6, 1:6] = 3
    label[1, 3, 3] = 0  # a hole inside organ 3
    out = fill_holes(label)
    assert out[1, 3, 3] == 3 and (out == 3).sum() == (label == 3).sum() + 1


def test_dice_of_a_shifted_box():
    a = np.zeros((1, 10, 10), bool)
    a[0, 0:4] = True  # 40 voxels
    b = np.roll(a, 2, axis=1)  # 20 shared
    assert dice(a, b) == 50.0 and dice(a & False, b & False) == 100.0
