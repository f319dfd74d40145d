"""Torch image resampling: nnU-Net's grid, analytic values, inferer path, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inference_support import ModuleSegmenter, blob_volume, plan, threshold_net

from flare_uda.data.resampling import resample_volume
from flare_uda.data.torch_resampling import resample_image_torch
from flare_uda.inference import SlidingWindowConfig, SlidingWindowInferer
from flare_uda.volume import Volume


def _ramp(shape, spacing, origin=(0.0, 0.0, 0.0), coeffs=(0.0, 2.0, -3.0)) -> Volume:
    """f = sum_a coeffs[a] * physical position along a (linear: exact for every kernel)."""
    idx = np.indices(shape, dtype=float)
    pos = [origin[a] + idx[a] * spacing[a] for a in range(3)]
    array = sum(c * p for c, p in zip(coeffs, pos, strict=True))
    return Volume(array.astype(np.float32), spacing, origin)


@pytest.mark.parametrize(
    "spacing, target",
    [
        ((5.0, 1.0, 1.0), (2.5, 0.81, 0.81)),  # anisotropic: separate z
        ((1.2, 1.0, 0.9), (1.5, 0.7, 1.1)),  # isotropic enough: full 3D
    ],
)
def test_grid_is_nnunets(spacing, target):
    vol = _ramp((9, 20, 18), spacing, origin=(3.0, -2.0, 1.0))
    out, grid = resample_image_torch(vol, target)
    ref = resample_volume(vol, target)
    assert tuple(out.shape) == ref.shape == grid.shape
    assert out.dtype == torch.float32
    np.testing.assert_allclose(grid.spacing, ref.spacing)
    np.testing.assert_allclose(grid.origin, ref.origin)
    np.testing.assert_array_equal(grid.direction, ref.direction)


def test_linear_ramp_is_reproduced_inside_3d():
    """Trilinear (the full-3D case) interpolates a linear function exactly away from the border."""
    coeffs = (0.5, 2.0, -3.0)
    vol = _ramp((12, 24, 22), (1.0, 1.0, 1.0), coeffs=coeffs)
    out, grid = resample_image_torch(vol, (0.7, 0.8, 0.9))
    expected = _ramp(grid.shape, grid.spacing, grid.origin, coeffs).array
    inner = tuple(slice(3, -3) for _ in range(3))
    np.testing.assert_allclose(out.numpy()[inner], expected[inner], atol=1e-3)


def test_separate_z_ramp_matches_nnunet_in_plane():
    """Bicubic (torch's a = -0.75) vs nnU-Net's spline on a ramp: within a fraction of a
    voxel's step (a half-voxel shift or a flipped axis would be off by >= 0.9)."""
    coeffs = (0.0, 2.0, -3.0)
    vol = _ramp((6, 24, 22), (3.0, 1.0, 1.0), coeffs=coeffs)
    out, grid = resample_image_torch(vol, (3.0, 0.8, 0.6))
    expected = _ramp(grid.shape, grid.spacing, grid.origin, coeffs).array
    inner = (slice(None), slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(out.numpy()[inner], expected[inner], atol=0.3)


def test_nearest_along_separate_axis_keeps_slices():
    """Along the low-resolution axis values are copied, never blended (nnU-Net's order 0)."""
    array = np.repeat(np.arange(6, dtype=np.float32)[:, None, None], 8, 1).repeat(8, 2)
    vol = Volume(array, (6.0, 1.0, 1.0))
    out, _ = resample_image_torch(vol, (2.0, 1.0, 1.0))
    assert out.shape[0] == 18
    np.testing.assert_array_equal(out[:, 4, 4].numpy(), np.repeat(np.arange(6), 3))


def test_close_to_nnunet_on_a_phantom_image():
    from flare_uda.data.phantom import generate_case

    image = generate_case("quick", "MR", "T1", 0).image
    image = image.with_array((image.array - image.array.mean()) / image.array.std())
    ours, _ = resample_image_torch(image, (5.0, 3.0, 3.0))
    ref = resample_volume(image, (5.0, 3.0, 3.0)).array
    corr = np.corrcoef(ours.numpy().ravel(), ref.ravel())[0, 1]
    assert corr > 0.98


def test_inferer_torch_resampling_agrees_with_nnunet_path():
    vol = blob_volume(spacing=(2.5, 0.9, 0.7))
    seg = ModuleSegmenter(plan(spacing=(2.0, 1.0, 1.0)), threshold_net())
    ref = SlidingWindowInferer()(vol, seg)
    out = SlidingWindowInferer(SlidingWindowConfig(resampling="torch"))(vol, seg)
    assert out.same_geometry(vol)
    assert (out.array == ref.array).mean() > 0.99
    assert out.array[10, 20, 18] == 2 and out.array[0, 0, 0] == 0


def test_errors():
    vol = _ramp((4, 5, 6), (1.0, 1.0, 1.0))
    with pytest.raises(TypeError, match="must be a Volume"):
        resample_image_torch(vol.array, 1.0)
    with pytest.raises(TypeError, match="resamples images"):
        resample_image_torch(vol.with_array(vol.array.astype(np.int16)), 1.0)
    with pytest.raises(ValueError, match="spacing"):
        resample_image_torch(vol, (1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="resampling"):
        SlidingWindowConfig(resampling="spline")


@pytest.mark.parametrize("source", ["organs", "body"])
def test_roi_inferer_torch_resampling_agrees(source):
    from flare_uda.inference import CoarseToFineConfig, CoarseToFineInferer

    vol = blob_volume(spacing=(2.5, 0.9, 0.7))
    seg = ModuleSegmenter(plan(spacing=(2.0, 1.0, 1.0)), threshold_net())
    outs = [
        CoarseToFineInferer(
            CoarseToFineConfig(fine=SlidingWindowConfig(resampling=r), roi_source=source)
        )(vol, seg)
        for r in ("nnunet", "torch")
    ]
    assert outs[1].same_geometry(vol)
    assert (outs[0].array == outs[1].array).mean() > 0.99


def test_auto_resampling_is_nnunets_on_cpu():
    from flare_uda.inference.network_grid import to_network_grid

    vol = blob_volume(spacing=(2.5, 0.9, 0.7))
    p = plan(spacing=(2.0, 1.0, 1.0))
    net = to_network_grid(vol, p, resampling="auto", device="cpu")
    ref = to_network_grid(vol, p, resampling="nnunet", device="cpu")
    image, grid, ref_grid = net.image, net.grid, ref.grid
    assert isinstance(image, np.ndarray)
    np.testing.assert_array_equal(image, ref.image)
    assert grid.same_geometry(ref_grid)
    with pytest.raises(ValueError, match=r"resampling must be one of .*, got .cubic."):
        to_network_grid(vol, p, resampling="cubic")
