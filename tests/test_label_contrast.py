"""Label-conditioned random contrasts (SynthSeg-style): analytic checks and error paths."""

from __future__ import annotations

import pytest
import torch

from flare_uda.segmentation import get_preset
from flare_uda.segmentation.augment import AugmentConfig, build_transforms
from flare_uda.segmentation.label_contrast import LabelContrastTransform, generation_classes


def _two_organs(shape=(1, 32, 32)) -> tuple[torch.Tensor, torch.Tensor]:
    """An image with a background gradient and a label with organs 1 and 3 (as squares)."""
    label = torch.zeros(shape)
    label[..., 4:12, 4:12] = 1
    label[..., 18:28, 16:30] = 3
    image = torch.linspace(-2, 2, shape[-1]).expand(shape).clone()
    return image, label


def test_organs_keep_their_label_and_background_splits_by_intensity_quantiles():
    torch.manual_seed(0)
    image, label = _two_organs()
    classes = generation_classes(image, label, (3, 3))
    assert torch.equal(classes[label == 1], torch.ones_like(classes[label == 1]))
    assert torch.equal(classes[label == 3], torch.full_like(classes[label == 3], 3))
    background = classes[label == 0]
    assert set(background.unique().tolist()) <= {4, 5, 6}
    # quantile classes are monotone in intensity
    order = torch.argsort(image[label == 0])
    assert torch.all(torch.diff(background[order]) >= 0)


def test_one_background_class_and_padding_join_the_background():
    image, label = _two_organs()
    label[..., 0, :] = -1  # spatial padding
    classes = generation_classes(image, label, (1, 1))
    assert set(classes[label <= 0].unique().tolist()) == {4}


def _organ_with_a_bright_band(shape=(1, 32, 32)) -> tuple[torch.Tensor, torch.Tensor]:
    """Organ 1 (rows 4-27, columns 4-27) whose columns 4-13 are 10 brighter (a vessel)."""
    label = torch.zeros(shape)
    label[..., 4:28, 4:28] = 1
    image = torch.zeros(shape)
    image[..., 4:28, 4:14] = 10.0
    return image, label


def test_organs_split_into_classes_along_their_structures_not_voxels():
    image, label = _organ_with_a_bright_band()
    inside = label == 1
    band = torch.zeros_like(label, dtype=torch.bool)
    band[..., 7:25, 7:11] = True  # the band's core, beyond the blur's 3-voxel reach
    rest = inside.clone()
    rest[..., :, :17] = False  # the rest, beyond the blur's reach
    splits = 0
    for seed in range(20):
        torch.manual_seed(seed)
        classes = generation_classes(image, label, (2, 2), organ_classes=(2, 2))
        organ = classes[inside].unique()
        assert len(organ) <= 2 and 1 in organ.tolist()  # the darker part keeps the label
        if len(organ) == 2:
            splits += 1
            new = int(organ.max())
            assert new > int(classes[label == 0].max())  # numbered after the background
            assert torch.all(classes[band] == new) and torch.all(classes[rest] == 1)
    assert splits >= 10  # every cut below the band core's equal top values splits


def test_one_organ_class_keeps_each_organ_uniform():
    torch.manual_seed(0)
    image, label = _organ_with_a_bright_band()
    classes = generation_classes(image, label, (2, 2), organ_classes=(1, 1))
    assert set(classes[label == 1].unique().tolist()) == {1}


def test_without_spread_texture_blur_or_bias_each_organ_is_one_value():
    torch.manual_seed(1)
    image, label = _two_organs()
    t = LabelContrastTransform(max_spread=0, max_texture=0, max_blur=0, max_bias=0)
    out = t(image=image[None].clone(), segmentation=label[None].clone())
    img, seg = out["image"][0], out["segmentation"][0]
    assert torch.equal(seg, label)
    for organ in (1, 3):
        values = img[label == organ]
        assert float(values.max() - values.min()) < 1e-5
    assert abs(float(img.mean())) < 1e-5 and abs(float(img.std()) - 1) < 1e-4
    # the two organs differ (random means, equal with probability 0)
    assert float((img[label == 1][0] - img[label == 3][0]).abs()) > 1e-3


def test_the_new_image_does_not_follow_the_old_one():
    torch.manual_seed(2)
    image, label = _two_organs((1, 48, 48))
    corr = []
    for _ in range(20):
        out = LabelContrastTransform()(image=image[None].clone(), segmentation=label[None])
        a, b = out["image"][0].flatten(), image.flatten()
        corr.append(float(torch.corrcoef(torch.stack([a, b]))[0, 1]))
    assert min(corr) < 0 < max(corr)  # the tissue order changes from draw to draw


def test_channels_folded_from_slices_each_use_their_own_slice():
    torch.manual_seed(3)
    label = torch.zeros(2, 16, 16)
    label[0, :8] = 1
    label[1, :, :8] = 1  # another organ layout in slice 2
    t = LabelContrastTransform(max_spread=0, max_texture=0, max_blur=0, max_bias=0)
    out = t(image=torch.randn(2, 16, 16), segmentation=label.clone())["image"]
    for c in range(2):
        organ = out[c][label[c] == 1]
        assert float(organ.max() - organ.min()) < 1e-5


