"""Labels back onto the input grid: the separable nearest-neighbour path equals SimpleITK's."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.data.resampling import resample_to_reference
from flare_uda.inference.network_grid import labels_to_grid_array
from flare_uda.volume import Volume

PERMUTED = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
ROTATED = np.array(
    [[1.0, 0.0, 0.0], [0.0, np.cos(0.3), -np.sin(0.3)], [0.0, np.sin(0.3), np.cos(0.3)]]
)


@pytest.mark.parametrize(
    "src_shape, src_spacing, src_origin, direction",
    [
        ((7, 13, 11), (3.1, 2.3, 2.7), (0.4, -1.3, 0.9), np.eye(3)),  # coarser grid
        ((30, 41, 37), (0.73, 0.61, 0.66), (1.1, 0.2, -0.7), np.eye(3)),  # finer grid
        ((5, 9, 8), (2.2, 1.7, 1.9), (4.37, 5.13, 3.71), PERMUTED),  # partial cover, permuted axes
        ((9, 12, 10), (2.6, 1.9, 2.1), (-2.1, 1.4, 0.6), ROTATED),
    ],
)
def test_separable_nearest_equals_simpleitk(src_shape, src_spacing, src_origin, direction):
    rng = np.random.default_rng(0)
    labels = Volume(
        rng.integers(0, 14, src_shape).astype(np.uint8), src_spacing, src_origin, direction
    )
    reference = Volume(
        np.zeros((17, 23, 19), np.float32), (1.3, 1.1, 1.2), (0.0, 0.0, 0.0), direction
    )
    ours = labels_to_grid_array(labels.array, labels, reference)
    sitk = resample_to_reference(labels, reference, is_label=True)
    assert ours.shape == reference.shape
    np.testing.assert_array_equal(ours, sitk.array)
    assert (ours > 0).any()


def test_other_direction_goes_through_simpleitk():
    rng = np.random.default_rng(1)
    labels = Volume(rng.integers(0, 5, (6, 8, 7)).astype(np.uint8), (2.0, 2.0, 2.0), (0, 0, 0))
    reference = Volume(np.zeros((8, 9, 10), np.float32), (1.5, 1.5, 1.5), (1, 1, 1), PERMUTED)
    np.testing.assert_array_equal(
        labels_to_grid_array(labels.array, labels, reference),
        resample_to_reference(labels, reference, is_label=True).array,
    )
