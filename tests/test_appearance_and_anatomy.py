"""Appearance randomisation (random intensity curves) and the no-GAN anatomy translator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flare_uda.data.anatomy import CT_SOFT_TISSUE_WINDOW, to_anatomy_space
from flare_uda.segmentation.appearance import RandomCurveTransform, curve
from flare_uda.segmentation.augment import AugmentConfig, build_transforms
from flare_uda.translation import TRANSLATORS, AnatomySpace
from flare_uda.volume import Volume


def test_linear_curve_is_the_identity_after_restandardising():
    x = torch.linspace(-3, 5, 1000).reshape(10, 100)
    y = curve(x, torch.linspace(0, 1, 5))
    torch.testing.assert_close(y, x, atol=1e-4, rtol=0)


def test_inverted_curve_inverts_and_keeps_mean_and_std():
    x = torch.randn(4, 32, 32, generator=torch.Generator().manual_seed(0))
    y = curve(x, torch.tensor([1.0, 0.0]))  # a straight line down
    torch.testing.assert_close(y, 2 * x.mean() - x, atol=1e-4, rtol=0)
    assert abs(float(y.mean() - x.mean())) < 1e-5 and abs(float(y.std() - x.std())) < 1e-4


def test_a_random_curve_changes_contrast_keeps_statistics():
    torch.manual_seed(0)
    img = torch.randn(1, 8, 16, 16)
    out = RandomCurveTransform(knots=4)(image=img.clone())["image"]
    assert out.shape == img.shape and not torch.allclose(out, img)
    assert abs(float(out.mean() - img.mean())) < 1e-4
    assert abs(float(out.std() - img.std())) < 1e-3


def test_flat_images_are_left_alone():
    x = torch.full((4, 4), 2.5)
    assert torch.equal(curve(x, torch.rand(6)), x)
    assert torch.equal(curve(torch.zeros(3, 3), torch.full((3,), 0.5)), torch.zeros(3, 3))


@pytest.mark.parametrize("knots", [0, -1, 2.5, True])
def test_curve_transform_knots_are_checked(knots):
    with pytest.raises(ValueError, match="knots must be an int >= 1"):
        RandomCurveTransform(knots=knots)


@pytest.mark.parametrize("p", [-0.1, 1.5, True])
def test_appearance_probability_is_checked(p):
    with pytest.raises(ValueError, match="appearance must be a probability"):
        AugmentConfig(appearance=p)


def test_appearance_joins_the_transforms_only_when_asked():
    names = lambda cfg: repr(build_transforms((8, 16, 16), cfg))  # noqa: E731
    assert "RandomCurveTransform" not in names(AugmentConfig())
    assert "RandomCurveTransform" in names(AugmentConfig(appearance=0.5))


def _ct(seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    arr = np.full((8, 24, 24), -1000.0, np.float32)
    arr[2:6, 6:18, 6:18] = 40.0 + rng.normal(0, 5, (4, 12, 12))
    return Volume(arr, spacing=(5.0, 2.0, 2.0))


def test_anatomy_translator_maps_both_modalities_to_the_sobel_space(tmp_path):
    ct = _ct()
    tr = AnatomySpace(sobel_mode="2d").fit([ct], [ct])
    windowed = to_anatomy_space(ct, "2d", window=CT_SOFT_TISSUE_WINDOW).array
    np.testing.assert_allclose(tr.to_target(ct).array, windowed, atol=1e-6)  # source: CT window
    unclipped = to_anatomy_space(ct, "2d").array
    np.testing.assert_allclose(tr.to_space(ct).array, unclipped, atol=1e-6)  # target: as is
    assert tr.to_space(ct).spacing == ct.spacing
    back = AnatomySpace.load(tr.save(tmp_path / "m"))
    assert back.config.sobel_mode == "2d"
    assert back.config.source_window == CT_SOFT_TISSUE_WINDOW
    assert TRANSLATORS.get("anatomy") is AnatomySpace
    raw = AnatomySpace(source_window=None).fit([ct], [ct])
    np.testing.assert_allclose(raw.to_target(ct).array, to_anatomy_space(ct).array, atol=1e-6)


def test_anatomy_translator_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="sobel_mode"):
        AnatomySpace(sobel_mode="4d")
