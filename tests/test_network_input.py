"""The torch path to the network grid and back equals the nnU-Net (numpy) path."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from inference_support import ModuleSegmenter, blob_volume, plan, threshold_net

import flare_uda.inference.network_grid as ni
import flare_uda.inference.roi as roi
from flare_uda.data.normalization import normalize, normalize_tensor
from flare_uda.data.torch_resampling import resample_image_torch
from flare_uda.inference import (
    CoarseToFineConfig,
    CoarseToFineInferer,
    SlidingWindowConfig,
    SlidingWindowInferer,
)
from flare_uda.inference.boxes import bounding_box
from flare_uda.inference.network_grid import NetworkInput, region_geometry, to_network_grid
from flare_uda.volume import Volume

STATS = {"mean": 40.0, "std": 55.0, "percentile_00_5": -100.0, "percentile_99_5": 200.0}
PERMUTED = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
ROTATED = np.array(
    [[1.0, 0.0, 0.0], [0.0, np.cos(0.3), -np.sin(0.3)], [0.0, np.sin(0.3), np.cos(0.3)]]
)


@pytest.mark.parametrize("scheme, stats", [("zscore", None), ("ct", STATS), ("none", None)])
@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.float64])
def test_normalize_tensor_equals_nnunet(scheme, stats, dtype):
    rng = np.random.default_rng(3)
    array = rng.normal(30.0, 90.0, (12, 20, 18)).astype(dtype)
    before = array.copy()
    ours = normalize_tensor(torch.from_numpy(array), scheme, stats)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), normalize(array, scheme, stats), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(array, before)  # the tensor shared the array's memory


def test_normalize_tensor_does_not_touch_its_input_and_handles_constants():
    x = torch.full((4, 5, 6), 7.0)
    out = normalize_tensor(x, "zscore")
    assert torch.equal(x, torch.full((4, 5, 6), 7.0))
    assert torch.equal(out, torch.zeros(4, 5, 6))  # std 0 -> divided by 1e-8, mean removed


def test_normalize_tensor_errors():
    with pytest.raises(TypeError, match="expected a torch.Tensor, got ndarray"):
        normalize_tensor(np.zeros((2, 2, 2)), "zscore")
    with pytest.raises(TypeError, match="expected real intensities, got a torch.bool tensor"):
        normalize_tensor(torch.zeros(2, 2, 2, dtype=torch.bool), "zscore")
    bad = torch.zeros(2, 2, 2)
    bad[0, 0, 0], bad[1, 1, 1] = float("nan"), float("inf")
    with pytest.raises(ValueError, match="got 1 NaN and 1 inf voxels"):
        normalize_tensor(bad, "zscore")
    with pytest.raises(ValueError, match="scheme 'ct' needs stats"):
        normalize_tensor(torch.zeros(2, 2, 2), "ct")
    with pytest.raises(ValueError, match="normalisation scheme"):
        normalize_tensor(torch.zeros(2, 2, 2), "minmax")


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.int16).reshape(2, 3, 4),
        np.arange(24, dtype=">f4").reshape(2, 3, 4),  # big-endian, as some readers give
        np.arange(24, dtype=np.uint16).reshape(2, 3, 4),  # cast on the host
    ],
)
def test_upload_gives_float32_values_and_keeps_the_input(array):
    before = array.copy()
    array.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "non-writable array" warning from torch
        out = ni.upload(Volume(array), "cpu")
    assert out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), before.astype(np.float32))
    np.testing.assert_array_equal(array, before)


def test_resample_image_torch_with_data_errors():
    vol = blob_volume()
    with pytest.raises(
        TypeError, match="data must be a floating-point torch.Tensor, got a torch.int64"
    ):
        resample_image_torch(vol, 1.0, data=torch.zeros(vol.shape, dtype=torch.long))
    with pytest.raises(ValueError, match=r"data must have the image's shape \(20, 40, 36\)"):
        resample_image_torch(vol, 1.0, data=torch.zeros(3, 3, 3))


BOX = (slice(2, 17), slice(5, 33), slice(3, 30))
# resampling setting -> inferer, for the three ways an inferer reaches the network grid
INFERER_FACTORIES = [
    lambda r: SlidingWindowInferer(SlidingWindowConfig(resampling=r)),
    lambda r: CoarseToFineInferer(
        CoarseToFineConfig(fine=SlidingWindowConfig(resampling=r), roi_source="body")
    ),
    lambda r: CoarseToFineInferer(CoarseToFineConfig(fine=SlidingWindowConfig(resampling=r))),
]


@pytest.mark.parametrize("box", [None, BOX])
@pytest.mark.parametrize("spacing", [(2.0, 1.0, 1.0), (3.0, 0.8, 0.8)], ids=["same", "resampled"])
def test_torch_path_lands_on_the_nnunet_grid(box, spacing):
    """Same grid always; same values when the spacing is the plan's (no interpolation)."""
    vol = blob_volume(spacing=spacing)
    p = plan(spacing=(2.0, 1.0, 1.0), normalization="zscore")
    ours = to_network_grid(vol, p, resampling="torch", box=box)
    ref = to_network_grid(vol, p, resampling="nnunet", box=box)
    assert isinstance(ours.image, torch.Tensor) and isinstance(ref.image, np.ndarray)
    assert ours.grid.same_geometry(ref.grid) and tuple(ours.image.shape) == ref.image.shape
    if spacing == (2.0, 1.0, 1.0):
        np.testing.assert_allclose(ours.image.numpy(), ref.image, atol=1e-5)


