"""Affine registrars: known affines recovered, geometry conventions, batching, errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk

from flare_uda.registration import (
    REGISTRARS,
    displacement_rms,
    get_registrar,
    register_batch,
    resample_affine,
)
from flare_uda.registration.affine import from_sitk_transform, to_sitk_transform
from flare_uda.registration.base import balanced_weights
from flare_uda.registration.features import label_channels
from flare_uda.volume import Volume

SPACING = (2.5, 1.5, 1.5)
BLOBS = (
    ((0, -8, -6), (14, 10, 14), 1.0),
    ((3, 9, 8), (9, 6, 6), 0.6),
    ((-5, 5, -12), (7, 5, 5), 0.3),
)


def blobs(shape=(20, 36, 36), spacing=SPACING, origin=(0.0, 0.0, 0.0)) -> tuple[Volume, Volume]:
    """Three ellipsoids (image and label), centred, in mm."""
    z, y, x = np.meshgrid(
        *[np.arange(n) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"
    )
    c = [(n - 1) * s / 2 for n, s in zip(shape, spacing, strict=True)]
    img, lab = np.zeros(shape, np.float32), np.zeros(shape, np.uint8)
    for k, (off, rad, val) in enumerate(BLOBS):
        m = sum(((g - ci - o) / r) ** 2 for g, ci, o, r in zip((z, y, x), c, off, rad, strict=True))
        img[m <= 1], lab[m <= 1] = val, k + 1
    return Volume(img, spacing, origin), Volume(lab, spacing, origin)


def known_affine(fixed: Volume, degrees=6.0, scale=(1.05, 0.97, 1.03), shift=(2.0, -3.0, 2.5)):
    a = np.deg2rad(degrees)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    m = rot @ np.diag(scale)
    c = fixed.index_to_physical((np.array(fixed.shape) - 1) / 2)
    out = np.eye(4)
    out[:3, :3] = m
    out[:3, 3] = c - m @ c + np.asarray(shift)
    return out


@pytest.fixture(scope="module")
def pair():
    fixed, flab = blobs()
    true = known_affine(fixed)
    # moving(p) = fixed(true^-1 p), so ``true`` maps fixed points to moving points.
    inv = np.linalg.inv(true)
    moving = resample_affine(fixed, inv, fixed)
    mlab = resample_affine(flab, inv, flab, is_label=True)
    return fixed, flab, moving, mlab, true


@pytest.mark.parametrize(
    ("name", "options"),
    [("sitk", {}), ("torch", {}), ("torch", {"optimizer": "adam", "iterations": (100, 50, 25)})],
)
def test_known_affine_recovered_within_one_voxel(pair, name, options):
    fixed, flab, moving, mlab, true = pair
    reg = get_registrar(name, **options).fit(moving, fixed)
    identity_error = displacement_rms(np.eye(4), true, fixed)
    assert identity_error > 2.0  # the problem is not trivial
    assert displacement_rms(reg.matrix_, true, fixed) <= 1.0
    moved = reg.transform(mlab, is_label=True)
    assert moved.same_geometry(flab) and moved.array.dtype == np.uint8
    dice = (
        2
        * ((moved.array == 1) & (flab.array == 1)).sum()
        / ((moved.array == 1).sum() + (flab.array == 1).sum())
    )
    assert dice > 0.9


@pytest.mark.parametrize("name", ["sitk", "torch"])
def test_known_affine_from_labels(pair, name):
    fixed, flab, moving, mlab, true = pair
    reg = get_registrar(name, features="labels", organs=(1, 2, 3)).fit(mlab, flab)
    assert displacement_rms(reg.matrix_, true, fixed) <= 1.0


def test_register_batch_independent_pairs(pair):
    fixed, _, moving, _, true = pair
    fixed2 = Volume(fixed.array, fixed.spacing, origin=(5.0, -7.0, 3.0))
    true2 = known_affine(fixed2, degrees=-4.0, scale=(0.97, 1.02, 1.0), shift=(-2.0, 1.0, 3.0))
    moving2 = resample_affine(fixed2, np.linalg.inv(true2), fixed2)
    feats = [
        np.stack([v.array for v in (moving, moving2)])[:, None],
        np.stack([v.array for v in (fixed, fixed2)])[:, None],
    ]
    out = register_batch(
        feats[0],
        feats[1],
        np.stack([moving.affine, moving2.affine]),
        np.stack([fixed.affine, fixed2.affine]),
    )
    assert out.shape == (2, 4, 4)
    assert displacement_rms(out[0], true, fixed) <= 1.0
    assert displacement_rms(out[1], true2, fixed2) <= 1.0


@pytest.mark.gpu
def test_register_batch_on_cuda(pair):
    fixed, _, moving, _, true = pair
    out = register_batch(
        moving.array[None, None],
        fixed.array[None, None],
        moving.affine[None],
        fixed.affine[None],
        device="cuda",
    )
    assert displacement_rms(out[0], true, fixed) <= 1.0


def test_sitk_matrix_roundtrip_and_identity_resample(pair):
    fixed, flab, *_ = pair
    m = known_affine(fixed)
    np.testing.assert_allclose(from_sitk_transform(to_sitk_transform(m)), m, atol=1e-9)
    # a (z, y, x) translation by +1 voxel in z moves content by -1 slice when pulled
    shift = np.eye(4)
    shift[0, 3] = SPACING[0]
    moved = resample_affine(flab, shift, flab, is_label=True)
    np.testing.assert_array_equal(moved.array[:-1], flab.array[1:])
    assert isinstance(to_sitk_transform(m), sitk.AffineTransform)


def test_label_channels_blur_and_sdt(pair):
    _, flab, *_ = pair
    blur = label_channels(flab, (1, 2, 9), sigma_mm=2.0)
    sdt = label_channels(flab, (1, 2, 9), sigma_mm=2.0, encoding="sdt")
    assert blur.shape == sdt.shape == (3, *flab.shape)
    assert blur[2].max() == 0 and sdt[2].max() == 0  # absent organ
    inside = flab.array == 1
    assert sdt[0][inside].mean() > 0.5 > sdt[0][~inside].mean()
    assert 0 <= blur.min() and blur.max() <= 1


def test_balanced_channel_weights():
    lab = np.zeros((1, 10, 20), np.uint8)
    lab[0, :5] = 1  # 100 voxels
    lab[0, 5:, :5] = 2  # 25 voxels
    w = balanced_weights(lab, (1, 2, 7))  # mean 62.5; absent organ 7 gets the mean
    np.testing.assert_allclose(w, [np.sqrt(0.625), np.sqrt(2.5), 1.0], rtol=1e-6)
    # weighted squared channel sums are then equal for the present organs
    np.testing.assert_allclose(w[0] ** 2 * 100, w[1] ** 2 * 25, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(REGISTRARS.names()))
def test_registrar_conformance(pair, name):
    fixed, flab, *_ = pair
    reg = get_registrar(name)
    with pytest.raises(RuntimeError, match="not fitted"):
        reg.transform(fixed)
    assert reg.fit(fixed, fixed) is reg
    assert reg.matrix_.shape == (4, 4)
    assert displacement_rms(reg.matrix_, np.eye(4), fixed) < 0.5
    with pytest.raises(TypeError, match="moving must be a Volume"):
        reg.fit(fixed.array, fixed)
    with pytest.raises(ValueError, match="all-zero"):
        reg.fit(fixed.with_array(np.zeros(fixed.shape, np.float32)), fixed)


def test_registrar_errors():
    with pytest.raises(KeyError, match="Did you mean 'torch'"):
        get_registrar("torhc")
    with pytest.raises(ValueError, match="features must be one of"):
        get_registrar("sitk", features="mask")
    with pytest.raises(ValueError, match="one iteration count per level"):
        get_registrar("torch", shrink_factors=(4, 2), iterations=(10,))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        get_registrar("torch", optimizer="sgd")
    with pytest.raises(KeyError, match="unknown option of registrar.options 'iteration'"):
        get_registrar("sitk", iteration=3)
    base = REGISTRARS.get("sitk")(iterations=7).config
    assert REGISTRARS.get("sitk")(base, seed=3).config == replace(base, seed=3)
    with pytest.raises(ValueError, match="as many smoothing sigmas"):
        get_registrar("sitk", shrink_factors=(4, 2), smoothing_sigmas=(1.0,))
    with pytest.raises(ValueError, match="equal b and c"):
        register_batch(np.zeros((1, 1, 4, 4, 4)), np.zeros((2, 1, 4, 4, 4)), np.eye(4), np.eye(4))
    with pytest.raises(ValueError, match="integers"):
        resample_affine(Volume(np.zeros((2, 2, 2))), np.eye(4), Volume(np.zeros((2, 2, 2))), True)
    with pytest.raises(ValueError, match="4x4"):
        resample_affine(Volume(np.zeros((2, 2, 2))), np.eye(3), Volume(np.zeros((2, 2, 2))))


def test_label_blur_inside_organ_boxes_equals_the_full_volume_blur():
    from scipy import ndimage

    arr = np.zeros((12, 40, 36), np.uint8)
    arr[3:7, 10:18, 8:14] = 1  # inside, margins fit
    arr[0:4, 30:40, 0:5] = 2  # touches three volume edges
    arr[11, 0, 35] = 3  # a single corner voxel
    label = Volume(arr, spacing=(4.0, 1.5, 2.0))
    got = label_channels(label, (1, 2, 3, 4), sigma_mm=3.0)
    sigma = 3.0 / np.asarray(label.spacing)
    for c, organ in enumerate((1, 2, 3)):
        want = ndimage.gaussian_filter((arr == organ).astype(np.float32), sigma)
        np.testing.assert_allclose(got[c], want, atol=1e-7)
    assert not got[3].any()  # absent organ: an all-zero channel


def test_grid_points_match_affine_grid_and_fraction_is_checked():
    import torch
    import torch.nn.functional as F

    from flare_uda.registration.points import grid_points

    shape = (5, 7, 9)
    theta = torch.tensor([[[0.9, 0.1, 0.0, 0.05], [0.0, 1.1, 0.2, -0.1], [0.1, 0.0, 1.0, 0.2]]])
    full = F.affine_grid(theta, [1, 1, *shape], align_corners=True).reshape(-1, 3)
    base, flat = grid_points(shape, 1.0, seed=0)
    torch.testing.assert_close(base @ theta[0].T, full[flat])
    base, flat = grid_points((40, 40, 40), 0.1, seed=3)
    assert len(flat) == 6400 and flat.unique().numel() == 6400
    torch.testing.assert_close(base @ theta[0].T, full_grid(theta, (40, 40, 40))[flat])
    with pytest.raises(ValueError, match=r"sample fraction must be in \(0, 1\], got 0"):
        grid_points(shape, 0.0, seed=0)
    with pytest.raises(ValueError, match="sampling_percentage must be in"):
        get_registrar("torch", sampling_percentage=1.5)


def full_grid(theta, shape):
    import torch.nn.functional as F

    return F.affine_grid(theta, [1, 1, *shape], align_corners=True).reshape(-1, 3)


def test_sampled_torch_solver_recovers_a_known_affine(pair):
    fixed, flab, moving, mlab, true = pair
    reg = get_registrar("torch", sampling_percentage=0.3).fit(moving, fixed)
    assert displacement_rms(reg.matrix_, true, fixed) <= 1.0
