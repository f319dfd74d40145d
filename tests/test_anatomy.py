"""Anatomy space: Sobel gradient magnitude, physical units, robust [0, 1] scaling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from flare_uda.data.anatomy import sobel_gradient, sobel_magnitude, to_anatomy_space
from flare_uda.volume import Volume


@pytest.mark.parametrize("mode", ["3d", "2d"])
def test_constant_is_zero(mode):
    out = sobel_magnitude(np.full((5, 8, 8), 42.0), (3.0, 1.0, 1.0), mode)
    assert out.dtype == np.float32 and out.shape == (5, 8, 8) and (out == 0).all()


@pytest.mark.parametrize("mode", ["3d", "2d"])
def test_step_is_maximal_at_the_edge(mode):
    arr = np.zeros((6, 10, 12), np.float32)
    arr[:, :, 6:] = 100.0
    out = sobel_magnitude(arr, mode=mode)
    assert out.min() >= 0 and out.max() == 1.0
    np.testing.assert_array_equal(out[:, :, 5:7], 1.0)  # the two voxels beside the step
    assert (np.delete(out, [5, 6], axis=2) == 0).all()


def test_ramp_gives_gradient_in_mm():
    spacing = (2.5, 0.8, 0.5)
    z, y, x = np.indices((6, 7, 8)).astype(np.float32)
    arr = 3.0 * z * spacing[0] - 2.0 * y * spacing[1] + 0.5 * x * spacing[2]
    grad = sobel_gradient(arr, spacing, "3d")
    inner = (slice(None), slice(1, -1), slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(grad[inner][0], 3.0, rtol=1e-5)
    np.testing.assert_allclose(grad[inner][1], -2.0, rtol=1e-5)
    np.testing.assert_allclose(grad[inner][2], 0.5, rtol=1e-5)
    grad2d = sobel_gradient(arr, spacing, "2d")
    assert grad2d.shape == (2, 6, 7, 8)
    np.testing.assert_allclose(grad2d[:, :, 1:-1, 1:-1][1], 0.5, rtol=1e-5)


def test_3d_mode_equals_scipy_sobel_and_2d_does_not_mix_slices():
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(5, 9, 9)).astype(np.float32)
    grad = sobel_gradient(arr)
    for axis in range(3):
        np.testing.assert_allclose(grad[axis] * 32, ndimage.sobel(arr, axis=axis), atol=1e-4)
    # per-slice mode: changing one slice changes only that slice's output
    other = arr.copy()
    other[2] += rng.normal(size=(9, 9)).astype(np.float32)
    diff = np.abs(sobel_gradient(other, mode="2d") - sobel_gradient(arr, mode="2d")).sum((0, 2, 3))
    assert diff[2] > 0 and (np.delete(diff, 2) == 0).all()


def test_identical_processing_of_ct_and_mr_intensity_scales():
    """An MR-like affine rescaling of a CT image gives the same anatomy map."""
    rng = np.random.default_rng(1)
    ball = (np.indices((12, 24, 24)) - np.array([6, 12, 12])[:, None, None, None]) ** 2
    inside = ball.sum(0) < 64
    ct = np.where(inside, 60.0, -1000.0) + rng.normal(0, 5, inside.shape)
    mr = 0.37 * ct + 1234.0
    spacing = (3.0, 0.8, 0.8)
    a = to_anatomy_space(Volume(ct, spacing))
    b = to_anatomy_space(Volume(mr, spacing))
    np.testing.assert_allclose(a.array, b.array, atol=1e-4)
    assert a.same_geometry(Volume(ct, spacing), atol=0)
    assert 0 <= a.array.min() and a.array.max() == 1.0
    # the edge of the ball dominates: mean magnitude on the boundary >> inside
    shell = inside ^ ndimage.binary_erosion(inside)
    assert a.array[shell].mean() > 5 * a.array[ndimage.binary_erosion(inside, iterations=2)].mean()


def test_spacing_matters():
    arr = np.zeros((6, 10, 10), np.float32)
    arr[3:] = 1.0  # step along z
    arr[:, :, 5:] += 1.0  # step along x, same height
    g = sobel_gradient(arr, (4.0, 1.0, 1.0))
    assert abs(g[0]).max() == pytest.approx(abs(g[2]).max() / 4, rel=1e-6)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: sobel_magnitude(np.ones((4, 4))), ValueError, "must be 3D"),
        (lambda: sobel_magnitude(np.ones((2, 4, 4)), mode="4d"), ValueError, "mode must be one"),
        (lambda: sobel_magnitude(np.ones((2, 4, 4)), (1, 0, 1)), ValueError, "must be positive"),
        (lambda: sobel_magnitude(np.ones((2, 4, 4)), percentile=0), ValueError, r"\(0, 100\]"),
        (lambda: sobel_magnitude(np.full((2, 4, 4), np.inf)), ValueError, "finite values"),
        (lambda: to_anatomy_space(np.ones((2, 4, 4))), TypeError, "must be a Volume"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_phantom_ct_and_mr_edges_found_alike():
    """On the phantom, organ boundaries stand out in the anatomy space of CT, T1 and T2."""
    phantom = pytest.importorskip("flare_uda.data.phantom")
    cases = [
        phantom.generate_case("tiny", "CT", None, 0),
        phantom.generate_case("tiny", "MR", "T1", 1),
        phantom.generate_case("tiny", "MR", "T2", 2),
    ]
    for case in cases:
        anat = to_anatomy_space(case.image)
        assert anat.same_geometry(case.image, atol=0) and anat.array.dtype == np.float32
        assert anat.array.min() >= 0 and anat.array.max() == 1.0
        organs = case.label.array > 0
        boundary = organs ^ ndimage.binary_erosion(organs)
        interior = ndimage.binary_erosion(organs, iterations=2)
        ratio = anat.array[boundary].mean() / anat.array[interior].mean()
        assert ratio > 1.5, f"{case.modality} {case.sequence}: boundary/interior {ratio:.2f}"