@pytest.mark.parametrize("direction", [np.eye(3), PERMUTED, ROTATED])
@pytest.mark.parametrize("box", [None, BOX])
def test_labels_back_same_for_tensor_and_array(direction, box):
    rng = np.random.default_rng(5)
    vol = Volume(np.zeros((20, 40, 36), np.float32), (1.3, 0.9, 1.1), (1.0, 2.0, 3.0), direction)
    region = region_geometry(vol, box)
    grid = Volume(np.zeros((7, 15, 17), np.uint8), (3.1, 2.3, 2.7), region.origin, direction)
    labels = rng.integers(0, 14, grid.shape).astype(np.uint8)
    from_numpy = NetworkInput(np.zeros(grid.shape), grid, vol, box).labels_back(labels)
    from_tensor = NetworkInput(torch.zeros(grid.shape), grid, vol, box).labels_back(
        torch.from_numpy(labels)
    )
    assert from_tensor.same_geometry(vol) and from_tensor.array.dtype == np.uint8
    np.testing.assert_array_equal(from_tensor.array, from_numpy.array)
    assert (from_numpy.array > 0).any()
    if box is not None:
        outside = np.ones(vol.shape, bool)
        outside[box] = False
        assert not from_numpy.array[outside].any()


def test_labels_back_rejects_a_wrong_shape():
    vol = blob_volume()
    net = to_network_grid(vol, plan(), resampling="torch")
    with pytest.raises(
        ValueError, match=r"labels must have the network grid's shape \(20, 40, 36\)"
    ):
        net.labels_back(torch.zeros(3, 3, 3, dtype=torch.uint8))


def test_bounding_box_of_a_tensor_equals_numpy():
    mask = np.zeros((9, 10, 11), bool)
    mask[2:5, 3, 4:9] = True
    assert bounding_box(torch.from_numpy(mask)) == bounding_box(mask)
    assert bounding_box(mask) == (slice(2, 5), slice(3, 4), slice(4, 9))
    assert bounding_box(torch.zeros(3, 3, 3, dtype=torch.bool)) is None
    with pytest.raises(ValueError, match=r"expected a mask 'z y x' \(3D\), got shape \(3, 3\)"):
        bounding_box(torch.zeros(3, 3, dtype=torch.bool))


@pytest.mark.parametrize(
    "inferer",
    INFERER_FACTORIES,
    ids=["plain", "roi_body", "roi_organs"],
)
def test_inferers_give_the_same_labels_on_both_paths(inferer, monkeypatch):
    uploads = []
    real = ni.upload
    counting = lambda v, d: uploads.append(1) or real(v, d)  # noqa: E731
    monkeypatch.setattr(ni, "upload", counting)
    monkeypatch.setattr(roi, "upload", counting)
    vol = blob_volume()
    seg = ModuleSegmenter(plan(), threshold_net())
    ours = inferer("torch")(vol, seg)
    ref = inferer("nnunet")(vol, seg)
    assert ours.same_geometry(vol)
    np.testing.assert_array_equal(ours.array, ref.array)
    assert (ref.array == 2).any()
    assert len(uploads) == 1  # the raw image crosses to the device once


