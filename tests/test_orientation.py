"""Canonical layout: scans stored with permuted or flipped axes reach a network alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from flare_uda.data.orientation import canonical_axes, canonical_tensor, is_canonical, to_canonical
from flare_uda.data.preprocess import PreprocessConfig, Preprocessor
from flare_uda.inference import SegmentationPlan, SlidingWindowInferer
from flare_uda.segmentation import NetworkSegmenter
from flare_uda.volume import Volume


def _ramp(shape=(6, 10, 12), spacing=(3.0, 2.0, 2.0)) -> Volume:
    """Intensity rising along physical x, canonical layout, a non-zero origin."""
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return Volume((x + 0.01 * y + 0.001 * z).astype(np.float32), spacing, (5.0, -7.0, 11.0))


def _flip_x(v: Volume) -> Volume:
    """The same physical image stored with its x axis reversed."""
    last = v.index_to_physical(np.array([0.0, 0.0, v.shape[2] - 1]))
    direction = v.direction.copy()
    direction[:, 2] *= -1
    return Volume(v.array[:, :, ::-1].copy(), v.spacing, tuple(last.tolist()), direction)


def _swap_yx(v: Volume) -> Volume:
    """The same physical image stored with its y and x axes exchanged."""
    d = v.direction[:, [0, 2, 1]]
    spacing = (v.spacing[0], v.spacing[2], v.spacing[1])
    return Volume(np.ascontiguousarray(v.array.transpose(0, 2, 1)), spacing, v.origin, d)


def _value_at(v: Volume, point: np.ndarray) -> float:
    index = np.linalg.solve(v.direction * np.asarray(v.spacing), point - np.asarray(v.origin))
    return float(v.array[tuple(int(round(i)) for i in index)])


@pytest.mark.parametrize("layout", [_flip_x, _swap_yx, lambda v: _swap_yx(_flip_x(v))])
def test_canonical_layout_keeps_every_voxel_where_it_is(layout):
    v = _ramp()
    stored = layout(v)
    assert not is_canonical(stored)
    back = to_canonical(stored)
    assert is_canonical(back) and back.shape == v.shape and back.spacing == v.spacing
    np.testing.assert_array_equal(back.array, v.array)
    np.testing.assert_allclose(back.origin, v.origin, atol=1e-9)
    np.testing.assert_allclose(back.direction, np.eye(3), atol=1e-12)
    for idx in [(0, 0, 0), (5, 9, 9), (2, 3, 7)]:
        p = stored.index_to_physical(np.array(idx, dtype=float))
        assert _value_at(back, p) == stored.array[idx]
    tensor = canonical_tensor(torch.from_numpy(stored.array.copy()), stored.direction)
    np.testing.assert_array_equal(tensor.numpy(), v.array)


def test_canonical_volume_and_placeholders_are_left_as_they_are():
    v = _ramp()
    assert to_canonical(v) is v and canonical_axes(np.eye(3)) == ((0, 1, 2), (False,) * 3)
    holder = Volume(np.broadcast_to(np.zeros((), np.uint8), (4, 5, 6)), direction=-np.eye(3))
    out = to_canonical(holder)
    assert out.shape == (4, 5, 6) and 0 in out.array.strides  # no full-size copy


def test_oblique_direction_picks_the_nearest_axes():
    angle = np.deg2rad(20)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    assert canonical_axes(rot[:, [0, 2, 1]]) == ((0, 2, 1), (False, False, False))
    mirrored = rot[:, [0, 2, 1]] * np.array([1.0, -1.0, 1.0])  # array axis 1 runs along -x
    assert canonical_axes(mirrored) == ((0, 2, 1), (False, False, True))
    with pytest.raises(ValueError, match="3x3"):
        canonical_axes(np.eye(2))


def test_preprocessor_gives_one_array_for_every_layout():
    config = PreprocessConfig(target_spacing=(3.0, 2.0, 2.0), scheme="none", canonical=True)
    pre = Preprocessor(config)
    arrays = [pre.resample(f(_ramp())).array for f in (lambda v: v, _flip_x, _swap_yx)]
    for a in arrays[1:]:
        np.testing.assert_array_equal(a, arrays[0])
    with pytest.raises(TypeError, match="canonical must be true or false"):
        PreprocessConfig(canonical=1)


class _SlopeNet(nn.Module):
    """Class 1 where intensity rises along the array's last axis, class 2 where it falls."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x[..., 1:] - x[..., :-1]
        g = torch.cat([g, g[..., -1:]], -1)
        rest = torch.full_like(x, -1e4).repeat(1, 11, 1, 1, 1)
        return torch.cat([torch.zeros_like(x), 100 * g, -100 * g, rest], 1)


def _segmenter(canonical: bool) -> NetworkSegmenter:
    plan = SegmentationPlan((8, 16, 16), (3.0, 2.0, 2.0), canonical=canonical)
    return NetworkSegmenter.from_network(_SlopeNet(), plan)


@pytest.mark.parametrize("resampling", ["nnunet", "torch"])
@pytest.mark.parametrize("layout", [_flip_x, _swap_yx])
def test_inference_sees_every_layout_alike_and_answers_on_the_input_grid(layout, resampling):
    v, stored = _ramp(), layout(_ramp())
    infer = SlidingWindowInferer(step=0.5, resampling=resampling, skip_empty=False)
    pred = infer(stored, _segmenter(canonical=True))
    assert pred.shape == stored.shape and pred.same_geometry(stored)
    # x rises: class 1, as in training (the last column sees the window's edge)
    assert (to_canonical(pred).array[..., :-1] == 1).all()
    np.testing.assert_array_equal(to_canonical(pred).array, infer(v, _segmenter(True)).array)


def test_without_the_canonical_layout_a_flipped_scan_reads_mirrored():
    infer = SlidingWindowInferer(step=0.5, resampling="nnunet", skip_empty=False)
    pred = infer(_flip_x(_ramp()), _segmenter(canonical=False))
    assert (pred.array[..., :-1] == 2).all()  # the bug the canonical layout removes


def test_plan_round_trip_and_old_plans():
    plan = SegmentationPlan((8, 16, 16), (3.0, 2.0, 2.0), canonical=True)
    assert SegmentationPlan.from_dict(plan.to_dict()) == plan
    old = {k: v for k, v in plan.to_dict().items() if k != "canonical"}
    assert SegmentationPlan.from_dict(old).canonical is False
    with pytest.raises(TypeError, match="canonical must be true or false"):
        SegmentationPlan((8, 16, 16), (3.0, 2.0, 2.0), canonical="yes")


def test_training_records_the_layout_in_the_plan():
    from flare_uda.data.phantom import generate_cohort
    from flare_uda.segmentation import get_preset, train_segmenter

    _, mr = generate_cohort("tiny", 0, 1, seed=0)
    for canonical in (True, False):
        config = get_preset("tiny", iterations=1, canonical=canonical)
        seg = train_segmenter(mr, config, progress=False, device="cpu")
        assert seg.plan.canonical is canonical
    with pytest.raises(TypeError, match="canonical must be a bool"):
        get_preset("tiny", canonical="no")
