"""nnU-Net augmentations via batchgeneratorsv2: shapes, labels, reproducibility, config errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flare_uda.segmentation.augment import AugmentConfig, build_transforms, initial_patch_size
from flare_uda.segmentation.data import batch_rng


def _sample(crop):
    img = torch.randn(1, *crop, generator=torch.Generator().manual_seed(0))
    seg = torch.zeros(1, *crop, dtype=torch.int16)
    seg[0, 2:-2, 4:-4, 4:-4] = 3
    return img, seg


def test_transform_crops_to_patch_and_keeps_label_values():
    patch = (8, 16, 16)
    cfg = AugmentConfig()
    crop = initial_patch_size(patch, cfg)
    assert all(c >= p for c, p in zip(crop, patch, strict=True))
    t = build_transforms(patch, cfg)
    for it in range(5):
        batch_rng(0, it)
        img, seg = _sample(crop)
        out = t(image=img, segmentation=seg)
        assert tuple(out["image"].shape) == (1, *patch)
        assert tuple(out["segmentation"].shape) == (1, *patch)
        assert set(np.unique(out["segmentation"].numpy())) <= {0, 3}  # padding -1 became 0


def test_same_seed_and_iteration_give_the_same_augmentation():
    patch = (8, 16, 16)
    cfg = AugmentConfig()
    crop = initial_patch_size(patch, cfg)
    outs = []
    for _ in range(2):
        t = build_transforms(patch, cfg)
        batch_rng(3, 7)
        outs.append(t(image=_sample(crop)[0], segmentation=_sample(crop)[1])["image"])
    torch.testing.assert_close(outs[0], outs[1])


def test_disabled_augmentation_is_a_center_crop():
    patch = (8, 16, 16)
    cfg = AugmentConfig(enabled=False)
    assert initial_patch_size(patch, cfg) == patch
    img, seg = _sample(patch)
    out = build_transforms(patch, cfg)(image=img.clone(), segmentation=seg.clone())
    torch.testing.assert_close(out["image"], img)


def test_augment_config_errors():
    with pytest.raises(ValueError, match=r"rotation_deg must be in \[0, 180\]"):
        AugmentConfig(rotation_deg=-1)
    with pytest.raises(ValueError, match="scaling must be"):
        AugmentConfig(scaling=(1.2, 0.8))
    with pytest.raises(ValueError, match=r"mirror_axes must be a subset of \(0, 1, 2\)"):
        AugmentConfig(mirror_axes=(3,))
    with pytest.raises(ValueError, match=r"p_elastic must be in \[0, 1\]"):
        AugmentConfig(p_elastic=2)