def test_labels_back_between_directions_goes_through_simpleitk_for_tensors_too():
    rng = np.random.default_rng(6)
    vol = Volume(np.zeros((8, 9, 10), np.float32), (1.5, 1.5, 1.5), (1.0, 1.0, 1.0), PERMUTED)
    grid = Volume(np.zeros((6, 8, 7), np.uint8), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    labels = rng.integers(0, 5, grid.shape).astype(np.uint8)
    from_numpy = NetworkInput(np.zeros(grid.shape), grid, vol).labels_back(labels)
    from_tensor = NetworkInput(torch.zeros(grid.shape), grid, vol).labels_back(
        torch.from_numpy(labels)
    )
    np.testing.assert_array_equal(from_tensor.array, from_numpy.array)
    assert (from_numpy.array > 0).any()


@pytest.mark.parametrize("scheme, stats", [("zscore", None), ("ct", STATS)])
def test_normalize_tensor_box_is_the_crop_of_the_whole(scheme, stats):
    x = torch.from_numpy(np.random.default_rng(8).normal(10.0, 80.0, (9, 12, 11)).astype("f4"))
    box = (slice(1, 7), slice(2, 12), slice(0, 5))
    whole = normalize_tensor(x, scheme, stats)
    np.testing.assert_allclose(normalize_tensor(x, scheme, stats, box=box), whole[box], atol=1e-6)


def test_device_branches_equal_the_cpu_ones():
    """The helpers a CUDA tensor takes (torch reductions) give the numpy answers."""
    from flare_uda.data.normalization import _mean_std, _mean_std_torch
    from flare_uda.inference.boxes import _projections, _projections_torch

    x = torch.from_numpy(np.random.default_rng(9).normal(5.0, 30.0, (10, 12, 14)).astype("f4"))
    for ours, ref in zip(_mean_std_torch(x), _mean_std(x), strict=True):
        assert abs(float(ours) - float(ref)) < 1e-4 * max(1.0, abs(float(ref)))
    mask = x > 40.0
    for ours, ref in zip(_projections_torch(mask), _projections(mask.numpy()), strict=True):
        np.testing.assert_array_equal(ours, ref)


class CudaSegmenter(ModuleSegmenter):
    """:class:`ModuleSegmenter` with its module on the GPU."""

    def __init__(self, plan, module):
        super().__init__(plan, module.to("cuda"))

    @property
    def device(self) -> torch.device:
        return torch.device("cuda")


@pytest.mark.gpu
@pytest.mark.parametrize(
    "inferer",
    INFERER_FACTORIES,
    ids=["plain", "roi_body", "roi_organs"],
)
def test_cuda_torch_path_equals_cpu_nnunet_path(inferer):
    """On CUDA ("auto" = torch path, fp16 autocast) the labels equal the CPU nnU-Net path's."""
    vol = blob_volume()
    ours = inferer("auto")(vol, CudaSegmenter(plan(), threshold_net()))
    ref = inferer("nnunet")(vol, ModuleSegmenter(plan(), threshold_net()))
    assert ours.same_geometry(vol) and ours.array.dtype == np.uint8
    np.testing.assert_array_equal(ours.array, ref.array)
    assert (ref.array == 2).any()


@pytest.mark.gpu
@pytest.mark.parametrize("direction", [np.eye(3), ROTATED])
def test_cuda_steps_equal_numpy(direction):
    rng = np.random.default_rng(10)
    array = rng.normal(30.0, 90.0, (12, 20, 18)).astype(np.float32)
    on_gpu = normalize_tensor(torch.from_numpy(array).cuda(), "zscore")
    np.testing.assert_allclose(on_gpu.cpu().numpy(), normalize(array, "zscore"), atol=1e-5)
    mask = array > 60.0
    assert bounding_box(torch.from_numpy(mask).cuda()) == bounding_box(mask)
    vol = Volume(np.zeros((20, 40, 36), np.float32), (1.3, 0.9, 1.1), (1.0, 2.0, 3.0), direction)
    grid = Volume(np.zeros((7, 15, 17), np.uint8), (3.1, 2.3, 2.7), vol.origin, direction)
    labels = rng.integers(0, 14, grid.shape).astype(np.uint8)
    from_cuda = NetworkInput(None, grid, vol, BOX).labels_back(torch.from_numpy(labels).cuda())
    from_numpy = NetworkInput(None, grid, vol, BOX).labels_back(labels)
    np.testing.assert_array_equal(from_cuda.array, from_numpy.array)