def test_in_the_training_transforms_and_the_config():
    config = AugmentConfig(
        rotation_deg=0, scaling=(1, 1), mirror_axes=(), intensity=False, label_contrast=1.0
    )
    t = build_transforms((1, 32, 32), config, in_plane=True)
    image, label = _two_organs()
    out = t(image=image[None].clone(), segmentation=label[None].clone())
    assert out["image"].shape == (1, 1, 32, 32)
    assert not torch.allclose(out["image"][0], image)
    # an option added after configs existed: left out of the training config at its default
    preset = get_preset("quick2d")
    assert "label_contrast" not in preset.to_dict()["augment"]
    changed = preset.with_overrides(augment=config)
    assert changed.to_dict()["augment"]["label_contrast"] == 1.0
    assert type(preset).from_dict(changed.to_dict()) == changed


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_spread": -0.1}, "max_spread must be >= 0"),
        ({"max_blur": float("nan")}, "max_blur must be >= 0"),
        ({"background_classes": (0, 2)}, "background_classes"),
        ({"background_classes": (4, 2)}, "background_classes"),
        ({"organ_classes": (0, 2)}, "organ_classes must be \\(low, high\\)"),
        ({"organ_classes": ("a", 2)}, "organ_classes must be a pair of integers"),
    ],
)
def test_bad_transform_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LabelContrastTransform(**kwargs)


@pytest.mark.parametrize("value", [1.5, -0.1, True])
def test_bad_probability_is_refused(value):
    with pytest.raises(ValueError, match="label_contrast must be a probability"):
        AugmentConfig(label_contrast=value)


ORGANS = (1, 2, 3, 13)  # liver, right kidney, spleen, left kidney (FLARE)


def _organ_contrasts(image: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Differences of the four organs' mean intensities, pairwise, over the image's std."""
    means = torch.stack([image[label == k].mean() for k in ORGANS])
    diff = means[:, None] - means[None, :]
    return diff[torch.triu_indices(4, 4, 1).unbind()] / image.std()


def _slice_with_all(volume, label) -> tuple[torch.Tensor, torch.Tensor]:
    """The axial slice holding the most voxels of the four organs, all present."""
    lab = torch.from_numpy(label.array.astype("int64"))
    present = torch.stack([(lab == k).flatten(1).sum(1) for k in ORGANS], 1)
    ok = (present > 20).all(1)
    z = int(torch.where(ok, present.sum(1), torch.zeros_like(ok, dtype=torch.long)).argmax())
    return torch.from_numpy(volume.array[z].astype("float32")), lab[z]


def test_random_contrasts_of_real_ct_cover_chaos_t2_organ_contrasts(shared_data):
    """The fix's premise on the shared data: redrawn from a real CT's labels, the organ
    contrasts of the samples span those of real CHAOS T2 (liver, kidneys, spleen pairwise),
    which the CT itself, with its one contrast, does not."""
    from flare_uda.data.io import read_label, read_volume

    ct = read_volume(shared_data / "ct" / "amos_0001_slab_image.nii.gz")
    ct_image, ct_label = _slice_with_all(
        ct, read_label(shared_data / "ct" / "amos_0001_slab_label.nii.gz", "amos")
    )
    mr = read_volume(shared_data / "mr" / "chaos_t2" / "chaos_t2_1_image.nii.gz")
    mr_image, mr_label = _slice_with_all(
        mr, read_label(shared_data / "mr" / "chaos_t2" / "chaos_t2_1_label.nii.gz", "chaos")
    )
    target = _organ_contrasts(mr_image, mr_label)
    torch.manual_seed(0)
    draws = torch.stack(
        [
            _organ_contrasts(
                LabelContrastTransform()(
                    image=ct_image[None, None].clone(), segmentation=ct_label[None, None]
                )["image"][0, 0],
                ct_label,
            )
            for _ in range(200)
        ]
    )
    low, high = draws.quantile(0.01, 0), draws.quantile(0.99, 0)
    assert torch.all((low < target) & (target < high)), (low, target, high)
    # the CT's own contrasts are one point; at least one CHAOS T2 contrast is far from it
    own = _organ_contrasts(ct_image, ct_label)
    assert float((own - target).abs().max()) > 0.5


def _interior_fraction(part: torch.Tensor) -> float:
    """Share of ``part``'s voxels (2D bool) whose four in-plane neighbours are in it too."""
    core = part[1:-1, 1:-1]
    inner = core & part[:-2, 1:-1] & part[2:, 1:-1] & part[1:-1, :-2] & part[1:-1, 2:]
    return float(inner.sum() / core.sum().clamp_min(1))


def test_organ_splits_of_real_ct_follow_its_vessels_not_its_noise(shared_data):
    """The split-organ fix on the shared data: in the contrast-enhanced liver of CHAOS CT 3,
    a split into two classes puts the enhanced vessels (well above the parenchyma's HU) in
    the smaller part, as connected structures: most of its voxels have all four
    neighbours in it, where a random set of voxels of the same size has almost none."""
    from flare_uda.data.io import read_label, read_volume

    volume = read_volume(shared_data / "ct" / "chaos_ct3_image.nii.gz")
    label = read_label(shared_data / "ct" / "chaos_ct3_label.nii.gz", "chaos_ct")
    lab = torch.from_numpy(label.array.astype("int64"))
    z = int((lab == 1).flatten(1).sum(1).argmax())
    image, lab = torch.from_numpy(volume.array[z].astype("float32")), lab[z]
    liver = lab == 1
    small_parts = 0
    for seed in range(10):
        torch.manual_seed(seed)
        classes = generation_classes(image, lab, (2, 2), organ_classes=(2, 2))
        bright = liver & (classes != 1)
        share = float(bright.sum() / liver.sum())
        if not 0.02 < share < 0.3:  # a cut low in the parenchyma, or no split
            continue
        small_parts += 1
        assert float(image[bright].mean() - image[liver & ~bright].mean()) > 30  # HU
        assert _interior_fraction(bright) > 0.3
        noise = liver & (
            torch.rand(liver.shape, generator=torch.Generator().manual_seed(seed)) < share
        )
        assert _interior_fraction(noise) < 0.05
    assert small_parts >= 3
