"""DSC and NSD of binary masks: MONAI agreement, analytic spheres, error paths."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

from flare_uda.metrics.overlap import dice
from flare_uda.metrics.surface import SEARCHES, ball_offsets, neighbour_codes, surface_dice

SPACINGS = [(1.0, 1.0, 1.0), (2.5, 0.8, 0.8), (3.0, 1.2, 0.7)]


def ellipsoid(shape=(24, 40, 40), centre=(12, 20, 20), axes=(7, 12, 10)) -> np.ndarray:
    z, y, x = np.ogrid[tuple(slice(0, s) for s in shape)]
    u = sum(((g - c) / a) ** 2 for g, c, a in zip((z, y, x), centre, axes, strict=True))
    return u <= 1.0


def ball(shape, centre_mm, radius_mm, spacing) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    d2 = sum((g * s - c) ** 2 for g, s, c in zip(grids, spacing, centre_mm, strict=True))
    return d2 <= radius_mm**2


def perturbed(ref: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "eroded":
        return ndimage.binary_erosion(ref, iterations=2)
    if kind == "dilated":
        return ndimage.binary_dilation(ref, iterations=2)
    if kind == "shifted":
        return np.roll(ref, (1, -2, 3), axis=(0, 1, 2))
    if kind == "speckled":
        return ref & (rng.random(ref.shape) > 0.1)
    if kind == "half":
        out = ref.copy()
        out[: ref.shape[0] // 2] = False
        return out
    raise ValueError(kind)


def monai_values(pred: np.ndarray, ref: np.ndarray, spacing, tol: float) -> tuple[float, float]:
    from monai.metrics import compute_dice, compute_surface_dice

    def onehot(m):
        return torch.as_tensor(np.stack([~m, m])[None].astype(np.float32))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = compute_dice(onehot(pred), onehot(ref), include_background=False).item()
        n = compute_surface_dice(
            onehot(pred), onehot(ref), [tol], spacing=spacing, use_subvoxels=True
        ).item()
    return d, n


@pytest.mark.parametrize("kind", ["eroded", "dilated", "shifted", "speckled", "half"])
@pytest.mark.parametrize("spacing", SPACINGS)
def test_equals_monai_on_perturbed_masks(kind, spacing):
    ref = ellipsoid()
    pred = perturbed(ref, kind)
    for tol in (1.0, 2.0, 3.0, 5.0, 7.0):
        m_dsc, m_nsd = monai_values(pred, ref, spacing, tol)
        assert abs(dice(pred, ref) - m_dsc) < 1e-4
        for search in SEARCHES:
            assert abs(surface_dice(pred, ref, spacing, tol, search=search) - m_nsd) < 1e-4


def test_ball_offsets_are_the_grid_points_within_tolerance():
    offsets = ball_offsets((2.5, 0.8, 0.8), 2.0)
    dist = np.sqrt(((offsets * [2.5, 0.8, 0.8]) ** 2).sum(axis=1))
    assert (dist <= 2.0).all() and (np.diff(dist) >= 0).all()
    assert (offsets[:, 0] == 0).all()  # 2.5 mm slices are out of a 2 mm reach
    # in-plane 5 x 5 grid (|dy|, |dx| <= 2) less its 4 corners (dy^2 + dx^2 = 8 > 6.25), less origin
    assert len(offsets) == 25 - 4 - 1
    assert len(ball_offsets((1.0, 1.0, 1.0), 0.5)) == 0


def test_mask_touching_the_array_border_equals_monai():
    ref = ellipsoid(shape=(10, 30, 30), centre=(2, 5, 15), axes=(6, 9, 8))
    pred = np.roll(ref, 1, axis=2)
    m_dsc, m_nsd = monai_values(pred, ref, (2.0, 1.0, 0.5), 2.0)
    assert abs(surface_dice(pred, ref, (2.0, 1.0, 0.5), 2.0) - m_nsd) < 1e-4
    assert abs(dice(pred, ref) - m_dsc) < 1e-4


def test_identical_masks_score_one():
    ref = ellipsoid()
    assert dice(ref, ref) == 1.0
    assert surface_dice(ref, ref, (2.0, 1.0, 1.0), 0.0) == pytest.approx(1.0)


def test_empty_masks():
    empty = np.zeros((8, 8, 8), bool)
    full = ellipsoid((8, 8, 8), (4, 4, 4), (2, 2, 2))
    assert dice(empty, empty) == 1.0 and surface_dice(empty, empty, 1.0, 2.0) == 1.0
    assert math.isnan(dice(empty, empty, empty_score=math.nan))
    assert dice(full, empty) == 0.0 and surface_dice(full, empty, 1.0, 2.0) == 0.0
    assert dice(empty, full) == 0.0 and surface_dice(empty, full, 1.0, 2.0) == 0.0


def test_neighbour_codes_of_one_voxel_are_the_eight_bits():
    codes = neighbour_codes(np.ones((1, 1, 1), bool))
    assert codes.shape == (2, 2, 2)
    assert sorted(codes.ravel().tolist()) == [1, 2, 4, 8, 16, 32, 64, 128]
    # corner (0, 0, 0) sees the voxel as its (1, 1, 1) neighbour: bit 1
    assert codes[0, 0, 0] == 1 and codes[1, 1, 1] == 128


@pytest.mark.parametrize("spacing", [(0.25, 0.25, 0.25), (0.5, 0.25, 0.25)])
def test_sphere_against_shifted_sphere_dice_is_analytic(spacing):
    radius, shift = 8.0, 5.0  # mm; shift along z
    shape = tuple(int(math.ceil((2 * radius + shift + 4) / s)) for s in spacing)
    c = np.array([radius + 2, radius + 2, radius + 2])
    ref = ball(shape, c, radius, spacing)
    pred = ball(shape, c + [shift, 0, 0], radius, spacing)
    # two balls of radius R at distance d share pi (4R + d) (2R - d)^2 / 12
    inter = math.pi * (4 * radius + shift) * (2 * radius - shift) ** 2 / 12
    expected = inter / (4 / 3 * math.pi * radius**3)
    assert dice(pred, ref) == pytest.approx(expected, abs=0.01)
    # every surface point lies within the shift of the other sphere, none within 0.3 mm all round
    assert surface_dice(pred, ref, spacing, shift + 1.0) == pytest.approx(1.0)
    assert surface_dice(pred, ref, spacing, 0.3) < 0.5


def test_concentric_spheres_nsd_switches_at_the_radius_gap():
    spacing = (1.0, 1.0, 1.0)
    inner = ball((32, 32, 32), (16, 16, 16), 8.0, spacing)
    outer = ball((32, 32, 32), (16, 16, 16), 12.0, spacing)
    assert surface_dice(inner, outer, spacing, 2.0) == 0.0
    assert surface_dice(inner, outer, spacing, 6.0) == 1.0


def test_error_paths():
    a = np.zeros((4, 4, 4), bool)
    with pytest.raises(ValueError, match="same shape"):
        dice(a, np.zeros((4, 4, 5), bool))
    with pytest.raises(ValueError, match="same shape"):
        surface_dice(a, np.zeros((4, 4, 5), bool), 1.0, 2.0)
    with pytest.raises(ValueError, match="must be 3D"):
        dice(np.zeros((4, 4), bool), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="tolerance_mm must be"):
        surface_dice(a, a, 1.0, -1.0)
    with pytest.raises(ValueError, match="spacing must be positive"):
        surface_dice(a, ellipsoid((4, 4, 4), (2, 2, 2), (1, 1, 1)), (1.0, 0.0, 1.0), 2.0)


@pytest.mark.parametrize("spacing", SPACINGS + [(0.7, 3.3, 1.9)])
def test_surfel_area_table_equals_monai(spacing):
    from monai.metrics.utils import create_table_neighbour_code_to_surface_area

    from flare_uda.metrics.surface import surfel_area_table

    monai_table, _ = create_table_neighbour_code_to_surface_area(spacing)
    np.testing.assert_allclose(surfel_area_table(spacing), monai_table.numpy(), rtol=1e-6)
    assert surfel_area_table(spacing)[0] == surfel_area_table(spacing)[255] == 0.0
