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
